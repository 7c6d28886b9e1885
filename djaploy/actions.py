"""What each command does, as library calls (management commands only parse args and print).

Every action validates config, inventory and project before connecting to any host, so bad
input changes nothing. Hosts then run in parallel; the result says per host what happened.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from djaploy.artifact import RefSpec, Release, build_release
from djaploy.config import Target
from djaploy.context import HostContext, Plan
from djaploy.engine import Engine, Redactor, Reporter
from djaploy.errors import DjaployError
from djaploy.inventory import load_targets
from djaploy.modules.base import BaseModule, load_modules
from djaploy.project import Project, inspect_project
from djaploy.strategies import in_place

STRATEGIES: dict[str, Callable[[HostContext, list[BaseModule]], None]] = {"in_place": in_place.deploy}


@dataclass
class RunResult:
    """The outcome of one command over all hosts of an environment."""

    command: str
    env: str
    dry_run: bool
    seconds: float = 0.0
    errors: dict[str, BaseException] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    release: Release | None = None
    urls: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class RunFailed(DjaployError):
    """One or more hosts failed; carries the partial result for the summary."""

    def __init__(self, result: RunResult, message: str) -> None:
        self.result = result
        super().__init__(message)


def _reporter(out: TextIO, targets: list[Target], verbosity: int) -> Reporter:
    secrets = [value for target in targets for value in target.secrets.values()]
    return Reporter(out=out, redact=Redactor(secrets), verbosity=verbosity)


def _modules_for(targets: list[Target], config_dir: Path) -> dict[str, list[BaseModule]]:
    config_file = str(config_dir / "config.py")
    return {target.name: load_modules(target.modules, file=config_file) for target in targets}


def _site_urls(target: Target) -> list[str]:
    return [f"http://{domain}/" for domain in target.domains] or [f"http://{target.ssh_host}/"]


def _run(
    command: str,
    env: str,
    targets: list[Target],
    reporter: Reporter,
    dry_run: bool,
    work: Callable[[Target, Plan], None],
    result: RunResult,
) -> RunResult:
    started = time.monotonic()
    with Engine(targets, reporter, dry_run=dry_run) as engine:
        outcomes = engine.run_per_host(work)
    result.seconds = time.monotonic() - started
    for target in targets:
        result.changed[target.name] = len(reporter.changed_steps(target.name))
        result.urls[target.name] = _site_urls(target)
        error = outcomes.get(target.name)
        if error is not None:
            result.errors[target.name] = error
    if result.errors:
        lines = [f"{command} failed on {len(result.errors)} of {len(targets)} host(s):"]
        for name, error in result.errors.items():
            if isinstance(error, KeyboardInterrupt):
                lines.append(f"[{name}] interrupted")
            elif isinstance(error, DjaployError):
                lines.append(str(error))
            else:
                lines.append(f"[{name}] unexpected error: {type(error).__name__}: {error}")
        raise RunFailed(result, reporter.redact("\n".join(lines)))
    return result


def configure_server(config_dir: Path, env: str, *, out: TextIO, dry_run: bool = False, verbosity: int = 1) -> RunResult:
    """Provision every host of `env`: users, Python, web server, directories. Idempotent."""
    _config, targets = load_targets(config_dir, env)
    modules = _modules_for(targets, config_dir)
    reporter = _reporter(out, targets, verbosity)

    def work(target: Target, plan: Plan) -> None:
        ctx = HostContext(env=env, target=target, plan=plan, config_dir=config_dir)
        for module in modules[target.name]:
            module.configure_server(ctx)

    return _run("configureserver", env, targets, reporter, dry_run, work, RunResult("configureserver", env, dry_run))


def _strategy(target: Target, config_dir: Path) -> Callable[[HostContext, list[BaseModule]], None]:
    try:
        return STRATEGIES[target.deployment_strategy]
    except KeyError:
        raise DjaployError(
            f"{target.source_file}: host {target.name}: deployment_strategy "
            f"{target.deployment_strategy!r} is not available in this version of djaploy yet; "
            f"available: {', '.join(STRATEGIES)}"
        ) from None


def deploy(
    config_dir: Path,
    env: str,
    spec: RefSpec,
    *,
    out: TextIO,
    dry_run: bool = False,
    verbosity: int = 1,
    wsgi_setting: str | None = None,
) -> RunResult:
    """Build a release from git and ship it to every host of `env` with its strategy."""
    config, targets = load_targets(config_dir, env)
    modules = _modules_for(targets, config_dir)
    strategies = {target.name: _strategy(target, config_dir) for target in targets}
    project: Project = inspect_project(
        config_dir,
        manage_py_path=config.manage_py_path,
        wsgi_application=config.wsgi_application,
        wsgi_setting=wsgi_setting,
    )
    reporter = _reporter(out, targets, verbosity)
    with tempfile.TemporaryDirectory(prefix="djaploy-release-") as workdir:
        release = build_release(project, spec, Path(workdir), config.python_version)
        reporter.line(f"release {release.name} from {release.ref} (commit {release.commit[:8]})")

        def work(target: Target, plan: Plan) -> None:
            ctx = HostContext(env=env, target=target, plan=plan, config_dir=config_dir, project=project, release=release)
            strategies[target.name](ctx, modules[target.name])

        result = RunResult("deploy", env, dry_run, release=release)
        return _run("deploy", env, targets, reporter, dry_run, work, result)
