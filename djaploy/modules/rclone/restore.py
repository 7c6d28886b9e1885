"""`restore --env E --backup latest|ID [--media] [--force]`: a backup back on every host.

This file restores SQLite, per host; a PostgreSQL DATABASE_URL (the postgres module's, or the
hosts' own) is one database for the environment: postgres_restore.py restores it once, every
app host's app stopped meanwhile.

Per host, under the deploy lock, as the litestream restore does (djaploy.restore's steps): refuse
to replace a database that has data unless forced; fetch the backup while the app still serves;
check the copy (PRAGMA integrity_check, rows per table); only then stop the app, move the copy
into place (the old -wal/-shm files go with the old database, kept beside it), and with --media
the media folder; start the app again; run the verify hooks. A failure before the move leaves
the database and the media as they were.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError, RemoteError
from djaploy.modules.litestream.steps import probe
from djaploy.modules.rclone.commands import parse_json_line, script_command
from djaploy.modules.rclone.files import paths_for
from djaploy.modules.rclone.options import Settings, settings_for
from djaploy.modules.rclone.postgres_restore import restore_postgres
from djaploy.modules.rclone.steps import require_configured, swap_in_media
from djaploy.restore import app_stopped, check_copy, previous_name, refusal, run_restore, swap_database_command
from djaploy.project import inspect_project
from djaploy.session import RunResult, Session, open_session


BACKUP_ID_RE = re.compile(r"latest|\d{8}T\d{6}Z")
#: the module that gives the app a PostgreSQL DATABASE_URL
POSTGRES_MODULE = "postgres"


@dataclass
class BackupRestore:
    """What one host got back: shown to the user, and kept in RunResult.data."""

    database: str
    source: str
    backup: str = ""
    rows: dict[str, int | None] = field(default_factory=dict)
    integrity: str = ""
    previous: str | None = None
    media: str | None = None  # the media folder, when --media restored it
    previous_media: str | None = None

    def summary(self) -> str:
        return f"backup {self.backup} restored ({len(self.rows)} tables, integrity {self.integrity})"

    def lines(self) -> list[str]:
        lines = [f"restored {self.database} from backup {self.backup} at {self.source}: integrity {self.integrity}"]
        lines += [f"  {table}: {count} rows" for table, count in self.rows.items()]
        if self.media:
            lines.append(f"  restored the media folder {self.media}")
        lines += [f"  the replaced {what} was kept as {where}"
                  for what, where in (("database", self.previous), ("media folder", self.previous_media)) if where]
        return lines


def restore_backup_host(ctx: HostContext, settings: Settings, backup: str, media: bool, force: bool) -> BackupRestore:
    paths, user, plan = paths_for(ctx, settings), ctx.target.app_user, ctx.plan
    require_configured(ctx, settings)
    current = probe(ctx, paths.db, "count")
    if current.has_data and not force:
        raise refusal(ctx, paths.db, current)
    report = BackupRestore(paths.db, settings.describe(), previous=previous_name(paths.db, current))
    scratch = f"rm -rf {shell.q(paths.restoring)} {shell.q(paths.media_restoring)}"
    try:
        fetch = script_command(paths, "fetch", backup, paths.restoring, *([paths.media_restoring] if media else []))
        result = plan.run(f"restore: fetch backup {backup} from {report.source}", f"{scratch} && {fetch}", as_user=user)
        try:
            chosen = parse_json_line(result.stdout, "backup")
        except (ValueError, KeyError):
            raise RemoteError(ctx.target.name, "restore: fetch the backup", result.stdout[-2000:]) from None
        assert isinstance(chosen, dict)
        report.backup = chosen["id"]
        copy = posixpath.join(paths.restoring, chosen["db"])
        report.rows, report.integrity = check_copy(ctx, copy, paths.db)
        with app_stopped(ctx):
            plan.run("restore: move the restored database into place", swap_database_command(paths.db, copy, report.previous),
                     as_user=user)
            if media:
                report.previous_media = swap_in_media(ctx, paths)
                report.media = ctx.paths.media_root
    finally:
        plan.run("restore: remove the fetched copy", scratch, as_user=user)
    return report


def restore_backup(config_dir: Path, env: str, *, out: TextIO, backup: str, media: bool = False, force: bool = False,
                   verbosity: int = 1, force_unlock: bool = False, wsgi_setting: str | None = None) -> RunResult:
    """Restore every host's database (and with `media` its media folder) from an rclone backup."""
    if not BACKUP_ID_RE.fullmatch(backup):
        raise DjaployError(f"--backup {backup!r} is not 'latest' nor a backup ID like 20250131T030000Z (see `backup --list`)")

    session = open_session(config_dir, env, out, verbosity)
    if uses_postgres(session):
        project = inspect_project(config_dir, manage_py_path=session.config.manage_py_path,
                                  wsgi_application=session.config.wsgi_application, wsgi_setting=wsgi_setting)
        return restore_postgres(session, project, backup=backup, media=media, force=force, force_unlock=force_unlock)

    def restore_one(ctx: HostContext) -> BackupRestore:
        return restore_backup_host(ctx, settings_for(ctx.target, ctx.config_dir), backup, media, force)

    return run_restore(config_dir, env, restore_one, {"backup": backup, "media": media, "force": force}, out=out,
                       verbosity=verbosity, force_unlock=force_unlock, wsgi_setting=wsgi_setting, session=session)


def uses_postgres(session: Session) -> bool:
    """The app's database is PostgreSQL: a DATABASE_URL of the hosts' own, or the postgres module's."""
    return any(settings_for(target, session.config_dir).database_url or
               POSTGRES_MODULE in {module.name for module in session.modules[target.name]} for target in session.targets)
