"""in_place: replace the code in one folder and restart. Simple, with a brief interruption.

The release is extracted beside the live code and renamed into place, then dependencies,
migrations and collectstatic run, then the service restarts and the health check must pass.
There is no previous release to roll back to.
"""

from __future__ import annotations

from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.modules.base import BaseModule
from djaploy.state import write_state
from djaploy.strategies.common import (
    clean_up,
    release_info,
    route_traffic,
    run_hooks,
    upload_and_extract,
)

NAME = "in_place"


def stage(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> str:
    """Upload and extract the release beside the live code; returns the staging folder.
    in_place prepares nothing before it switches (it has no release beside the live one)."""
    ctx.service = ctx.paths.service_for(NAME)
    staging = f"{ctx.paths.code_dir}.new"
    upload_and_extract(ctx, staging)
    return staging


def discard(ctx: HostContext, staging: str) -> None:
    """Remove an extracted release that will not go live."""
    if not ctx.plan.dry_run:
        ctx.plan.run("remove the staged release", f"rm -rf {shell.q(staging)}")


def go_live(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], staging: str,
            activate: bool = False) -> str:
    """Put the release in place, prepare it (venv, migrations, collectstatic) and restart onto it."""
    paths = ctx.paths
    ctx.plan.run("put release in place", shell.replace_dir(staging, paths.code_dir), as_user=ctx.target.app_user)
    ctx.code_dir = paths.code_dir
    run_hooks(ctx, modules, "prepare_data", "prepare_release", "publish")
    route_traffic(ctx, modules)
    run_hooks(ctx, modules, "verify")
    clean_up(ctx, NAME)
    assert ctx.release
    write_state(ctx, {"strategy": NAME, "current": ctx.release.name, "releases": {ctx.release.name: release_info(ctx)}})
    return f"release {ctx.release.name} is live"


def deploy(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], activate: bool = False) -> str:
    return go_live(ctx, modules, audit, stage(ctx, modules, audit))


def rollback(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], to: str | None = None) -> str:
    raise DjaployError(
        f"[{ctx.target.name}] rollback is not available with deployment_strategy='in_place': it keeps no "
        "previous release. Redeploy an earlier tag (`deploy --release TAG`), or switch to 'zero_downtime' "
        "or 'bluegreen', which keep previous releases for a fast rollback."
    )


def activate(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> str:
    raise DjaployError(f"[{ctx.target.name}] activate is for deployment_strategy='bluegreen'; in_place deploys go live at once")


__all__ = ["activate", "deploy", "discard", "go_live", "rollback", "stage"]
