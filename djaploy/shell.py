"""Remote shell commands as data: pure functions that return quoted command strings.

Modules and strategies build commands here so unit tests can assert the exact text, and so
quoting is done once, with shlex, never with hand-built f-string scripts.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "$": "\\$", "`": "\\`"})


def q(value: object) -> str:
    """Quote one shell word."""
    return shlex.quote(str(value))


def join(words: Iterable[object]) -> str:
    return " ".join(q(word) for word in words)


def render_env_file(variables: Mapping[str, str]) -> str:
    """An environment file that both systemd's EnvironmentFile= and `sh -c '. file'` read the same.

    Values are double-quoted with \\ " $ ` escaped: the escapes both parsers understand.
    """
    lines = ["# Written by djaploy on every deploy. Holds secrets: keep it 0600."]
    for name in sorted(variables):
        value = variables[name]
        if not ENV_NAME_RE.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        if "\n" in value or "\r" in value:
            raise ValueError(f"environment variable {name} contains a newline, which env files cannot hold")
        lines.append(f'{name}="{value.translate(_ENV_ESCAPES)}"')
    return "\n".join(lines) + "\n"


def with_env_file(env_file: str, command: str) -> str:
    """Run `command` with the app's environment loaded from its env file (no values on argv)."""
    return f"set -a && . {q(env_file)} && set +a && {command}"


def manage_py(env_file: str, project_dir: str, venv_dir: str, args: Iterable[str]) -> str:
    """Run manage.py from a release with the release's environment."""
    python = f"{venv_dir}/bin/python"
    return with_env_file(env_file, f"cd {q(project_dir)} && exec {q(python)} manage.py {join(args)}")


def ensure_venv(venv_dir: str, python: str, requirements: str, marker: str) -> str:
    """Create the venv and install the pinned requirements, unless a finished one exists.

    The marker is written only after the install succeeded, so a half-installed venv is never
    trusted: it is removed and built again.
    """
    v = q(venv_dir)
    marker_path = q(f"{venv_dir}/{marker}")
    return (
        f"if [ -f {marker_path} ]; then echo 'venv reused: {venv_dir}'; else "
        f"rm -rf {v} && {q(python)} -m venv {v} && "
        f"{v}/bin/pip install --disable-pip-version-check --no-input -q -r {q(requirements)} && "
        f"touch {marker_path} && echo 'venv created: {venv_dir}'; fi"
    )


def extract_tarball(tarball: str, destination: str) -> str:
    """Extract a release into a fresh folder (removing a leftover of a failed attempt)."""
    d = q(destination)
    return f"rm -rf {d} && mkdir -p {d} && tar -xzf {q(tarball)} -C {d} --no-same-owner"


def replace_dir(new: str, live: str) -> str:
    """in_place: put `new` where `live` is; the old code is removed only after the rename."""
    old = q(f"{live}.old")
    return f"rm -rf {old} && if [ -e {q(live)} ]; then mv {q(live)} {old}; fi && mv {q(new)} {q(live)} && rm -rf {old}"


def http_check(host_header: str, path: str, *, url_base: str = "http://127.0.0.1", attempts: int = 30,
               unix_socket: str | None = None) -> str:
    """Require a 2xx/3xx from `path` with the given Host header, retrying while the app starts.

    Prints the last status and the start of the body when it gives up, so the error says why.
    """
    socket = f"--unix-socket {q(unix_socket)} " if unix_socket else ""
    curl = (
        f"curl -sS -o /tmp/djaploy-health.$$ -w '%{{http_code}}' --max-time 10 {socket}"
        f"-H {q('Host: ' + host_header)} {q(url_base + path)}"
    )
    return (
        f"i=0; while :; do code=$({curl} 2>/tmp/djaploy-health-err.$$) || code=000; "
        f'case "$code" in 2??|3??) echo "health check {path}: HTTP $code"; rm -f /tmp/djaploy-health*.$$; exit 0;; esac; '
        f"i=$((i+1)); if [ $i -ge {attempts} ]; then "
        f'echo "health check {path} for Host {host_header} failed: HTTP $code" >&2; '
        f"cat /tmp/djaploy-health-err.$$ >&2; head -c 600 /tmp/djaploy-health.$$ >&2; echo >&2; "
        f"rm -f /tmp/djaploy-health*.$$; exit 1; fi; sleep 0.5; done"
    )
