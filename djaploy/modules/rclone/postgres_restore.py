"""`restore --backup` of a PostgreSQL DATABASE_URL: once for the environment, every app stopped.

Under every connected host's deploy lock (all or nothing, djaploy.locks), in phases:

1. on the restoring host (postgres_plan.restoring_host): count the rows of the live database
   and refuse without --force when it holds any (nothing changed); fetch the backup's
   database.pgdump (and with --media its media) while the app still serves; `pg_restore --list`
   it (a damaged dump fails here, nothing changed);
2. stop the app (sockets, services, extra services) on every app host, since each one writes to
   the database; a host that fails to stop ends the restore before anything is replaced;
3. on the restoring host: pg_dump the live database beside the fetched copy (when it held data),
   then `pg_restore --clean --if-exists --no-owner --role=<app role> --single-transaction` (a
   failure rolls back: the database stays as it was), rows per table counted; --media swaps the
   media folder there;
4. start every app again however it went, remove the fetched copy, run the verify hooks.

The password never leaves the host's 0600 backup settings: the backup program (backup_script.py,
actions pg-*) hands it to libpq through its own environment.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.engine import Engine
from djaploy.errors import DjaployError, RemoteError
from djaploy.locks import EnvironmentLocked, Parallel, lock_environment, release_environment
from djaploy.modules.rclone.commands import parse_json_line, script_command
from djaploy.modules.rclone.files import database_url, paths_for
from djaploy.modules.rclone.options import settings_for
from djaploy.modules.rclone.postgres_plan import (
    PostgresRestore,
    holds_data,
    kept_dump_path,
    postgres_refusal,
    restoring_host,
    stopped_hosts,
)
from djaploy.modules.rclone.steps import require_configured, swap_in_media
from djaploy.project import Project
from djaploy.restore import app_units, unit_states
from djaploy.rollout_run import engine_parallel
from djaploy.session import RunResult, Session, raise_if_failed, site_urls
from djaploy.strategies.common import run_hooks, utc_now

#: the key of the JSON line each action of the backup program prints last
PROGRAM_KEYS = {"pg-rows": "rows", "pg-check": "toc", "pg-keep": "kept", "pg-restore": "restored"}


def program(ctx: HostContext, step: str, action: str, *args: str, hint: str = "") -> Any:
    """One pg-* action of the backup program as the app user (a failure is a RemoteError with
    `hint`); the value of its last JSON line."""
    paths = paths_for(ctx, settings_for(ctx.target, ctx.config_dir))
    try:
        result = ctx.plan.run(step, script_command(paths, action, *args), as_user=ctx.target.app_user)
    except RemoteError as error:
        raise RemoteError(error.host, error.step, error.output, hint or error.hint) from None
    try:
        return parse_json_line(result.stdout, PROGRAM_KEYS[action])
    except (ValueError, KeyError):
        raise RemoteError(ctx.target.name, step, result.stdout[-2000:], hint) from None


class PostgresRun:
    """One restore over the connected hosts: the phases, and what each host ended with."""

    def __init__(self, contexts: dict[str, HostContext], restorer: str, app_hosts: list[str], parallel: Parallel,
                 backup: str, media: bool, force: bool) -> None:
        self.contexts, self.restorer, self.app_hosts, self.parallel = contexts, restorer, app_hosts, parallel
        self.backup, self.media, self.force = backup, media, force
        ctx = contexts[restorer]
        self.settings = settings_for(ctx.target, ctx.config_dir)
        self.paths = paths_for(ctx, self.settings)
        self.wanted: dict[str, list[str]] = {}
        self.report = PostgresRestore(self._database_name(ctx), restorer, self.settings.describe())
        self.copy = ""

    def _database_name(self, ctx: HostContext) -> str:
        url = database_url(ctx, self.settings)
        if not url:
            raise DjaployError(f"[{ctx.target.name}] restore --backup: this host's app has no PostgreSQL DATABASE_URL")
        return url.rsplit("/", 1)[-1].split("?", 1)[0]

    @property
    def scratch(self) -> str:
        return f"rm -rf {shell.q(self.paths.restoring)} {shell.q(self.paths.media_restoring)}"

    def prepare(self, _: str) -> None:
        """Phase 1, on the restoring host: refuse, fetch, check. Changes nothing the app uses."""
        ctx, user, paths = self.contexts[self.restorer], self.contexts[self.restorer].target.app_user, self.paths
        require_configured(ctx, self.settings)
        current = program(ctx, "restore: count the rows of the live database", "pg-rows")
        if holds_data(current) and not self.force:
            raise postgres_refusal(self.restorer, self.report.database, current)
        if holds_data(current):
            self.report.previous = kept_dump_path(paths.app.data_dir, self.report.database, utc_now())
        fetch = script_command(paths, "fetch", self.backup, paths.restoring, *([paths.media_restoring] if self.media else []))
        result = ctx.plan.run(f"restore: fetch backup {self.backup} from {self.report.source}", f"{self.scratch} && {fetch}",
                              as_user=user)
        try:
            chosen = parse_json_line(result.stdout, "backup")
        except (ValueError, KeyError):
            raise RemoteError(ctx.target.name, "restore: fetch the backup", result.stdout[-2000:]) from None
        assert isinstance(chosen, dict)
        if not str(chosen.get("db", "")).endswith(".pgdump"):
            raise DjaployError(f"[{self.restorer}] backup {chosen['id']} holds a SQLite file ({chosen.get('db')}), "
                               "not a pg_dump: it was made before the app used PostgreSQL. Nothing was changed.")
        self.report.backup = chosen["id"]
        self.copy = posixpath.join(paths.restoring, chosen["db"])
        toc = program(ctx, "restore: check the fetched dump (pg_restore --list)", "pg-check", self.copy,
                      hint=f"the backup's dump is damaged; {self.report.database} was left as it was")
        self.report.entries, self.report.tables = int(toc["entries"]), list(toc["tables"])

    def stop(self, name: str) -> None:
        """Phase 2: the app stopped; what ran or is enabled is started again afterwards."""
        ctx = self.contexts[name]
        running, self.wanted[name] = unit_states(ctx, app_units(ctx))
        if running:
            ctx.plan.run("restore: stop the app (PostgreSQL is being restored)", shell.systemctl("stop", *running))

    def replace(self, _: str) -> None:
        """Phase 3, on the restoring host: keep the live database, restore the dump, count the rows."""
        ctx, report = self.contexts[self.restorer], self.report
        if report.previous:
            program(ctx, f"restore: keep the live database as {report.previous}", "pg-keep", report.previous)
        program(ctx, f"restore: pg_restore backup {report.backup} into {report.database}", "pg-restore", self.copy,
                hint=f"pg_restore ran in one transaction: {report.database} was left as it was")
        report.rows = program(ctx, "restore: count the rows of the restored database", "pg-rows")
        if self.media:
            report.previous_media = swap_in_media(ctx, self.paths)
            report.media = ctx.paths.media_root

    def start(self, name: str) -> None:
        ctx = self.contexts[name]
        if self.wanted.get(name):
            ctx.plan.run("restore: start the app", shell.systemctl("start", *self.wanted[name]))

    def clean(self, _: str) -> None:
        ctx = self.contexts[self.restorer]
        ctx.plan.run("restore: remove the fetched copy", self.scratch, as_user=ctx.target.app_user)

    def phases(self, verify: Callable[[str], None]) -> dict[str, BaseException]:
        """Every phase; the errors by host. The apps start again and the copy goes whatever failed."""
        errors = self.parallel([self.restorer], self.prepare)
        if not errors:
            try:
                errors = self.parallel(self.app_hosts, self.stop)
                if not errors:
                    errors = self.parallel([self.restorer], self.replace)
                    self.report.stopped = list(self.app_hosts)
            finally:
                errors |= {name: error for name, error in self.parallel(self.app_hosts, self.start).items()
                           if name not in errors}
        cleaned = self.parallel([self.restorer], self.clean)
        errors |= {name: error for name, error in cleaned.items() if name not in errors}
        if not errors:
            errors = self.parallel(self.app_hosts, verify)
        return errors


def restore_postgres(session: Session, project: Project, *, backup: str, media: bool, force: bool,
                     force_unlock: bool = False) -> RunResult:
    """Restore the environment's PostgreSQL database from an rclone backup, once, every app stopped."""
    result, started = RunResult("restore", session.env, dry_run=False), time.monotonic()
    restorer = restoring_host(session.targets).name
    app_hosts = stopped_hosts(session.targets)
    connected = [target for target in session.targets if target.name in {restorer, *app_hosts}]
    audit = {"backup": backup, "media": media, "force": force, "database": "postgresql"}
    with Engine(connected, session.reporter) as engine:
        contexts = {target.name: HostContext(env=session.env, target=target, plan=engine.plan_for(target),
                                             config_dir=session.config_dir, fleet=tuple(session.targets),
                                             modules=tuple(session.modules[target.name]), project=project)
                    for target in connected}
        parallel = engine_parallel(engine)
        audits = {name: dict(audit) for name in contexts}
        run = PostgresRun(contexts, restorer, app_hosts, parallel, backup, media, force)

        def verify(name: str) -> None:
            run_hooks(contexts[name], session.modules[name], "verify")

        try:
            held = lock_environment(contexts, "restore", audits, parallel, force_unlock=force_unlock)
        except EnvironmentLocked as locked:
            errors: dict[str, BaseException] = dict(locked.errors)
        else:
            try:
                errors = run.phases(verify)
            except BaseException as error:  # an interruption: every audit line says so, every lock goes
                release_environment(contexts, held, audits, {name: error for name in contexts}, parallel)
                raise
            lock_errors = release_environment(contexts, held, audits, errors, parallel)
            errors |= {name: error for name, error in lock_errors.items() if name not in errors}
    result.seconds = time.monotonic() - started
    for target in session.targets:
        result.changed[target.name] = len(session.reporter.changed_steps(target.name))
        if target.name in errors:
            result.errors[target.name] = errors[target.name]
        elif target.name == restorer and run.report.rows:
            result.messages[target.name] = run.report.summary()
        elif target.name in app_hosts:
            result.messages[target.name] = f"app stopped during the restore on {restorer}, serving again" \
                if run.report.stopped else "app untouched"
        if "web" in target.roles:
            result.urls[target.name] = site_urls(target)
    if run.report.backup and not errors:
        result.data[restorer] = run.report
    raise_if_failed(result, len(session.targets), session.reporter)
    return result
