"""The settings as deployed: the host's environment for the app, the probe that reads the settings
with it in a fresh local Python process (djaploy/probes/settings_probe.py), and the findings from its report."""

from __future__ import annotations

import hmac
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from djaploy.config import Target
from djaploy.verify.findings import Expected, Finding, settings_findings

#: variables the local Python needs to start; everything else comes from the host's environment
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")
SETTINGS_TIMEOUT = 120
PROBE_MARKER = "@@djaploy-verify@@"
#: the probe program; run as text with -c, so the child's sys.path starts at manage.py's folder
PROBE = files("djaploy").joinpath("probes", "settings_probe.py").read_text(encoding="utf-8")


def deployed_environment(env: str, target: Target, fleet: Sequence[Target] = ()) -> dict[str, str]:
    """The variables the host gives the app (the same HostContext builds the env file from), the
    modules' included (DATABASE_URL: `fleet` is the host's environment). A module that cannot say
    (its secret is not exported here) raises ConfigError."""
    from djaploy.context import HostContext
    from djaploy.modules.base import load_modules

    context = HostContext(env=env, target=target, plan=None,  # type: ignore[arg-type] - only reads the config
                          fleet=tuple(fleet), modules=tuple(load_modules(target.modules)))
    variables = context.app_environment()
    variables["DJAPLOY_RELEASE"] = variables["DJAPLOY_RELEASE"] or "verify"
    return variables


def probe_settings(project_dir: Path, wsgi: str, environment: Mapping[str, str], nonce: str, *,
                   hide_djaploy: bool) -> dict[str, Any]:
    """Import the WSGI application and read the settings in a fresh process with `environment`."""
    child_env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    child_env.update(environment)
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"
    argv = [sys.executable, "-c", PROBE, wsgi, nonce, "1" if hide_djaploy else "0", PROBE_MARKER]
    try:
        result = subprocess.run(argv, check=False, cwd=project_dir, env=child_env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=SETTINGS_TIMEOUT, errors="replace")
    except subprocess.TimeoutExpired:
        return {"settings_error": f"loading the settings took more than {SETTINGS_TIMEOUT}s"}
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(PROBE_MARKER):
            return json.loads(line[len(PROBE_MARKER):])
    tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
    return {"settings_error": f"python exited with {result.returncode}: " + " / ".join(tail)}


def _load_error_hint(error: str) -> str:
    if "No module named 'djaploy'" in error:
        return ("servers do not have djaploy: add it to INSTALLED_APPS only where it is installed, "
                "e.g. if importlib.util.find_spec('djaploy'): INSTALLED_APPS.append('djaploy')")
    return ("the app would not start on the server; fix the error above (the settings read the host's "
            "environment: DJAPLOY_* variables, env_vars and secrets; nothing else from your shell)")


def probe_findings(probe: Mapping[str, Any], expected: Expected, where: str, local_mac: str | None) -> list[Finding]:
    """Findings from one probe's report."""
    findings = []
    settings_error, wsgi_error = probe.get("settings_error"), probe.get("wsgi_error")
    if settings_error:
        findings.append(Finding("E004", where, f"the settings do not load with DJAPLOY_ENV={expected.env}: "
                                f"{settings_error}", _load_error_hint(settings_error)))
    if wsgi_error and wsgi_error != settings_error:
        findings.append(Finding("E004", where, f"the WSGI application does not load with DJAPLOY_ENV={expected.env}: "
                                f"{wsgi_error}", _load_error_hint(wsgi_error)))
    values = probe.get("settings")
    if values:
        matches = None if local_mac is None else hmac.compare_digest(local_mac, values.get("SECRET_KEY_MAC", ""))
        findings += settings_findings(values, expected, where, matches_local_key=matches)
    return findings

