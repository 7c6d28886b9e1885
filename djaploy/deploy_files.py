"""deploy_files/<env>/: files that mirror the target filesystem, copied onto each host."""

from __future__ import annotations

import os
from pathlib import Path

from djaploy.context import HostContext


def install_deploy_files(ctx: HostContext) -> None:
    """Copy deploy_files/<env>/ onto the host's filesystem (it mirrors the target paths)."""
    if ctx.config_dir is None:
        return
    root = Path(ctx.config_dir) / "deploy_files" / ctx.env
    if not root.is_dir():
        return
    for local in sorted(p for p in root.rglob("*") if p.is_file()):
        remote = "/" + local.relative_to(root).as_posix()
        parent = os.path.dirname(remote)
        ctx.plan.directory(f"deploy_files: {parent}", parent, owner="root", mode="755")
        mode = "755" if os.access(local, os.X_OK) else "644"
        ctx.plan.put_file(f"deploy_files: {remote}", str(local), remote, owner="root", mode=mode)
