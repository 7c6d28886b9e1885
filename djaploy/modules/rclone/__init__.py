"""rclone: nightly, point-in-time backups of the app's database and media to any rclone remote.

    module_options={"rclone": {
        "remote": {"type": "s3", "provider": "Other", "endpoint": "https://s3.example.com",
                   "access_key_id": "env:BACKUP_KEY_ID", "secret_access_key": "env:BACKUP_SECRET"},
        "path": "shop-backups/production",   # bucket/prefix, or a folder on the remote
        "keep": 14,                          # the last N successful backups
        "schedule": "*-*-* 03:00:00",        # systemd OnCalendar
        "encrypt_password": "env:BACKUP_PASSPHRASE",   # optional: rclone crypt over the remote
    }}

A systemd timer runs the backup program (backup_script.py, installed on the host) as the app
user: an online copy of the SQLite database (or pg_dump -Fc of a PostgreSQL DATABASE_URL, the
host's own or djaploy.modules.postgres's) and
the media folder go to <path>/<project>/<env>/<UTC stamp>/, a marker last; retention keeps the
last `keep` complete backups. Credentials live in rclone's config file (0600, the app user's).
A failed backup is logged at priority crit and, when the environment's `notifications` have
Slack or a webhook, reported to them by the host itself (failure_notice.py, installed too).
`manage.py backup` and `manage.py restore --backup` (backups.py, restore.py) drive it.

One concern a file: options.py (Settings), obscure.py (rclone's obscured passwords), files.py
(paths, rclone.conf, units), notice.py (the failure notice's channels), commands.py (shell
commands), steps.py (configure_server's steps), backups.py (`manage.py backup`), restore.py
(`manage.py restore --backup`, SQLite per host), postgres_plan.py and postgres_restore.py (the
same for PostgreSQL: once for the environment, every app host's app stopped meanwhile).
"""

from __future__ import annotations

import os
from pathlib import Path

from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError
from djaploy.modules.base import BaseModule
from djaploy.modules.rclone.notice import notice_secrets
from djaploy.modules.rclone.options import NAME, settings_for
from djaploy.modules.rclone.steps import install, schedule, write_files


class Module(BaseModule):
    """configure_server installs rclone, writes its config and the backup's units, and starts the timer."""

    name = NAME

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        settings_for(target, config_dir, environ=None)  # every option error, before any connection

    def secret_values(self, target: Target, config_dir: Path | None) -> list[str]:
        """The remote's credentials, the passphrase and the failure notice's URLs and secret: out
        of every line djaploy prints or logs."""
        hidden = notice_secrets(target)
        try:
            return [*settings_for(target, None, os.environ).secrets, *hidden]
        except ConfigError:  # a missing variable: the command that needs it says so
            return hidden

    def configure_server(self, ctx: HostContext) -> None:
        settings = settings_for(ctx.target, ctx.config_dir)
        install(ctx, settings)
        schedule(ctx, settings, write_files(ctx, settings))
