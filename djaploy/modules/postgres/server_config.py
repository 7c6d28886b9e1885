"""What the database host's files say and how the app hosts reach it, as text (pure: unit tested):
the conf.d file, djaploy's block of pg_hba.conf, DATABASE_URL, and the connections a fleet needs."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import quote

from djaploy.config import Target
from djaploy.errors import ConfigError
from djaploy.fleet import APP_ROLES
from djaploy.modules.postgres.options import Settings

PORT = 5432
SOCKET_DIR = "/var/run/postgresql"  # Debian's unix socket folder
CONF_D_NAME = "djaploy.conf"
#: connections kept free beyond the app's: superuser sessions, manage.py runs, a deploy's migrate
CONNECTION_MARGIN = 10


def conf_d_text(settings: Settings, db_host: Target) -> str:
    """listen_addresses and max_connections need a restart; password_encryption makes any later
    password SCRAM too."""
    return ("# Written by djaploy configureserver (djaploy.modules.postgres); changes here are replaced.\n"
            f"listen_addresses = 'localhost,{db_host.private_address}'\n"
            f"max_connections = {settings.max_connections}\n"
            "password_encryption = 'scram-sha-256'\n")


def is_app_host(target: Target) -> bool:
    return any(role in target.roles for role in APP_ROLES)


def app_hosts(fleet: Sequence[Target]) -> list[Target]:
    """The hosts that run the app's code (web, worker), in inventory order."""
    return [target for target in fleet if is_app_host(target)]


def database_host(fleet: Sequence[Target]) -> Target:
    """The environment's one `db` host; none (or several) is a ConfigError naming the inventory."""
    hosts = [target for target in fleet if "db" in target.roles]
    if len(hosts) != 1:
        source = fleet[0].source_file if fleet else "inventory"
        found = f"{len(hosts)} ({', '.join(t.name for t in hosts)})" if hosts else "none"
        raise ConfigError(f"the postgres module needs exactly one host with the 'db' role in the environment, found "
                          f"{found}; give one host roles=['db'] (or ['web', 'db'] for one machine)",
                          file=source, field="roles")
    return hosts[0]


def _address(address: str) -> str:
    """pg_hba's ADDRESS for one host: an IP with its full mask, else the host name (PostgreSQL
    then checks it by reverse and forward DNS: prefer addresses for private_address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return f"{ip}/{ip.max_prefixlen}"


def hba_lines(settings: Settings, db_host: Target, fleet: Sequence[Target]) -> list[str]:
    """Exactly the environment's app hosts may log in, as the app role, to the app's database:
    over TLS with SCRAM from other hosts; through the unix socket (with SCRAM) on the db host itself."""
    lines = []
    for host in app_hosts(fleet):
        if host.name == db_host.name:
            lines.append(f"local   {settings.database} {settings.user} scram-sha-256")
        elif host.private_address != db_host.private_address:
            lines.append(f"hostssl {settings.database} {settings.user} {_address(host.private_address)} "
                         f"scram-sha-256  # {host.name}")
    return list(dict.fromkeys(lines))


def _markers(settings: Settings) -> tuple[str, str]:
    label = f"djaploy postgres: database {settings.database}, role {settings.user}"
    return (f"# BEGIN {label} (written by configureserver; edits inside are replaced)", f"# END {label}")


def with_hba_block(current: str, settings: Settings, lines: Sequence[str]) -> str:
    """pg_hba.conf with djaploy's block for this database replaced, at the top: the first matching
    line wins, and the block must come before Debian's `local all all peer`. Its lines name only
    this database and role, so every other rule of the file keeps working as before."""
    begin, end = _markers(settings)
    kept, inside = [], False
    for line in current.splitlines():
        if line == begin:
            inside = True
        elif line == end and inside:
            inside = False
        elif not inside:
            kept.append(line)
    block = [begin, *lines, end] if lines else []
    return "\n".join([*block, *kept]).rstrip("\n") + "\n"


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def database_url(settings: Settings, password: str, db_host: Target, app_host: Target) -> str:
    """DATABASE_URL for one app host (dj-database-url's form). The password is percent-encoded, so
    any password works; the db host itself goes through the unix socket, others require TLS."""
    credentials = f"{quote(settings.user, safe='')}:{quote(password, safe='')}"
    if app_host.name == db_host.name:
        return f"postgres://{credentials}@{quote(SOCKET_DIR, safe='')}/{settings.database}"
    return f"postgres://{credentials}@{_url_host(db_host.private_address)}:{PORT}/{settings.database}?sslmode=require"


def connections_needed(fleet: Sequence[Target]) -> int:
    """What the app can open at once: gunicorn workers on every web host (one connection each,
    kept by conn_max_age), one per worker service on worker hosts, plus a margin."""
    web = sum(target.gunicorn_workers for target in fleet if "web" in target.roles)
    # `workers` (name -> command) is the fleet's worker services; older configs have none.
    workers = sum(len(getattr(target, "workers", None) or ()) for target in fleet if "worker" in target.roles)
    return web + workers + CONNECTION_MARGIN
