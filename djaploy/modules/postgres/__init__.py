"""postgres: PostgreSQL on the environment's `db` host, for exactly its app hosts.

    # infra/config.py
    modules=[..., "djaploy.modules.postgres"],
    module_options={"postgres": {
        "password": "env:SHOP_DB_PASSWORD",   # required: from your environment, never the repository
        "database": "shop",                   # default: the project name
        "user": "shop",                       # the app's role; default: the project name
        "max_connections": 100,               # PostgreSQL's; verify checks it against the fleet
    }}

configureserver installs Debian's `postgresql` on the host with roles=["db"], makes it listen on
its private_address, lets in exactly the app hosts (roles web and worker) in pg_hba.conf (TLS and
scram-sha-256; the db host itself, when it is also an app host, through the unix socket), and
creates the role and its database. App hosts get psql (for `manage.py remote -- dbshell`); every
service and remote manage.py gets DATABASE_URL through the `environment` hook.

The code, one concern a file: options.py (validation, the password), scram.py (the verifier
PostgreSQL stores), server_config.py (conf.d, pg_hba.conf, DATABASE_URL as text), steps.py (what
runs on a host); `Module` here, so the dotted path config.py lists names it.
"""

from __future__ import annotations

from pathlib import Path

from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.modules.base import BaseModule
from djaploy.modules.postgres.options import NAME, password, settings_for
from djaploy.modules.postgres.server_config import (
    database_host,
    database_url,
    is_app_host,
)
from djaploy.modules.postgres.steps import configure_database_host, install_client


def _fleet(ctx: HostContext) -> tuple[Target, ...]:
    """Every host of the environment (a context made for one host alone: that host)."""
    return ctx.fleet or (ctx.target,)


class Module(BaseModule):
    """check_target refuses bad options before any connection; configure_server sets up the server on
    the db host and the client on app hosts; environment gives the app its DATABASE_URL."""

    name = NAME

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        settings_for(target, config_dir)  # every option error, before any connection

    def configure_server(self, ctx: HostContext) -> None:
        settings = settings_for(ctx.target, ctx.config_dir)
        secret = password(settings, ctx.target, ctx.config_dir)
        fleet = _fleet(ctx)
        database_host(fleet)  # exactly one db host, or a clear error on every host
        if "db" in ctx.target.roles:
            configure_database_host(ctx, settings, secret, fleet)
        if is_app_host(ctx.target):
            install_client(ctx)

    def environment(self, ctx: HostContext) -> dict[str, str]:
        settings = settings_for(ctx.target, ctx.config_dir)
        secret = password(settings, ctx.target, ctx.config_dir)
        return {"DATABASE_URL": database_url(settings, secret, database_host(_fleet(ctx)), ctx.target)}
