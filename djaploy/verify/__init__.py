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
    djaploy.E012  --remote: python_provider="system" and the host's OS has no such python_version
    djaploy.E013  the postgres module gives DATABASE_URL, but DATABASES as deployed does not use PostgreSQL
    djaploy.W001  DJAPLOY_CONFIG_DIR names a folder that does not exist
    djaploy.W002  no environments in infra/inventory/
    djaploy.W003  MEDIA_ROOT as deployed is not DJAPLOY_MEDIA_ROOT (uploads land in the release)
    djaploy.W004  an SQLite database as deployed is outside DJAPLOY_DATA_DIR (lost on the next deploy)
    djaploy.W005  SECRET_KEY as deployed comes from env_vars (written in the repository) or from no variable
    djaploy.W006  djaploy is in the server requirements (it is a deploy-time tool: 100+ MB on every server)
    djaploy.W007  --remote: the host is Debian-based but neither Debian nor Ubuntu
    djaploy.W008  the postgres module's max_connections is below what the environment's app can open
    djaploy.W009  media files on the local disk as deployed while more than one web host shares one database

"As deployed" means evaluated the way the server runs the app: in a fresh Python process, from
manage.py's folder, with only the variables a host gives the app (DJAPLOY_ENV, DJAPLOY_RELEASE,
DJAPLOY_STATIC_ROOT, DJAPLOY_MEDIA_ROOT, DJAPLOY_DATA_DIR, env_vars, secrets) and without djaploy
importable (servers do not have it). Secrets reach that process through its environment only and
are never printed: findings are redacted, and SECRET_KEY is compared by keyed hash.

Here: `Options` and `verify()`, which runs the checks in order. findings.py holds Finding, Report
and the pure checks; deployed_settings.py reads the settings as deployed; host_facts.py the --remote checks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets as random_tokens
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from djaploy.config import DjaployConfig, Target
from djaploy.errors import ConfigError, DjaployError
from djaploy.inventory import display_path, list_environments, load_config, load_targets
from djaploy.layout import AppPaths
from djaploy.project import Project, inspect_project
from djaploy.verify.deployed_settings import (
    deployed_environment,
    probe_findings,
    probe_settings,
)
from djaploy.verify.findings import (
    Expected,
    Finding,
    Report,
    connection_findings,
    requirement_findings,
    served_names,
)
from djaploy.verify.host_facts import check_hosts

FIX_CONFIG = "fix the file and field named above (a secret's variable must be exported in the shell that deploys)"


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
    _check_connections(config_dir, targets, report)
    project, names = _check_project(config_dir, config, options, report)
    if project is not None and targets:
        _check_settings(project, config, targets, options, report, hide_djaploy="djaploy" not in names)
    if options.remote and targets:
        check_hosts(targets, report)
    return report


def _check_connections(config_dir: Path, targets: Sequence[tuple[str, Target]], report: Report) -> None:
    """With the postgres module: does max_connections hold what the environment's app can open?"""
    from djaploy.fleet import POSTGRES_MODULE
    from djaploy.modules.postgres.options import settings_for
    from djaploy.modules.postgres.server_config import connections_needed, database_host

    for env in dict.fromkeys(env for env, _ in targets):
        fleet = [target for other, target in targets if other == env]
        if not any(POSTGRES_MODULE in target.modules for target in fleet):
            continue
        db = database_host(fleet)  # inventories load only with exactly one
        allowed, needed = settings_for(db, config_dir).max_connections, connections_needed(fleet)
        found = connection_findings(env, allowed, needed)
        report.findings += found
        if not found:
            report.passed.append(f"[{env}] PostgreSQL on {db.name}: max_connections {allowed} holds the app's {needed}")


def resolved_line(env: str, target: Target) -> str:
    """One host as every command will see it: where the app lives, how it deploys, what it serves."""
    paths = AppPaths.for_target(target)
    return (f"[{env}/{target.name}] {target.ssh_user}@{target.ssh_host}:{target.ssh_port}, app {target.app_name} at "
            f"{paths.app_root}, {target.deployment_strategy}, domains: {', '.join(target.domains) or 'none'}, "
            f"modules: {', '.join(target.modules)}")


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
        report.resolved += [resolved_line(env, target) for target in targets]
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
    from djaploy.redact import Redactor

    nonce = random_tokens.token_hex(16)
    local_mac = None if options.local_secret_key is None else \
        hmac.new(nonce.encode(), options.local_secret_key.encode(), hashlib.sha256).hexdigest()
    project_dir = project.git_root / project.project_dir
    environments = {}
    for env, target in targets:
        fleet = [other for other_env, other in targets if other_env == env]
        try:
            environments[env, target] = deployed_environment(env, target, fleet)
        except ConfigError as error:  # a module's secret is not exported here
            if options.load is load_targets:  # checks without secrets probe without that module's variables
                report.findings.append(Finding("E001", f"{env}/{target.name}", str(error), FIX_CONFIG))
                continue
            environments[env, target] = deployed_environment(env, replace(target, modules=()), fleet)
    distinct = {json.dumps(e, sort_keys=True): e for e in environments.values()}

    def probe(environment: dict[str, str]) -> dict[str, Any]:
        wsgi = config.wsgi_application or project.wsgi_application
        return probe_settings(project_dir, wsgi, environment, nonce, hide_djaploy=hide_djaploy)

    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        probes = dict(zip(distinct, pool.map(probe, distinct.values())))
    for (env, target), environment in environments.items():
        where = f"{env}/{target.name}"
        web_hosts = sum("web" in other.roles for other_env, other in targets if other_env == env)
        expected = Expected(env, AppPaths.for_target(target), served_names(target),
                            frozenset(target.secrets), frozenset(target.env_vars), web_hosts,
                            database_url="DATABASE_URL" in environment and "DATABASE_URL" not in target.env_vars
                            and "DATABASE_URL" not in target.secrets)
        redact = Redactor(target.secrets.values())
        found = probe_findings(probes[json.dumps(environment, sort_keys=True)], expected, where, local_mac)
        report.findings += [Finding(f.id, f.where, redact(f.message), f.hint) for f in found]
        if not any(f.level == "error" for f in found):
            report.passed.append(f"[{where}] settings as deployed: DEBUG off, STATIC_ROOT, ALLOWED_HOSTS covers "
                                 f"{', '.join(expected.domains)}, SECRET_KEY from the environment")

