"""What configureserver chose for an app, kept on the host (.djaploy/python.json) for its deploys.

A deploy reads it back in one round trip before it names the release's venv: the venv is keyed by
the interpreter's provider and full version. A host configured before djaploy recorded it falls
back to the system python3.X, as it always used.
"""

from __future__ import annotations

import json
import posixpath

from djaploy import shell
from djaploy.python.naming import FULL_VERSION_RE, PROVIDERS, Interpreter, minor_of

RECORD_NAME = "python.json"
_SYSTEM_AS_RECORD = ("import json, sys; print(json.dumps({'provider': 'system', 'python': sys.executable, "
                     "'version': '%d.%d.%d' % sys.version_info[:3]}))")


def record_path(meta_dir: str) -> str:
    return posixpath.join(meta_dir, RECORD_NAME)


def record_text(interpreter: Interpreter) -> str:
    return json.dumps({"provider": interpreter.provider, "version": interpreter.version,
                       "python": interpreter.python}, sort_keys=True) + "\n"


def read_command(meta_dir: str, version: str) -> str:
    """The record, or (no record: a host configured by an older djaploy) the system python3.X as one."""
    system = shell.q(f"/usr/bin/python{version}")
    return (f"cat {shell.q(record_path(meta_dir))} 2>/dev/null || "
            f"{{ [ -x {system} ] && {system} -c {shell.q(_SYSTEM_AS_RECORD)}; }} || true")


def parse_record(output: str, version: str, provider: str) -> Interpreter | str:
    """The recorded interpreter, or what is wrong with it (then configureserver must run again)."""
    try:
        data = json.loads(output.strip().splitlines()[-1]) if output.strip() else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return f"no Python {version} was provided for this app on the host"
    interpreter = Interpreter(str(data.get("provider")), str(data.get("version")), str(data.get("python")))
    if interpreter.provider not in PROVIDERS or not FULL_VERSION_RE.fullmatch(interpreter.version):
        return f"the host's record of the app's interpreter is unreadable: {output.strip()[:200]!r}"
    if interpreter.minor != minor_of(version):
        return f"the app's interpreter on the host is Python {interpreter.version}, but python_version is {version!r}"
    if provider not in ("auto", interpreter.provider):
        return f"the app's interpreter on the host comes from {interpreter.provider!r}, but python_provider is {provider!r}"
    return interpreter
