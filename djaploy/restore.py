"""`restore --env E [--timestamp T] [--force]`: put the replica's database back on every host.

Per host, under the deploy lock: refuse to replace a database that has data unless forced;
stop the app (its sockets too, or a request would start it again) and Litestream (which
ships the last writes as it stops); restore into a temporary file as the app user; check it
(PRAGMA integrity_check, rows per table); move it into place, keeping a replaced database
beside it; reset Litestream's local state; start everything again; run the verify hooks.
If anything fails before the move, the old database is untouched and the app is started again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError, RemoteError
from djaploy.modules.base import BaseModule
from djaploy.modules.litestream.commands import DatabaseInfo, litestream_command, reset_command
from djaploy.modules.litestream.files import LITESTREAM_BIN, LitestreamPaths, paths_for
from djaploy.modules.litestream.options import Settings, settings_for
from djaploy.modules.litestream.steps import ensure_wal, probe
from djaploy.project import inspect_project
from djaploy.session import RunResult, Session, open_session, run_on_hosts
from djaploy.locks import locked
from djaploy.strategies.common import run_hooks, utc_now

TIMESTAMP_EXAMPLE = "2025-01-31T14:05:00Z"


@dataclass
class HostRestore:
    """What one host got back: shown to the user, and kept in RunResult.data."""

    database: str
    replica: str
    timestamp: str | None
    rows: dict[str, int | None] = field(default_factory=dict)
    integrity: str = ""
    previous: str | None = None  # where the replaced database was kept

    def summary(self) -> str:
        return f"database restored ({len(self.rows)} tables, integrity {self.integrity})"

    def lines(self) -> list[str]:
        when = f"as of {self.timestamp}" if self.timestamp else "latest"
        lines = [f"restored {self.database} from {self.replica} ({when}): integrity {self.integrity}"]
        lines += [f"  {table}: {count} rows" for table, count in self.rows.items()]
        if self.previous:
            lines.append(f"  the replaced database was kept as {self.previous}")
        return lines


def parse_timestamp(text: str | None) -> str | None:
    """--timestamp as RFC 3339 in UTC (what Litestream takes); None for the latest state."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DjaployError(f"--timestamp {text!r} is not a date and time like {TIMESTAMP_EXAMPLE}") from None
    if moment.tzinfo is None:
        raise DjaployError(f"--timestamp {text!r} has no time zone; add Z for UTC, like {TIMESTAMP_EXAMPLE}")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def app_units(ctx: HostContext) -> list[str]:
    """Every unit that uses the database: the app's sockets and services, and its extra services."""
    units = []
    for service in ctx.paths.all_services():
        units += [service.socket_unit, service.service]
    return units + list(ctx.target.services)


def unit_states(ctx: HostContext, units: list[str]) -> tuple[list[str], list[str]]:
    """(running units, units to run afterwards): those running now and those enabled, so the
    app serves again after a restore even when it had been stopped (a lost database)."""
    script = "; ".join(f"echo {shell.q(unit)} $(systemctl is-active {shell.q(unit)}) $(systemctl is-enabled {shell.q(unit)} 2>/dev/null)"
                       for unit in units)
    running, wanted = [], []
    for line in ctx.plan.query(f"{script}; true").stdout.splitlines():
        unit, *states = line.split()
        if "active" in states:
            running.append(unit)
        if "active" in states or "enabled" in states:
            wanted.append(unit)
    return running, wanted


def swap_database_command(db: str, new: str, previous: str | None) -> str:
    """As the app user: keep (or drop) the old database with its -wal/-shm files, then rename
    the new one in, so no stale sidecar is ever applied to the restored file."""
    files = [(db + suffix, (previous + suffix) if previous else None) for suffix in ("", "-wal", "-shm")]
    if previous:
        old = " && ".join(f"if [ -e {shell.q(src)} ]; then mv -f {shell.q(src)} {shell.q(dst)}; fi" for src, dst in files)
    else:
        old = "rm -f " + " ".join(shell.q(src) for src, _ in files)
    return f"{old} && mv -f {shell.q(new)} {shell.q(db)}"


def move_into_place_command(paths: LitestreamPaths, previous: str | None) -> str:
    """The database swap, then Litestream's local state reset (it described the old file)."""
    return f"{swap_database_command(paths.db, paths.restoring, previous)} && {reset_command(paths)}"


def previous_name(db: str, current: DatabaseInfo) -> str | None:
    """Where a replaced database with data is kept: beside it, named after the moment."""
    stamp = utc_now().replace("-", "").replace(":", "")
    return f"{db}.before-restore-{stamp}" if current.exists and current.has_data else None


@contextmanager
def app_stopped(ctx: HostContext, also: Sequence[str] = (), label: str = "") -> Iterator[None]:
    """The app (and `also`) stopped around a restore, and started again however it ends:
    what ran before, and what is enabled (a lost database had stopped the app)."""
    running, wanted = unit_states(ctx, app_units(ctx))
    if running or also:
        ctx.plan.run(f"restore: stop the app{' and ' + label if label else ''}", shell.systemctl("stop", *running, *also))
    try:
        yield
    finally:
        if wanted or also:
            ctx.plan.run(f"restore: start {label + ' and ' if label else ''}the app", shell.systemctl("start", *also, *wanted))


def _require_configured(ctx: HostContext, paths: LitestreamPaths) -> None:
    if not ctx.plan.query(f"test -f {shell.q(paths.config)} && test -x {shell.q(LITESTREAM_BIN)}").ok:
        raise RemoteError(ctx.target.name, "restore: find Litestream",
                          hint=f"Litestream is not set up on this host ({paths.config} is missing); "
                               f"run `manage.py configureserver --env {ctx.env}` first")


def refusal(ctx: HostContext, db: str, current: DatabaseInfo) -> DjaployError:
    return DjaployError(
        f"[{ctx.target.name}] restore refused: {db} holds data ({current.table_summary()}). "
        "Pass --force to replace it (it is kept beside the restored one as a .before-restore-* file). "
        "Nothing was changed."
    )


def check_copy(ctx: HostContext, path: str, db: str) -> tuple[dict[str, int | None], str]:
    """(rows per table, integrity) of a restored copy; RemoteError when it is damaged."""
    check = probe(ctx, path, "check")
    integrity = "; ".join(check.integrity) or check.error or "unknown"
    if check.error or check.integrity != ("ok",):
        raise RemoteError(ctx.target.name, "restore: check the restored database", integrity,
                          hint=f"the restored copy is damaged; {db} was left as it was")
    return check.rows, integrity


def restore_host(ctx: HostContext, settings: Settings, timestamp: str | None, force: bool) -> HostRestore:
    paths = paths_for(ctx, settings)
    user = ctx.target.app_user
    _require_configured(ctx, paths)
    current = probe(ctx, paths.db, "count")
    if current.has_data and not force:
        raise refusal(ctx, paths.db, current)
    report = HostRestore(paths.db, settings.replica.describe(), timestamp)
    report.previous = previous_name(paths.db, current)
    restoring = shell.q(paths.restoring)
    with app_stopped(ctx, [paths.service], "Litestream"):
        moved = False
        try:
            args = ["restore", "-config", paths.config, "-o", paths.restoring]
            args += ["-timestamp", timestamp] if timestamp else []
            ctx.plan.run(f"restore: {report.replica} into a temporary file",
                         f"rm -f {restoring} {restoring}-wal {restoring}-shm && "
                         f"{litestream_command(paths, *args, paths.db)}", as_user=user)
            report.rows, report.integrity = check_copy(ctx, paths.restoring, paths.db)
            ctx.plan.run("restore: move the restored database into place", move_into_place_command(paths, report.previous), as_user=user)
            moved = True
            ensure_wal(ctx, settings)
        finally:
            if not moved:
                ctx.plan.run("restore: remove the partial copy", f"rm -f {restoring} {restoring}-wal {restoring}-shm", as_user=user)
    return report


def run_restore(config_dir: Path, env: str, restore_one: Callable[[HostContext], Any], audit: dict[str, Any], *,
                out: TextIO, verbosity: int = 1, force_unlock: bool = False, wsgi_setting: str | None = None,
                session: Session | None = None) -> RunResult:
    """Every host, under its deploy lock: `restore_one` (which returns a report with `summary()`),
    then the verify hooks (the site answers). Shared by the litestream and rclone restores
    (`session`: one the caller opened already)."""
    session = session or open_session(config_dir, env, out, verbosity)
    project = inspect_project(config_dir, manage_py_path=session.config.manage_py_path,
                              wsgi_application=session.config.wsgi_application, wsgi_setting=wsgi_setting)
    result = RunResult("restore", env, dry_run=False)

    def work(ctx: HostContext, modules: list[BaseModule]) -> str:
        with locked(ctx, "restore", dict(audit), force_unlock=force_unlock):
            report = restore_one(ctx)
            result.data[ctx.target.name] = report
            run_hooks(ctx, modules, "verify")
        return report.summary()

    return run_on_hosts(session, result, work, project=project)


def restore(config_dir: Path, env: str, *, out: TextIO, timestamp: str | None = None, force: bool = False,
            verbosity: int = 1, force_unlock: bool = False, wsgi_setting: str | None = None) -> RunResult:
    """Restore every host's database from its Litestream replica, then check the site answers."""
    when = parse_timestamp(timestamp)

    def restore_one(ctx: HostContext) -> HostRestore:
        return restore_host(ctx, settings_for(ctx.target, ctx.config_dir), when, force)

    return run_restore(config_dir, env, restore_one, {"timestamp": when or "latest", "force": force}, out=out,
                       verbosity=verbosity, force_unlock=force_unlock, wsgi_setting=wsgi_setting)
