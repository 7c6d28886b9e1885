"""`manage.py verify` and djaploy's Django system checks: find what would break a deploy, change nothing.

Each finding says what is wrong and how to fix it. `manage.py check --deploy` reports the local ones as
``djaploy.<id>`` (see djaploy.checks); `manage.py verify --remote` adds the host checks.

    djaploy.E001  config.py or an inventory does not load (bad field, unknown env, missing secret)
    djaploy.E002  the project cannot be inspected (git repository, manage.py, WSGI application)
    djaploy.E003  gunicorn is not among the project's dependencies (the service runs it)
    djaploy.E004  the settings or the WSGI application fail to load with the deployed environment
    djaploy.E005  STATIC_ROOT as deployed is not DJAPLOY_STATIC_ROOT (nginx serves that folder)
    djaploy.E006  a deploy domain is not covered by ALLOWED_HOSTS as deployed (every request: 400)
    djaploy.E007  DEBUG is on as deployed
    djaploy.E008  SECRET_KEY as deployed is the development value, not one from the environment
    djaploy.E009  --remote: the host cannot be reached over SSH
    djaploy.E010  --remote: the SSH user has no passwordless sudo
    djaploy.E011  --remote: the host is not Debian or Ubuntu
    djaploy.E012  --remote: the configured python_version cannot run on the host
    djaploy.W001  DJAPLOY_CONFIG_DIR names a folder that does not exist
    djaploy.W002  no environments in infra/inventory/
    djaploy.W003  MEDIA_ROOT as deployed is not DJAPLOY_MEDIA_ROOT (uploads land in the release)
    djaploy.W004  an SQLite database as deployed is outside DJAPLOY_DATA_DIR (lost on the next deploy)
    djaploy.W005  SECRET_KEY as deployed comes from env_vars (written in the repository) or from no variable
    djaploy.W006  djaploy is in the server requirements (it is a deploy-time tool: 100+ MB on every server)
    djaploy.W007  --remote: the host is Debian-based but neither Debian nor Ubuntu

"As deployed" means evaluated the way the server runs the app: in a fresh Python process, from
manage.py's folder, with only the variables a host gives the app (DJAPLOY_ENV, DJAPLOY_RELEASE,
DJAPLOY_STATIC_ROOT, DJAPLOY_MEDIA_ROOT, DJAPLOY_DATA_DIR, env_vars, secrets) and without djaploy
importable (servers do not have it). Secrets reach that process through its environment only and
are never printed: findings are redacted, and SECRET_KEY is compared by keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import posixpath
import re
import secrets as random_tokens
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djaploy.config import DjaployConfig, Target
from djaploy.errors import ConfigError, ConnectError, DjaployError
from djaploy.inventory import display_path, list_environments, load_config, load_targets
from djaploy.layout import AppPaths
from djaploy.project import Project, inspect_project

#: variables the local Python needs to start; everything else comes from the host's environment
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")
SETTINGS_TIMEOUT = 120
PROBE_MARKER = "@@djaploy-verify@@"
SUPPORTED_OS = ("debian", "ubuntu")
FIX_CONFIG = "fix the file and field named above (a secret's variable must be exported in the shell that deploys)"


@dataclass(frozen=True)
class Finding:
    """One problem: its check id (E001, W003...), where, what is wrong, and how to fix it."""

    id: str
    where: str
    message: str
    hint: str

    @property
    def level(self) -> str:
        return {"E": "error", "W": "warning"}.get(self.id[0], "info")

    def text(self) -> str:
        return f"[{self.where}] {self.message}" if self.where else self.message


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)  # what was checked and is fine, for the reader

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


# --- pure checks (unit tested) ------------------------------------------------------------------


def host_allowed(domain: str, allowed_hosts: Sequence[str]) -> bool:
    """Would Django accept requests for `domain`? Its own validate_host ("*", ".example.com", exact)."""
    from django.http.request import validate_host

    return validate_host(domain.lower().rstrip("."), list(allowed_hosts))


def served_names(target: Target) -> tuple[str, ...]:
    """The Host headers the app gets: its domains; without any, the health check's "localhost"."""
    return target.domains or ("localhost",)


def _same_path(value: str | None, expected: str) -> bool:
    return bool(value) and posixpath.normpath(str(value)) == posixpath.normpath(expected)


@dataclass(frozen=True)
class Expected:
    """What the host gives the app, to compare the settings against."""

    env: str
    paths: AppPaths
    domains: tuple[str, ...]
    secret_names: frozenset[str]  # the host's `secrets` keys
    env_var_names: frozenset[str]  # the host's `env_vars` keys


def settings_findings(values: Mapping[str, Any], expected: Expected, where: str, *,
                      matches_local_key: bool | None) -> list[Finding]:
    """Findings for settings values read as deployed (see PROBE for the keys).

    `matches_local_key`: whether SECRET_KEY equals the value the settings give without
    DJAPLOY_ENV (None when that value is unknown).
    """
    env, paths = expected.env, expected.paths
    findings = []
    if values.get("DEBUG"):
        findings.append(Finding("E007", where, f"DEBUG is on with DJAPLOY_ENV={env}: error pages would show "
                                "your code and settings to anyone",
                                "turn DEBUG off when deployed, e.g. DEBUG = os.environ.get('DJANGO_DEBUG') == '1' "
                                "and do not set DJANGO_DEBUG=1 in env_vars"))
    static_root = values.get("STATIC_ROOT")
    if not _same_path(static_root, paths.static_root):
        findings.append(Finding("E005", where, f"STATIC_ROOT is {static_root!r} as deployed, but collectstatic must "
                                f"write where nginx serves /static/ from: {paths.static_root}",
                                "STATIC_ROOT = os.environ.get('DJAPLOY_STATIC_ROOT', BASE_DIR / 'staticfiles')"))
    allowed = list(values.get("ALLOWED_HOSTS") or [])
    for domain in expected.domains:
        if not host_allowed(domain, allowed):
            findings.append(Finding("E006", where, f"{domain} is not covered by ALLOWED_HOSTS {allowed} as deployed: "
                                    "Django would answer its requests (and the health check) with 400",
                                    f"add {domain!r} to ALLOWED_HOSTS, e.g. read it from an environment variable "
                                    f"set in the host's env_vars: env_vars={{'DJANGO_ALLOWED_HOSTS': {domain!r}}}"))
    if values.get("MEDIA_ROOT") is not None and not _same_path(values.get("MEDIA_ROOT"), paths.media_root):
        findings.append(Finding("W003", where, f"MEDIA_ROOT is {values.get('MEDIA_ROOT')!r} as deployed, not "
                                f"{paths.media_root}: uploads would not be served by nginx and could be lost with a release",
                                "MEDIA_ROOT = os.environ.get('DJAPLOY_MEDIA_ROOT', BASE_DIR / 'media')"))
    for name in values.get("SQLITE") or []:
        if not str(name).startswith(paths.data_dir.rstrip("/") + "/"):
            findings.append(Finding("W004", where, f"the SQLite database {name!r} is outside {paths.data_dir}: it "
                                    "lives in the release and is lost (or left behind) on the next deploy",
                                    "NAME = Path(os.environ.get('DJAPLOY_DATA_DIR', BASE_DIR)) / 'db.sqlite3'"))
    findings += _secret_key_findings(values, expected, where, matches_local_key)
    return findings


def _secret_key_findings(values: Mapping[str, Any], expected: Expected, where: str,
                         matches_local_key: bool | None) -> list[Finding]:
    sources = set(values.get("SECRET_KEY_FROM") or [])
    if sources & expected.secret_names:
        return []
    fix = ("read it from the environment (SECRET_KEY = os.environ['DJANGO_SECRET_KEY'] when DJAPLOY_ENV is set) "
           "and give it as a secret: secrets={'DJANGO_SECRET_KEY': 'env:MY_SECRET_KEY'}")
    if sources & expected.env_var_names:
        names = ", ".join(sorted(sources & expected.env_var_names))
        return [Finding("W005", where, f"SECRET_KEY comes from env_vars ({names}), which are written in the "
                        "repository", f"move {names} from env_vars to secrets, read from your environment")]
    if sources:
        return []  # a variable of the host environment we do not manage: still from the environment
    if matches_local_key:
        return [Finding("E008", where, f"SECRET_KEY with DJAPLOY_ENV={expected.env} is the same as without it: "
                        "a key written in the code, which anyone with the repository can use to forge sessions", fix)]
    return [Finding("W005", where, "SECRET_KEY as deployed is not the value of any variable djaploy gives the app; "
                    "if it is written in the settings, anyone with the repository can forge sessions", fix)]


def requirement_findings(names: set[str], source: str) -> list[Finding]:
    """gunicorn must be installed on the server; djaploy must not be."""
    findings = []
    if "gunicorn" not in names:
        findings.append(Finding("E003", "project", f"gunicorn is not among the dependencies ({source}), but the service "
                                "runs the app with the release's gunicorn", "add gunicorn to the dependencies, e.g. gunicorn>=22"))
    if "djaploy" in names:
        findings.append(Finding("W006", "project", f"djaploy is in the server dependencies ({source}); it runs on your machine only, "
                                "and would put pyinfra, gevent and paramiko (100+ MB) on every server",
                                "remove djaploy from them; add it to INSTALLED_APPS only where it is installed "
                                "(importlib.util.find_spec('djaploy'))"))
    return findings


def parse_facts(output: str) -> dict[str, str]:
    """key=value lines of FACTS_COMMAND's output."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def facts_command(python_version: str) -> str:
    """One read-only round trip (run as root): who we are, the OS, the Pythons."""
    from djaploy import shell

    python = shell.q(f"python{python_version}")
    return (
        "echo uid=$(id -u); if [ -r /etc/os-release ]; then . /etc/os-release; fi; "
        'echo "os_id=${ID:-}"; echo "os_like=${ID_LIKE:-}"; echo "os_name=${PRETTY_NAME:-}"; '
        f'echo "python=$(command -v {python} || true)"; '
        f"if {python} -c 'import ensurepip, venv' >/dev/null 2>&1; then echo venv=yes; else echo venv=no; fi; "
        "echo \"python3=$(python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' 2>/dev/null)\"; "
        "echo \"python3_apt=$(apt-cache policy python3 2>/dev/null | sed -n 's/^ *Candidate: *//p')\""
    )


def _major_minor(version: str) -> str:
    """ "3.11.2-1+b1" or "3.11" -> "3.11"; "" when not a version."""
    match = re.match(r"^(?:\d+:)?(\d+\.\d+)", version.strip())
    return match.group(1) if match else ""


def remote_findings(facts: Mapping[str, str], target: Target, where: str) -> list[Finding]:
    """Findings from one host's facts (pure; unit tested)."""
    findings = []
    if facts.get("uid") != "0":
        findings.append(Finding("E010", where, f"commands run with sudo as {target.ssh_user} are not root "
                                f"(uid {facts.get('uid')!r})", f"give {target.ssh_user} sudo rights to run any command as root"))
    os_id, like = facts.get("os_id", ""), facts.get("os_like", "").split()
    os_name = facts.get("os_name") or os_id or "an unknown system"
    if os_id not in SUPPORTED_OS:
        if set(like) & set(SUPPORTED_OS):
            findings.append(Finding("W007", where, f"{os_name} is Debian-based but neither Debian nor Ubuntu; "
                                    "djaploy is tested on those", "use Debian 12 or Ubuntu 24.04 if a step fails"))
        else:
            findings.append(Finding("E011", where, f"{os_name} is neither Debian nor Ubuntu; djaploy installs its "
                                    "packages with apt and runs the app with systemd", "use a Debian 12 or Ubuntu 24.04 host"))
    want = target.python_version
    system = _major_minor(facts.get("python3", "")) or _major_minor(facts.get("python3_apt", ""))
    if facts.get("python"):
        if facts.get("venv") != "yes" and system != want:
            findings.append(Finding("E012", where, f"python{want} is on the host but cannot create virtualenvs "
                                    "(no ensurepip/venv)", f"install python{want}-venv on the host"))
    elif system != want:
        has = f"its python3 is {system}" if system else "it has no python3 package"
        fix = f"set python_version={system!r} in config.py, or install python{want} on the host" if system else \
            "install python3 on the host (apt-get install python3)"
        findings.append(Finding("E012", where, f"python{want} (python_version) is not on the host and {has}", fix))
    return findings


# --- evaluating the settings as deployed --------------------------------------------------------

#: run by the local Python in manage.py's folder with the host's environment; prints one JSON line
PROBE = r"""
import hashlib, hmac, importlib, json, os, sys, traceback
wsgi, nonce, hide_djaploy, marker = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
if hide_djaploy:
    sys.modules["djaploy"] = None  # servers have no djaploy: import fails, find_spec says None
report = {}

def failure(exc):
    if isinstance(exc, ImportError) and (exc.name or "").partition(".")[0] == "djaploy":
        return "ModuleNotFoundError: No module named 'djaploy'"
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]

module, _, attr = wsgi.partition(":")
try:
    if not callable(getattr(importlib.import_module(module), attr or "application")):
        report["wsgi_error"] = wsgi + " is not callable"
except BaseException as exc:
    report["wsgi_error"] = failure(exc)
try:
    from django.conf import settings
    key = str(settings.SECRET_KEY)
    report["settings"] = {
        "DEBUG": bool(settings.DEBUG),
        "ALLOWED_HOSTS": [str(h) for h in settings.ALLOWED_HOSTS],
        "STATIC_ROOT": None if settings.STATIC_ROOT is None else os.fspath(settings.STATIC_ROOT),
        "MEDIA_ROOT": os.fspath(settings.MEDIA_ROOT) if settings.MEDIA_ROOT else None,
        "SQLITE": [os.fspath(db.get("NAME") or "") for db in settings.DATABASES.values()
                   if "sqlite3" in str(db.get("ENGINE", ""))],
        "SECRET_KEY_FROM": sorted(n for n, v in os.environ.items() if v == key and not n.startswith("DJAPLOY_")),
        "SECRET_KEY_MAC": hmac.new(nonce.encode(), key.encode(), hashlib.sha256).hexdigest(),
    }
except BaseException as exc:
    report["settings_error"] = failure(exc)
sys.stdout.write("\n" + marker + json.dumps(report) + "\n")
"""


def deployed_environment(env: str, target: Target) -> dict[str, str]:
    """The variables the host gives the app (the same HostContext builds the env file from)."""
    from djaploy.context import HostContext

    context = HostContext(env=env, target=target, plan=None)  # type: ignore[arg-type] - only reads the config
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


# --- the whole verification -------------------------------------------------------------------


@dataclass
class Options:
    """How to verify: which env, remote or not, and what the local process knows."""

    env: str | None = None
    remote: bool = False
    load: Callable[[Path, str], tuple[DjaployConfig, list[Target]]] = load_targets  # or without secrets (system checks)
    local_secret_key: str | None = None  # SECRET_KEY of the local (non-deployed) settings, if known
    wsgi_setting: str | None = None  # the local settings' WSGI_APPLICATION
    workers: int = max(1, min(4, os.cpu_count() or 1))


def verify(config_dir: Path, options: Options) -> Report:
    """Run every local check (and with options.remote, the host checks) without changing anything."""
    report = Report()
    config_dir = Path(config_dir).absolute()
    try:
        config = load_config(config_dir)
    except ConfigError as error:
        report.findings.append(Finding("E001", "", str(error), FIX_CONFIG))
        return report
    environments = [options.env] if options.env else list_environments(config_dir)
    if not environments:
        folder = display_path(config_dir / "inventory")
        report.findings.append(Finding("W002", "", f"no environments in {folder}",
                                       f"create {folder}/production.py with hosts = [HostConfig(...)]"))
        return report
    targets = _load_environments(config_dir, environments, options, report)
    project, names = _check_project(config_dir, config, options, report)
    if project is not None and targets:
        _check_settings(project, config, targets, options, report, hide_djaploy="djaploy" not in names)
    if options.remote and targets:
        _check_hosts(targets, report)
    return report


def _load_environments(config_dir: Path, environments: Iterable[str], options: Options,
                       report: Report) -> list[tuple[str, Target]]:
    loaded = []
    for env in environments:
        try:
            _, targets = options.load(config_dir, env)
        except ConfigError as error:
            report.findings.append(Finding("E001", env, str(error), FIX_CONFIG))
            continue
        report.passed.append(f"[{env}] config.py and inventory/{env}.py load: {', '.join(t.name for t in targets)}")
        loaded += [(env, target) for target in targets]
    return loaded


def _check_project(config_dir: Path, config: DjaployConfig, options: Options,
                   report: Report) -> tuple[Project | None, set[str]]:
    """manage.py, the WSGI application, the dependencies: the project (None if unusable) and its package names."""
    try:
        project = inspect_project(config_dir, manage_py_path=config.manage_py_path, wsgi_application=config.wsgi_application,
                                  wsgi_setting=options.wsgi_setting, with_dependencies=False)
    except ConfigError as error:
        report.findings.append(Finding("E002", "project", str(error), "fix the project layout or the config field named above"))
        return None, set()
    report.passed.append(f"[project] manage.py at {project.manage_py}, WSGI application {project.wsgi_application}")
    try:
        names, source = dependency_names(project, config)
    except DjaployError as error:
        report.findings.append(Finding("E003", "project", f"the dependencies cannot be read: {error}",
                                       "fix the dependency files named above (what the deploy would install)"))
        return project, set()
    found = requirement_findings(names, source)
    report.findings += found
    if not any(f.id == "E003" for f in found):
        report.passed.append(f"[project] gunicorn is among the dependencies ({source})")
    return project, names


@dataclass(frozen=True)
class WorkingTree:
    """The project's files as they are now (a `SourceTree` for djaploy.dependencies)."""

    root: Path

    def read(self, path: str) -> str | None:
        file = self.root / path
        return file.read_text(errors="replace") if file.is_file() else None

    def directory(self) -> Path:
        return self.root


def dependency_names(project: Project, config: DjaployConfig) -> tuple[set[str], str]:
    """The packages the server would install, read from the working tree without the network.

    A pyproject.toml without a lock is resolved at deploy time over the network; here its
    direct dependencies stand in for it.
    """
    import tomllib

    from djaploy.dependencies import (
        detect_dependencies,
        pin_requirements,
        requirement_names,
    )

    spec = detect_dependencies(project.git_root / project.project_dir, project.git_root, config.dependency_manager)
    if spec.manager == "pep621":
        pyproject = tomllib.loads((project.git_root / spec.files[0]).read_text())
        return requirement_names("\n".join(pyproject.get("project", {}).get("dependencies", []))), spec.describe()
    pinned = pin_requirements(spec, WorkingTree(project.git_root), config.python_version)
    return requirement_names(pinned.hash_input), spec.describe()


def _check_settings(project: Project, config: DjaployConfig, targets: Sequence[tuple[str, Target]], options: Options,
                    report: Report, *, hide_djaploy: bool) -> None:
    """Probe each distinct host environment once, in parallel."""
    from djaploy.engine import Redactor

    nonce = random_tokens.token_hex(16)
    local_mac = None if options.local_secret_key is None else \
        hmac.new(nonce.encode(), options.local_secret_key.encode(), hashlib.sha256).hexdigest()
    project_dir = project.git_root / project.project_dir
    environments = {env_target: deployed_environment(*env_target) for env_target in targets}
    distinct = {json.dumps(e, sort_keys=True): e for e in environments.values()}

    def probe(environment: dict[str, str]) -> dict[str, Any]:
        wsgi = config.wsgi_application or project.wsgi_application
        return probe_settings(project_dir, wsgi, environment, nonce, hide_djaploy=hide_djaploy)

    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        probes = dict(zip(distinct, pool.map(probe, distinct.values())))
    for (env, target), environment in environments.items():
        where = f"{env}/{target.name}"
        expected = Expected(env, AppPaths(target.project_name, target.app_user), served_names(target),
                            frozenset(target.secrets), frozenset(target.env_vars))
        redact = Redactor(target.secrets.values())
        found = probe_findings(probes[json.dumps(environment, sort_keys=True)], expected, where, local_mac)
        report.findings += [Finding(f.id, f.where, redact(f.message), f.hint) for f in found]
        if not any(f.level == "error" for f in found):
            report.passed.append(f"[{where}] settings as deployed: DEBUG off, STATIC_ROOT, ALLOWED_HOSTS covers "
                                 f"{', '.join(expected.domains)}, SECRET_KEY from the environment")


# --- remote -------------------------------------------------------------------------------------


def _check_hosts(targets: Sequence[tuple[str, Target]], report: Report) -> None:
    """One host at a time: each gets its own connection, so one unreachable host hides nothing."""
    for env, target in targets:
        where = f"{env}/{target.name}"
        found, facts = _host_findings(target, where)
        report.findings += found
        if not found:
            report.passed.append(f"[{where}] ssh {target.ssh_user}@{target.ssh_host}:{target.ssh_port} ok, "
                                 f"{'root' if target.ssh_user == 'root' else 'passwordless sudo'}, "
                                 f"{facts.get('os_name')}, python{target.python_version}")


def _host_findings(target: Target, where: str) -> tuple[list[Finding], dict[str, str]]:
    from djaploy.engine import Engine, Redactor, Reporter

    engine = Engine([target], Reporter(out=io.StringIO(), redact=Redactor(target.secrets.values())))
    try:
        try:
            engine.connect()
        except ConnectError as error:
            reason = str(error).splitlines()[0].removeprefix(f"[{target.name}] ")
            return [Finding("E009", where, reason, "check the host is up and its ssh_host, ssh_port, "
                            "ssh_user and ssh_key in the inventory; try: ssh -p PORT USER@HOST")], {}
        if target.ssh_user != "root":
            problem = _sudo_problem(target)
            if problem:
                return [Finding("E010", where, f"{target.ssh_user} cannot run sudo without a password: {problem}",
                                f"as root on the host: echo '{target.ssh_user} ALL=(ALL) NOPASSWD:ALL' > "
                                f"/etc/sudoers.d/{target.ssh_user} && chmod 440 /etc/sudoers.d/{target.ssh_user}; "
                                "or connect as root (ssh_user='root')")], {}
        result = engine.plan_for(target).query(facts_command(target.python_version))
        if not result.ok:
            return [Finding("E009", where, f"reading the host's system facts failed: {result.stderr.strip()[-500:]}",
                            "run the command by hand over ssh to see why; the host must run a POSIX shell")], {}
        facts = parse_facts(result.stdout)
        return remote_findings(facts, target, where), facts
    finally:
        engine.disconnect()


def _sudo_problem(target: Target) -> str | None:
    """Ask sudo itself, non-interactively (pyinfra would prompt for a password instead of failing)."""
    from djaploy.remote import SSH_FAILED, ssh_argv

    try:
        result = subprocess.run(ssh_argv(target, "sudo -n true"), check=False, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60)
    except FileNotFoundError:
        return "the ssh client is not installed here to ask (apt-get install openssh-client)"
    except subprocess.TimeoutExpired:
        return "no answer within 60s"
    if result.returncode == 0:
        return None
    stderr = result.stderr.strip() or f"exit {result.returncode}"
    return f"ssh failed: {stderr}" if result.returncode == SSH_FAILED else stderr
