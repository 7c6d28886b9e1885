"""What each command does, as library calls (management commands only parse args and print).

Every action validates config, inventory and project before connecting to any host, so bad
input changes nothing. Hosts then run in parallel; the result says per host what happened.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from djaploy.context import HostContext
from djaploy.deploy_files import check_deploy_files
from djaploy.modules.base import BaseModule
from djaploy.prepare import run_prepare
from djaploy.project import inspect_project
from djaploy.release_news import ReleaseNews
from djaploy.rolling import describe
from djaploy.rollout import deploy_phases, switch_phases
from djaploy.rollout_plan import plan_rollout
from djaploy.rollout_run import run_rollout
from djaploy.session import RunFailed, RunResult, Session, open_session, run_on_hosts
from djaploy.strategies.common import run_hooks
from djaploy.timings import timed_process

if TYPE_CHECKING:  # building a release is deploy's alone: rollback, activate and configureserver skip its imports
    from djaploy.artifact import RefSpec

__all__ = ["RunFailed", "RunResult", "Session", "activate", "configure_server", "deploy", "open_session", "rollback",
           "run_on_hosts", "status", "unlock"]


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
    increment: str | None = None,
    log: TextIO | None = None,
    batch_size: int | str | None = None,
    revert: bool = True,
) -> RunResult:
    """Build a release from git and ship it to every host of `env` with its strategy.

    `increment` (patch, minor, major) overrides the configured version bump for this deploy.
    `batch_size` (2, '25%'; default: config.py's) switches the web hosts in batches (djaploy.rolling);
    `revert=False` leaves hosts already switched on the new release when a later batch fails."""
    from djaploy.artifact import build_release, resolve_commit

    session = open_session(config_dir, env, out, verbosity, log)
    # a fleet its strategy cannot stage is refused before anything is built
    plan = plan_rollout(session.targets, session.config.batch_size if batch_size is None else batch_size)
    project = inspect_project(
        config_dir,
        manage_py_path=session.config.manage_py_path,
        wsgi_application=session.config.wsgi_application,
        wsgi_setting=wsgi_setting,
        dependency_manager=session.config.dependency_manager,
    )
    news = ReleaseNews(session, project.git_root, "deploy")
    try:
        # The version first: a problem with it stops the deploy before anything is built or touched.
        version = news.decide(resolve_commit(project.git_root, spec), spec, increment, dry_run=dry_run)
        news.phase = "prepare"
        # prepare() builds local files (a front end...): not in a dry run, which must change nothing.
        prepared = [] if dry_run else run_prepare(config_dir, out, verbosity, reporter=session.reporter)
        news.phase = "build the release"
        with tempfile.TemporaryDirectory(prefix="djaploy-release-") as workdir:
            with timed_process("build"):
                release = news.stamp(build_release(project, spec, Path(workdir), session.config.python_version,
                                                   extra_paths=prepared))
            check_deploy_files(config_dir, env, session.targets, release.name)  # bad templates fail before connecting
            as_version = f", version {version.name}" if version else ""
            session.reporter.line(f"release {release.name} from {release.ref} (commit {release.commit[:8]}{as_version})")

            if plan.rolling:
                session.reporter.line(describe(plan.batches, plan.load_balancers))
            news.phase = "deploy"
            result = run_rollout(
                session, RunResult("deploy", env, dry_run, release=release), plan,
                lambda runs, balancers, parallel: deploy_phases(
                    runs, plan, parallel, activate=activate, force_unlock=force_unlock, on_live=news.record_serving,
                    balancers=balancers, revert=revert),
                project=project, release=release)
    except BaseException as error:
        news.failed(error)
        raise
    return news.succeeded(result)


def _switch_action(command: str, config_dir: Path, env: str, *, out: TextIO, dry_run: bool, verbosity: int,
                   to: str | None = None, force_unlock: bool = False, wsgi_setting: str | None = None,
                   log: TextIO | None = None) -> RunResult:
    session = open_session(config_dir, env, out, verbosity, log)
    plan = plan_rollout(session.targets, session.config.batch_size)  # the same batches as deploys
    # A broken lock file must never block a rollback: dependencies are not read here.
    project = inspect_project(config_dir, manage_py_path=session.config.manage_py_path,
                              wsgi_application=session.config.wsgi_application, wsgi_setting=wsgi_setting,
                              with_dependencies=False)

    news = ReleaseNews(session, project.git_root, command)
    news.phase = command
    if plan.rolling:
        session.reporter.line(describe(plan.batches, plan.load_balancers))
    try:
        result = run_rollout(
            session, RunResult(command, env, dry_run), plan,
            lambda runs, balancers, parallel: switch_phases(runs, plan, parallel, command, to=to, force_unlock=force_unlock,
                                                            on_live=news.record_serving, balancers=balancers),
            project=project)
    except BaseException as error:
        news.failed(error)
        raise
    return news.succeeded(result)


def activate(config_dir: Path, env: str, *, out: TextIO, dry_run: bool = False, verbosity: int = 1, **options: Any) -> RunResult:
    """bluegreen: check the staged slot and switch traffic to it."""
    return _switch_action("activate", config_dir, env, out=out, dry_run=dry_run, verbosity=verbosity, **options)


def rollback(config_dir: Path, env: str, *, out: TextIO, dry_run: bool = False, verbosity: int = 1, **options: Any) -> RunResult:
    """Back to the previous release (zero_downtime) or slot (bluegreen)."""
    return _switch_action("rollback", config_dir, env, out=out, dry_run=dry_run, verbosity=verbosity, **options)


def status(config_dir: Path, env: str, *, out: TextIO, verbosity: int = 1, log: TextIO | None = None) -> RunResult:
    """Per host: strategy, live release or slot, releases, services, lock, recent audit lines."""
    from djaploy.modules.haproxy.status import STATUS_KEY, read_lb_states
    from djaploy.status import read_status

    session = open_session(config_dir, env, out, verbosity, log, needs_secrets=False)
    result = RunResult("status", env, dry_run=False)

    def work(ctx: HostContext, modules: list[BaseModule]) -> None:
        result.data[ctx.target.name] = read_status(ctx)
        result.data[ctx.target.name][STATUS_KEY] = read_lb_states(ctx)

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
