"""in_place: replace the code in one folder and restart. Simple, with a brief interruption.

The release is extracted beside the live code and renamed into place, then dependencies,
migrations and collectstatic run, then the service restarts and the health check must pass.
"""

from __future__ import annotations

from djaploy import shell
from djaploy.context import HostContext
from djaploy.modules.base import BaseModule


def upload_release(ctx: HostContext) -> str:
    """Upload the release tarball; return its remote path."""
    assert ctx.release
    paths = ctx.paths
    remote = paths.upload_path(ctx.release.name)
    ctx.plan.put_file("upload release", str(ctx.release.tarball), remote, owner=ctx.target.app_user, mode="640")
    return remote


def deploy(ctx: HostContext, modules: list[BaseModule]) -> None:
    paths = ctx.paths
    tarball = upload_release(ctx)
    staging = f"{paths.code_dir}.new"
    ctx.plan.run(
        "extract release",
        f"{shell.extract_tarball(tarball, staging)} && {shell.replace_dir(staging, paths.code_dir)} && rm -f {shell.q(tarball)}",
        as_user=ctx.target.app_user,
    )
    ctx.code_dir = paths.code_dir
    for hook in ("prepare_release", "publish", "verify"):
        for module in modules:
            getattr(module, hook)(ctx)
