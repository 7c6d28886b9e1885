"""Steps every strategy shares: audit fields, upload, hooks, the switch, clean-up.

Each step is one plan call (one SSH round trip where possible): switching and rolling back
are hot paths.
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import UndoFailed
from djaploy.layout import (
    LANES,
    RELEASE_INFO_NAME,
    SLOTS,
    VENV_LINK_NAME,
    AppPaths,
    AppService,
)
from djaploy.modules.base import BaseModule, call_hook
from djaploy.system_services import retire_units_command
from djaploy.timings import timed_into


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployer() -> str:
    """Who is deploying, for the lock and the audit log."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def release_info(ctx: HostContext) -> dict[str, Any]:
    """What a release is, stored in its folder and in state.json."""
    assert ctx.release
    version = {"version": ctx.release.version} if ctx.release.version else {}
    return {
        **version,
        "release": ctx.release.name,
        "ref": ctx.release.ref,
        "commit": ctx.release.commit,
        "deployed_at": utc_now(),
        "deployed_by": deployer(),
        "python": ctx.python_interpreter.version,
        "python_provider": ctx.python_interpreter.provider,
        "venv": ctx.venv_dir,
    }


class UndoOnFailure:
    """``with UndoOnFailure(what, undo):`` runs `undo` (which puts the host back) when the block
    fails, an interruption included, then lets the failure go on. When `undo` fails too, it
    raises UndoFailed, which reports both errors: a bare raise from the undo would replace the
    first, and the user would never learn why the operation failed. A class, not a generator:
    its __exit__ sees the failure without catching it."""

    def __init__(self, what: str, undo: Callable[[], object]) -> None:
        self.what = what
        self.undo = undo

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> bool:
        if error is not None:
            try:
                self.undo()
            except Exception as undo_error:
                raise UndoFailed(error, self.what, undo_error) from error
        return False  # never swallow the failure


def audit_fields(ctx: HostContext) -> dict[str, Any]:
    release = ctx.release
    if not release:
        return {}
    return {"release": release.name, "ref": release.ref, "commit": release.commit,
            **({"version": release.version} if release.version else {})}


def upload_and_extract(ctx: HostContext, destination: str) -> None:
    """Upload the release tarball and extract it into `destination` (a fresh folder)."""
    assert ctx.release
    tarball = ctx.paths.upload_path(ctx.release.name)
    with timed(ctx, "upload"):
        _upload_and_extract(ctx, tarball, destination)


def _upload_and_extract(ctx: HostContext, tarball: str, destination: str) -> None:
    assert ctx.release
    info = release_info(ctx)
    ctx.plan.put_file("upload release", str(ctx.release.tarball), tarball, owner=ctx.target.app_user, mode="640")
    ctx.plan.run(
        "extract release",
        f"{shell.extract_tarball(tarball, destination)} && rm -f {shell.q(tarball)} && "
        f"{shell.write_file_atomically(destination + '/' + RELEASE_INFO_NAME, json.dumps(info, sort_keys=True))}"
        + version_file_command(ctx, destination, info),
        as_user=ctx.target.app_user,
    )


def version_file_command(ctx: HostContext, destination: str, info: dict[str, Any]) -> str:
    """The release's own VERSION file: in its folder, so a rollback shows the version serving again."""
    assert ctx.release
    if not (ctx.release.version and ctx.release.version_file):
        return ""
    text = (f"VERSION={ctx.release.version}\nCOMMIT={ctx.release.commit}\n"
            f"DEPLOYED_AT={info['deployed_at']}\nENVIRONMENT={ctx.env}")
    return f" && {shell.write_file_atomically(destination + '/' + ctx.release.version_file, text)}"


def route_traffic(ctx: HostContext, modules: list[BaseModule]) -> None:
    """Send the app's traffic to `ctx.service`: swap the live link atomically (no reload)."""
    assert ctx.service
    with timed(ctx, "switch"):
        ctx.plan.run(f"route traffic to {ctx.service.name}", shell.switch_symlink(ctx.paths.live_link, ctx.service.socket_path))
    run_hooks(ctx, modules, "route_traffic")


@contextmanager
def timed(ctx: HostContext, phase: str) -> Iterator[None]:
    """Add the time spent in `phase` to the host's timings (the summary shows them), minus the
    phases timed inside it (djaploy.timings)."""
    with timed_into(ctx.timings, phase):
        yield


def run_hooks(ctx: HostContext, modules: list[BaseModule], *hooks: str) -> None:
    for hook in hooks:
        with timed(ctx, hook.replace("_", " ")):
            for module in modules:
                call_hook(ctx, module, hook)


def check_socket(ctx: HostContext, socket_path: str, step: str) -> None:
    """Require a 2xx from a running service's own socket (bluegreen slots)."""
    ctx.plan.run(
        step,
        shell.http_check(ctx.health_host, ctx.target.health_check_path, unix_socket=socket_path, attempts=20),
    )


def clean_up(ctx: HostContext, strategy: str, removals: list[str] = ()) -> None:
    """One round trip once traffic is on the new release: retire the services and remove the
    code folders other strategies left behind (their state was replaced), then `removals`, and
    the venvs no code folder links to."""
    paths = ctx.paths
    kept = {service.name for service in _services_of(paths, strategy)}
    retire = retire_units_command([service for service in paths.all_services() if service.name not in kept])
    own = {"in_place": paths.code_dir, "zero_downtime": paths.releases_dir, "bluegreen": paths.slots_dir}
    leftovers = [folder for name, folder in own.items() if name != strategy]
    if strategy != "zero_downtime":
        leftovers.append(paths.current)
    doomed = " ".join(shell.q(path) for path in [*removals, *leftovers])
    links = f"{shell.q(paths.code_dir)}/{VENV_LINK_NAME} {shell.q(paths.releases_dir)}/*/{VENV_LINK_NAME} {shell.q(paths.slots_dir)}/*/{VENV_LINK_NAME}"
    with timed(ctx, "clean-up"):
        ctx.plan.run(
            "clean up other strategies, old releases and venvs",
            f"{retire}; rm -rf {doomed}; {shell.remove_unused_venvs(paths.shared, links)}",
        )


def _services_of(paths: AppPaths, strategy: str) -> list[AppService]:
    """The services a strategy runs; every other app service on the host is a leftover."""
    if strategy == "bluegreen":
        return [paths.service_for(strategy, slot) for slot in SLOTS]
    if strategy == "zero_downtime":
        return [paths.service_for(strategy, lane) for lane in LANES]
    return [paths.service_for(strategy)]
