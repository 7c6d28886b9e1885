"""The litestream module's steps on a host, in the order its hooks (djaploy.modules.litestream.Module) run them."""

from __future__ import annotations

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError, RemoteError
from djaploy.modules.litestream.commands import (
    DatabaseInfo,
    install_command,
    litestream_command,
    parse_probe,
    probe_command,
    reset_command,
)
from djaploy.modules.litestream.files import (
    INSTALL_MARKER,
    LITESTREAM_BIN,
    LitestreamPaths,
    litestream_config,
    litestream_environment,
    litestream_unit,
    parse_destination,
    paths_for,
)
from djaploy.modules.litestream.options import Settings

NO_BACKUP_MESSAGE = "no matching backup files"


def probe(ctx: HostContext, path: str, mode: str = "peek") -> DatabaseInfo:
    """Look at a database as the app user (read-only unless mode is "wal")."""
    result = ctx.plan.query(probe_command(path, mode), as_user=ctx.target.app_user)
    try:
        return parse_probe(result.stdout)
    except (ValueError, IndexError):
        raise RemoteError(ctx.target.name, f"litestream: read {path}", (result.stdout + result.stderr)[-2000:],
                          hint="python3 could not read the database; is python3 installed (configureserver)?") from None


def require_installed(ctx: HostContext) -> None:
    if not ctx.plan.query(f"test -x {shell.q(LITESTREAM_BIN)}").ok:
        raise RemoteError(ctx.target.name, "litestream: check installed",
                          hint=f"Litestream is not installed on this host; run `manage.py configureserver --env {ctx.env}` first")


def install(ctx: HostContext, settings: Settings) -> bool:
    """Install Litestream unless the recorded source matches; True when it was (re)installed."""
    recorded = ctx.plan.query(f"cat {shell.q(INSTALL_MARKER)} 2>/dev/null && test -x {shell.q(LITESTREAM_BIN)}")
    if recorded.ok and recorded.stdout.strip() == settings.install_source:
        return False
    if not settings.binary_url:
        ctx.plan.packages("litestream: python3-venv", ["python3-venv"])
    ctx.plan.run(f"litestream: install {settings.install_source}", install_command(settings))
    return True


def replica_has_backup(ctx: HostContext, settings: Settings, paths: LitestreamPaths) -> bool:
    """Ask Litestream (dry run, with `paths`' config) whether the destination holds a backup."""
    command = litestream_command(paths, "restore", "-config", paths.config, "-dry-run", "-o", paths.restoring, paths.db)
    result = ctx.plan.query(f"{command} 2>&1", as_user=ctx.target.app_user)
    if result.ok:
        return True
    if NO_BACKUP_MESSAGE in result.stdout + result.stderr:
        return False
    raise RemoteError(ctx.target.name, f"litestream: look for a backup at {settings.replica.describe()}",
                      (result.stdout + result.stderr)[-2000:],
                      hint="check the replica options and that the host can reach the destination")


def _refuse_destination(ctx: HostContext, settings: Settings, db: DatabaseInfo) -> DjaployError:
    paths = paths_for(ctx, settings)
    return DjaployError(
        f"[{ctx.target.name}] litestream: refusing to replicate {paths.db} ({db.table_summary()}) to "
        f"{settings.replica.describe()}: that destination already holds a backup, and this database is not "
        "replicated there. Litestream would make this database the backup's latest state.\n"
        "Either point module_options['litestream']['replica'] at an empty destination (or empty this one), or, to "
        f"take the backup's data instead: stop the app, move {paths.db} away on the host, and run configureserver or "
        "deploy again (a host without a database restores from the replica first). Nothing was changed."
    )


def _put_files(ctx: HostContext, settings: Settings, paths: LitestreamPaths) -> bool:
    """Credentials, SFTP key and config at `paths` (live or staged); True when any changed."""
    plan, user, what = ctx.plan, ctx.target.app_user, "litestream: " + ("staged " if paths.suffix else "")
    changed = plan.put_text(f"{what}environment file", paths.env_file,
                            shell.render_env_file(litestream_environment(settings, ctx.target)), owner=user, mode="600")
    if settings.replica.type == "sftp":
        changed |= plan.put_file(f"{what}SFTP key", settings.replica.key_path, paths.sftp_key, owner=user, mode="600")
    changed |= plan.put_text(f"{what}config (replica {settings.replica.describe()})", paths.config,
                             litestream_config(ctx, settings, paths))
    return changed


def _check_new_destination(ctx: HostContext, settings: Settings, db: DatabaseInfo) -> None:
    """Refuse a destination holding a backup, asking Litestream with staged files (credentials
    and key included), so a refusal leaves every live file as it was."""
    staged = paths_for(ctx, settings).staged()
    _put_files(ctx, settings, staged)
    try:
        if replica_has_backup(ctx, settings, staged):
            raise _refuse_destination(ctx, settings, db)
    finally:
        ctx.plan.run("litestream: remove the staged files", f"rm -f {shell.join([staged.config, staged.env_file, staged.sftp_key])}")


def _write_config(ctx: HostContext, settings: Settings) -> bool:
    """Write the config; when the destination changed, stop Litestream and reset its local state.

    Litestream's local state (LTX files beside the database) describes what the *old*
    destination holds; used against a new one, restores can silently return old data. A
    database with data is never sent to a destination that already holds a backup.
    """
    plan, paths = ctx.plan, paths_for(ctx, settings)
    on_host = plan.query(f"cat {shell.q(paths.config)} 2>/dev/null || true").stdout
    recorded = parse_destination(on_host)
    if recorded == settings.replica.destination() or plan.dry_run:
        return _put_files(ctx, settings, paths)
    db = probe(ctx, paths.db)
    if db.has_data:
        _check_new_destination(ctx, settings, db)
    if recorded is not None or plan.query(f"test -e {shell.q(paths.meta_dir)}").ok:
        plan.run(f"litestream: stop and reset local state for the new destination {settings.replica.describe()}",
                 f"{shell.systemctl('stop', paths.service)} 2>/dev/null; {reset_command(paths)}")
    _put_files(ctx, settings, paths)
    return True


def write_files(ctx: HostContext, settings: Settings) -> bool:
    """Replica folder, credentials, key, config and unit; True when the service must restart."""
    plan, paths = ctx.plan, paths_for(ctx, settings)
    if settings.replica.type == "file":
        plan.directory(f"litestream: replica folder {settings.replica.path}", settings.replica.path,
                       owner=ctx.target.app_user, mode="750")
    changed = _write_config(ctx, settings)
    if plan.put_text(f"litestream: {paths.service}", paths.unit_path, litestream_unit(ctx, settings)):
        changed = True
        # reenable: the [Install] section (which app services want it) may have changed.
        plan.run("litestream: enable the unit", f"{shell.systemctl('daemon-reload')} && {shell.systemctl('reenable', paths.service)}")
    return changed


def restore_if_missing(ctx: HostContext, settings: Settings) -> None:
    """A database without tables is replaced by the replica's, if there is one: never the reverse."""
    paths = paths_for(ctx, settings)
    db = probe(ctx, paths.db)
    if db.error:
        raise RemoteError(ctx.target.name, f"litestream: read {paths.db}", db.error,
                          hint="the database file is not readable as SQLite; move it away to restore from the replica")
    if db.has_data or ctx.plan.dry_run or not replica_has_backup(ctx, settings, paths):
        return
    restoring = shell.q(paths.restoring)
    restore = litestream_command(paths, "restore", "-config", paths.config, "-o", paths.restoring, paths.db)
    sidecars = " ".join(shell.q(paths.db + suffix) for suffix in ("-wal", "-shm"))
    as_user = (
        f"rm -f {restoring} {restoring}-wal {restoring}-shm && {restore} && rm -f {sidecars} && "
        f"mv -f {restoring} {shell.q(paths.db)} && {reset_command(paths)}"
    )
    ctx.plan.run(
        f"litestream: restore {paths.db} from {settings.replica.describe()} (this host has no data; the replica has)",
        f"{shell.systemctl('stop', paths.service)} 2>/dev/null; runuser -u {shell.q(ctx.target.app_user)} -- sh -c {shell.q(as_user)}",
    )


def ensure_wal(ctx: HostContext, settings: Settings) -> None:
    """Litestream replicates through the WAL: the database must be in WAL mode (it persists)."""
    paths = paths_for(ctx, settings)
    step = f"litestream: WAL mode for {paths.db}"
    if probe(ctx, paths.db).journal_mode == "wal" or ctx.plan.dry_run:
        return
    result = ctx.plan.run(step, probe_command(paths.db, "wal"), as_user=ctx.target.app_user)
    if parse_probe(result.stdout).journal_mode != "wal":
        raise RemoteError(ctx.target.name, step, result.stdout,
                          hint="SQLite refused WAL mode (is the data folder on a network filesystem?)")


def start(ctx: HostContext, settings: Settings, restart: bool) -> None:
    paths = paths_for(ctx, settings)
    ctx.plan.service(f"litestream: {paths.service} running", paths.service, restarted=restart)
