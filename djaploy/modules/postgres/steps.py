"""What the postgres module does on a host: the server on the `db` host (package, conf.d,
pg_hba.conf, role, database, password), the client on app hosts.

Every step first reads what is there and changes only what differs, so a second configureserver
reports no change. The password never reaches the db host: only its SCRAM verifier, computed
here, in a 0600 file read by psql on its stdin, and only when pg_authid says it differs.
"""

from __future__ import annotations

from collections.abc import Sequence

from djaploy import shell
from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.errors import RemoteError
from djaploy.modules.postgres import scram
from djaploy.modules.postgres.options import Settings
from djaploy.modules.postgres.server_config import (
    CONF_D_NAME,
    conf_d_text,
    hba_lines,
    with_hba_block,
)

SERVICE = "postgresql"
POSTGRES_USER = "postgres"
#: where the SQL that sets the password waits for psql (postgres's home, 0600)
PASSWORD_SQL = "/var/lib/postgresql/.djaploy-password.sql"
READY_SECONDS = 60


def psql(sql: str) -> str:
    """psql as the postgres superuser over the local socket: one statement, unaligned, no psqlrc."""
    return shell.join(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql])


def _literal(value: str) -> str:
    """An SQL string literal (identifiers and verifiers only: never the password)."""
    return "'" + value.replace("'", "''") + "'"


def cluster_dir(ctx: HostContext) -> str | None:
    """/etc/postgresql/<version>/main of the newest cluster Debian's package made; None if none yet."""
    found = ctx.plan.query("ls -1 /etc/postgresql 2>/dev/null | sort -V | tail -n 1")
    version = found.stdout.strip()
    return f"/etc/postgresql/{version}/main" if found.ok and version.replace(".", "").isdigit() else None


def wait_ready(ctx: HostContext) -> None:
    """After a start or restart: PostgreSQL takes a moment to accept connections."""
    check = f"for i in $(seq {READY_SECONDS}); do pg_isready -q && exit 0; sleep 1; done; exit 1"
    if not ctx.plan.dry_run and not ctx.plan.query(check).ok:
        raise RemoteError(ctx.target.name, "postgres: wait for the server",
                          hint=f"PostgreSQL did not accept connections within {READY_SECONDS}s; see "
                               "`journalctl -u postgresql@*` on the host")


def configure_files(ctx: HostContext, settings: Settings, directory: str, fleet: Sequence[Target]) -> None:
    """conf.d (restart when it changed) and djaploy's block of pg_hba.conf (reload when it changed)."""
    plan = ctx.plan
    restart = plan.put_text(f"postgres: {CONF_D_NAME} (listen on localhost,{ctx.target.private_address})",
                            f"{directory}/conf.d/{CONF_D_NAME}", conf_d_text(settings, ctx.target),
                            owner=POSTGRES_USER, mode="644")
    hba = f"{directory}/pg_hba.conf"
    current = plan.query(f"cat {shell.q(hba)}")
    if not current.ok and not plan.dry_run:
        raise RemoteError(ctx.target.name, f"postgres: read {hba}", current.stderr)
    lines = hba_lines(settings, ctx.target, fleet)
    hosts = ", ".join(line.rpartition("# ")[2] if "#" in line else "local socket" for line in lines) or "none"
    reload = plan.put_text(f"postgres: pg_hba.conf (app hosts: {hosts})", hba,
                           with_hba_block(current.stdout, settings, lines), owner=POSTGRES_USER, mode="640")
    plan.service(f"postgres: {SERVICE} running", SERVICE, restarted=restart)
    wait_ready(ctx)
    if reload and not restart:  # the server's own reload: no dependence on how systemd propagates one
        plan.run("postgres: reload the configuration (pg_hba.conf changed)", psql("SELECT pg_reload_conf()"),
                 as_user=POSTGRES_USER)


def ensure_role_and_database(ctx: HostContext, settings: Settings) -> None:
    """The app role (LOGIN) and its database, owned by it (PostgreSQL 15 gives CREATE on the
    `public` schema to the database owner only)."""
    plan, user, database = ctx.plan, settings.user, settings.database
    found = plan.query(psql(
        f"SELECT (SELECT count(*) FROM pg_roles WHERE rolname = {_literal(user)}), "
        f"(SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {_literal(database)})"
    ), as_user=POSTGRES_USER)
    role_count, _, owner = found.stdout.strip().partition("|")
    if plan.dry_run and not found.ok:
        return
    if role_count != "1":
        plan.run(f"postgres: create role {user}", psql(f"CREATE ROLE {user} LOGIN"), as_user=POSTGRES_USER)
    if not owner:
        plan.run(f"postgres: create database {database} owned by {user}",
                 psql(f"CREATE DATABASE {database} OWNER {user}"), as_user=POSTGRES_USER)
    elif owner != user:
        plan.run(f"postgres: database {database} owned by {user} (was {owner})",
                 psql(f"ALTER DATABASE {database} OWNER TO {user}"), as_user=POSTGRES_USER)


def ensure_password(ctx: HostContext, settings: Settings, password: str) -> None:
    """Set the role's password only when the stored verifier is not the password's: compared here,
    from its salt and its SHA-256, so neither password nor verifier is ever printed or in an argv."""
    plan, user = ctx.plan, settings.user
    stored = plan.query(psql(
        "SELECT split_part(rolpassword, '$', 2) || '|' || encode(sha256(convert_to(rolpassword, 'UTF8')), 'hex') "
        f"FROM pg_authid WHERE rolname = {_literal(user)}"
    ), as_user=POSTGRES_USER)
    salt_part, _, digest = stored.stdout.strip().partition("|")
    if stored.ok and scram.matches(password, salt_part, digest):
        return
    sql = f"SET log_statement TO 'none';\nALTER ROLE {user} PASSWORD {_literal(scram.verifier(password))};\n"
    plan.put_text(f"postgres: password of role {user} (its SCRAM verifier, 0600)", PASSWORD_SQL, sql,
                  owner=POSTGRES_USER, mode="600")
    sql_file = shell.q(PASSWORD_SQL)
    plan.run(f"postgres: set the password of role {user}",
             f"psql -X -q -v ON_ERROR_STOP=1 -d postgres < {sql_file}; status=$?; rm -f {sql_file}; exit $status",
             as_user=POSTGRES_USER)


def configure_database_host(ctx: HostContext, settings: Settings, password: str, fleet: Sequence[Target]) -> None:
    plan = ctx.plan
    plan.packages(f"postgres: install {SERVICE}", [SERVICE])
    directory = cluster_dir(ctx)
    if directory is None:
        if plan.dry_run:
            return  # nothing installed yet: the rest would run against a server that is not there
        raise RemoteError(ctx.target.name, "postgres: find the cluster",
                          hint="Debian's postgresql package made no cluster in /etc/postgresql; run "
                               "`pg_createcluster <version> main --start` on the host")
    configure_files(ctx, settings, directory, fleet)
    ensure_role_and_database(ctx, settings)
    ensure_password(ctx, settings, password)


def install_client(ctx: HostContext) -> None:
    """psql on app hosts: `manage.py remote -- dbshell` runs it (the app's psycopg brings its own libpq)."""
    ctx.plan.packages("postgres: install postgresql-client (for manage.py dbshell)", ["postgresql-client"])
