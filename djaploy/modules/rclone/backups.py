"""`manage.py backup --env E [--now] [--list]`: run a backup now, and show every backup with its
size and age. A run goes through the backup's own systemd service (the same unit the timer
starts: the same user, environment and failure report), and waits for it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from djaploy.context import HostContext
from djaploy.errors import RemoteError
from djaploy.modules.base import BaseModule
from djaploy.modules.rclone.backup_script import STAMP_FORMAT
from djaploy.modules.rclone.commands import Backup, parse_backups, run_now_command, script_command
from djaploy.modules.rclone.files import paths_for
from djaploy.modules.rclone.options import NAME, settings_for
from djaploy.modules.rclone.steps import require_configured
from djaploy.session import RunResult, open_session, run_on_hosts


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # unreachable: GB is the last unit above


def age(stamp: str, now: datetime) -> str:
    seconds = max(0, int((now - datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)).total_seconds()))
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length}{unit} ago"
    return f"{seconds}s ago"


def backup_lines(backups: list[Backup], now: datetime) -> list[str]:
    """One line per backup, newest first; an incomplete one says so (it failed or is running)."""
    if not backups:
        return ["no backups yet"]
    return [f"{item.id}  {human_size(item.bytes):>9}  {age(item.id, now):>8}  "
            + (f"{item.files} files" if item.complete else "INCOMPLETE (failed or still running)") for item in backups]


def backup(config_dir: Path, env: str, *, out: TextIO, now: bool = False, verbosity: int = 1) -> RunResult:
    """With `now`, back up every host (that has the rclone module) and wait; then list the backups."""
    session = open_session(config_dir, env, out, verbosity)
    result = RunResult("backup", env, dry_run=False)

    def work(ctx: HostContext, modules: list[BaseModule]) -> str:
        if NAME not in {module.name for module in modules}:
            return "no backups here (the host does not list djaploy.modules.rclone)"
        settings = settings_for(ctx.target, ctx.config_dir)
        paths = paths_for(ctx, settings)
        require_configured(ctx, settings)
        if now:
            ctx.plan.run(f"backup: {paths.service} to {settings.describe()}", run_now_command(paths))
        listing = ctx.plan.query(script_command(paths, "list"), as_user=ctx.target.app_user)
        if not listing.ok:
            raise RemoteError(ctx.target.name, "backup: list the backups", (listing.stdout + listing.stderr)[-2000:],
                              hint="check the remote's options and that the host reaches it")
        backups = parse_backups(listing.stdout)
        result.data[ctx.target.name] = backup_lines(backups, datetime.now(UTC))
        complete = [item for item in backups if item.complete]
        return f"{len(complete)} complete backup(s) at {settings.describe()}" + (", one made now" if now else "")

    return run_on_hosts(session, result, work)
