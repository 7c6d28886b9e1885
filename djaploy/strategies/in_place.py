"""in_place: replace the code in one folder and restart. Simple, with a brief interruption.

The release is extracted beside the live code and renamed into place, then dependencies,
migrations and collectstatic run, then the service restarts and the health check must pass.
(In a fleet sharing one database, the release is prepared beside the live code instead, so the
primary can migrate once before any host switches.)
There is no previous release to roll back to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.modules.base import BaseModule
from djaploy.state import write_state
from djaploy.strategies.common import (
    UndoOnFailure,
    clean_up,
    release_info,
    route_traffic,
    run_hooks,
    upload_and_extract,
)

NAME = "in_place"


@dataclass(frozen=True)
class Staged:
    """The release extracted beside the live code; `prepared` when its hooks already ran there."""

    folder: str
    prepared: bool


def stage(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> Staged:
    """Upload and extract the release beside the live code. In a fleet whose primary migrates once
    (ctx.runs_migrations False), also prepare it there (venv, env file, collectstatic), so the
    migration runs with the new code before any host switches; alone, it prepares once in place."""
    ctx.service = ctx.paths.service_for(NAME)
    staged = Staged(f"{ctx.paths.code_dir}.new", prepared=not ctx.runs_migrations)
    upload_and_extract(ctx, staged.folder)
    if staged.prepared:
        ctx.code_dir = staged.folder
        with UndoOnFailure("remove the staged release", lambda: discard(ctx, staged)):
            run_hooks(ctx, modules, "prepare_data", "prepare_release")
    return staged


def discard(ctx: HostContext, staged: Staged) -> None:
    """Remove an extracted release that will not go live."""
    if not ctx.plan.dry_run:
        ctx.plan.run("remove the staged release", f"rm -rf {shell.q(staged.folder)}")


def go_live(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], staged: Staged,
            activate: bool = False) -> str:
    """Put the release in place, prepare it unless staging did (venv, migrations, collectstatic),
    and restart onto it."""
    paths = ctx.paths
    ctx.plan.run("put release in place", shell.replace_dir(staged.folder, paths.code_dir), as_user=ctx.target.app_user)
    ctx.code_dir = paths.code_dir
    run_hooks(ctx, modules, *(() if staged.prepared else ("prepare_data", "prepare_release")), "publish")
    route_traffic(ctx, modules)
    run_hooks(ctx, modules, "verify")
    clean_up(ctx, NAME)
    assert ctx.release
    write_state(ctx, {"strategy": NAME, "current": ctx.release.name, "releases": {ctx.release.name: release_info(ctx)}})
    return f"release {ctx.release.name} is live"


def deploy(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], activate: bool = False) -> str:
    return go_live(ctx, modules, audit, stage(ctx, modules, audit))


def check_switch(ctx: HostContext, command: str, to: str | None = None) -> None:
    """in_place can neither roll back nor activate: say so before any host of a fleet switches."""
    (rollback if command == "rollback" else activate)(ctx, [], {})


def rollback(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], to: str | None = None) -> str:
    raise DjaployError(
        f"[{ctx.target.name}] rollback is not available with deployment_strategy='in_place': it keeps no "
        "previous release. Redeploy an earlier tag (`deploy --release TAG`), or switch to 'zero_downtime' "
        "or 'bluegreen', which keep previous releases for a fast rollback."
    )


def activate(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> str:
    raise DjaployError(f"[{ctx.target.name}] activate is for deployment_strategy='bluegreen'; in_place deploys go live at once")


__all__ = ["Staged", "activate", "check_switch", "deploy", "discard", "go_live", "rollback", "stage"]
