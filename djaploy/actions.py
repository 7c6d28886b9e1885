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
from typing import Any, TextIO

from djaploy.artifact import RefSpec, Release, build_release
from djaploy.config import Target
from djaploy.context import HostContext, Plan
from djaploy.deploy_files import check_deploy_files
from djaploy.engine import Engine, Redactor, Reporter
from djaploy.errors import DjaployError
from djaploy.inventory import load_targets, load_targets_without_secrets
from djaploy.modules.base import BaseModule, load_modules
from djaploy.prepare import run_prepare
from djaploy.project import inspect_project
from djaploy.strategies import STRATEGIES
from djaploy.strategies.common import audit_fields, locked, run_hooks


@dataclass
class RunResult:
    """The outcome of one command over all hosts of an environment."""

    command: str
    env: str
    dry_run: bool
    seconds: float = 0.0
    errors: dict[str, BaseException] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    release: Release | None = None
    urls: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    serving: dict[str, str] = field(default_factory=dict)  # after a failure: what the host still serves
    strategies: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class RunFailed(DjaployError):
    """One or more hosts failed; carries the partial result for the summary."""

    def __init__(self, result: RunResult, message: str) -> None:
        self.result = result
        super().__init__(message)


@dataclass
class Session:
    """Validated inputs of one command: config, hosts, modules, and the reporter."""

    config_dir: Path
    env: str
    targets: list[Target]
    modules: dict[str, list[BaseModule]]
    reporter: Reporter
    config: Any


def open_session(config_dir: Path, env: str, out: TextIO, verbosity: int, log: TextIO | None = None,
                 *, needs_secrets: bool = True) -> Session:
    """Load and validate everything before any connection. Commands that send no secrets to the
    hosts (status, unlock) work without the deployer's secret variables."""
    config, targets = (load_targets if needs_secrets else load_targets_without_secrets)(config_dir, env)
    config_file = str(config_dir / "config.py")
    modules = {target.name: load_modules(target.modules, file=config_file) for target in targets}
    for target in targets:
        for module in modules[target.name]:
            module.check_target(target, config_dir)
    secrets = [value for target in targets for value in target.secrets.values()]
    reporter = Reporter(out=out, redact=Redactor(secrets), verbosity=verbosity, log=log)
    return Session(config_dir, env, targets, modules, reporter, config)


def run_on_hosts(session: Session, result: RunResult, work: Callable[[HostContext, list[BaseModule]], str | None], **context: Any) -> RunResult:
    """Connect, run `work` on every host in parallel, collect per-host outcomes."""
    from djaploy.certs import site_urls  # certs builds on this module

    started = time.monotonic()
    reporter = session.reporter

    def host_work(target: Target, plan: Plan) -> None:
        ctx = HostContext(env=session.env, target=target, plan=plan, config_dir=session.config_dir, **context)
        result.strategies[target.name] = target.deployment_strategy
        try:
            message = work(ctx, session.modules[target.name])
        except BaseException:
            result.serving[target.name] = _serving_after_failure(ctx)
            raise
        finally:
            result.timings[target.name] = dict(ctx.timings)
        if message:
            result.messages[target.name] = message

    with Engine(session.targets, reporter, dry_run=result.dry_run) as engine:
        outcomes = engine.run_per_host(host_work)
    result.seconds = time.monotonic() - started
    for target in session.targets:
        result.changed[target.name] = len(reporter.changed_steps(target.name))
        result.urls[target.name] = site_urls(target)
        error = outcomes.get(target.name)
        if error is not None:
            result.errors[target.name] = error
    if result.errors:
        lines = [f"{result.command} failed on {len(result.errors)} of {len(session.targets)} host(s):"]
        for name, error in result.errors.items():
            if isinstance(error, KeyboardInterrupt):
                lines.append(f"[{name}] interrupted")
            elif isinstance(error, DjaployError):
                lines.append(str(error))
            else:
                lines.append(f"[{name}] unexpected error: {type(error).__name__}: {error}")
        raise RunFailed(result, reporter.redact("\n".join(lines)))
    return result


def _serving_after_failure(ctx: HostContext) -> str:
    """What the host serves after a failed operation, read back from the host itself."""
    from djaploy.strategies.common import read_state
    from djaploy.summary import serving_from_state

    try:
        return serving_from_state(read_state(ctx))
    except BaseException:  # noqa: BLE001 - the connection may be gone; the summary says so
        return ""


def configure_server(config_dir: Path, env: str, *, out: TextIO, dry_run: bool = False, verbosity: int = 1,
                     log: TextIO | None = None) -> RunResult:
    """Provision every host of `env`: users, Python, web server, directories. Idempotent."""
    session = open_session(config_dir, env, out, verbosity, log)

    def work(ctx: HostContext, modules: list[BaseModule]) -> None:
        run_hooks(ctx, modules, "configure_server")

    return run_on_hosts(session, RunResult("configureserver", env, dry_run), work)


def deploy(
    config_dir: Path,
    env: str,
    spec: RefSpec,
    *,
    out: TextIO,
    dry_run: bool = False,
    verbosity: int = 1,
    wsgi_setting: str | None = None,
    activate: bool = False,
    force_unlock: bool = False,
    log: TextIO | None = None,
) -> RunResult:
    """Build a release from git and ship it to every host of `env` with its strategy."""
    session = open_session(config_dir, env, out, verbosity, log)
    project = inspect_project(
        config_dir,
        manage_py_path=session.config.manage_py_path,
        wsgi_application=session.config.wsgi_application,
        wsgi_setting=wsgi_setting,
        dependency_manager=session.config.dependency_manager,
    )
    # prepare() builds local files (a front end...): not in a dry run, which must change nothing.
    prepared = [] if dry_run else run_prepare(config_dir, out, verbosity)
    with tempfile.TemporaryDirectory(prefix="djaploy-release-") as workdir:
        release = build_release(project, spec, Path(workdir), session.config.python_version, extra_paths=prepared)
        check_deploy_files(config_dir, env, session.targets, release.name)  # bad templates fail before connecting
        session.reporter.line(f"release {release.name} from {release.ref} (commit {release.commit[:8]})")

        def work(ctx: HostContext, modules: list[BaseModule]) -> str:
            strategy = STRATEGIES[ctx.target.deployment_strategy]
            audit = audit_fields(ctx)
            with locked(ctx, "deploy", audit, force_unlock=force_unlock):
                return strategy.deploy(ctx, modules, audit, activate)

        return run_on_hosts(session, RunResult("deploy", env, dry_run, release=release), work, project=project, release=release)


def _switch_action(command: str, config_dir: Path, env: str, *, out: TextIO, dry_run: bool, verbosity: int,
                   to: str | None = None, force_unlock: bool = False, wsgi_setting: str | None = None,
                   log: TextIO | None = None) -> RunResult:
    session = open_session(config_dir, env, out, verbosity, log)
    # A broken lock file must never block a rollback: dependencies are not read here.
    project = inspect_project(config_dir, manage_py_path=session.config.manage_py_path,
                              wsgi_application=session.config.wsgi_application, wsgi_setting=wsgi_setting,
                              with_dependencies=False)

    def work(ctx: HostContext, modules: list[BaseModule]) -> str:
        strategy = STRATEGIES[ctx.target.deployment_strategy]
        audit: dict[str, Any] = {}
        with locked(ctx, command, audit, force_unlock=force_unlock):
            if command == "rollback":
                return strategy.rollback(ctx, modules, audit, to)
            return strategy.activate(ctx, modules, audit)

    return run_on_hosts(session, RunResult(command, env, dry_run), work, project=project)


def activate(config_dir: Path, env: str, *, out: TextIO, dry_run: bool = False, verbosity: int = 1, **options: Any) -> RunResult:
    """bluegreen: check the staged slot and switch traffic to it."""
    return _switch_action("activate", config_dir, env, out=out, dry_run=dry_run, verbosity=verbosity, **options)


def rollback(config_dir: Path, env: str, *, out: TextIO, dry_run: bool = False, verbosity: int = 1, **options: Any) -> RunResult:
    """Back to the previous release (zero_downtime) or slot (bluegreen)."""
    return _switch_action("rollback", config_dir, env, out=out, dry_run=dry_run, verbosity=verbosity, **options)


def status(config_dir: Path, env: str, *, out: TextIO, verbosity: int = 1, log: TextIO | None = None) -> RunResult:
    """Per host: strategy, live release or slot, releases, services, lock, recent audit lines."""
    from djaploy.status import read_status

    session = open_session(config_dir, env, out, verbosity, log, needs_secrets=False)
    result = RunResult("status", env, dry_run=False)

    def work(ctx: HostContext, modules: list[BaseModule]) -> None:
        result.data[ctx.target.name] = read_status(ctx)

    return run_on_hosts(session, result, work)


def unlock(config_dir: Path, env: str, *, out: TextIO, verbosity: int = 1, log: TextIO | None = None) -> RunResult:
    """Break a stale deploy lock on purpose (a deployer killed mid-deploy leaves one)."""
    from djaploy import shell

    session = open_session(config_dir, env, out, verbosity, log, needs_secrets=False)
    result = RunResult("unlock", env, dry_run=False)

    def work(ctx: HostContext, modules: list[BaseModule]) -> str:
        lock = ctx.paths.lock_dir
        held = ctx.plan.query(f"cat {shell.q(lock)}/info.json 2>/dev/null").stdout.strip()
        if not held:
            return "no lock was held"
        ctx.plan.run("break deploy lock", f"rm -rf {shell.q(lock)}")
        return f"lock broken (was held by: {held})"

    return run_on_hosts(session, result, work)
