"""Which host does what in an environment: roles, the primary, the addresses hosts use for each other.

A host's `roles` say what it runs (`web`: the app behind a web server; `worker`: background services;
`db`: PostgreSQL; `lb`: the load balancer). The primary is the one `web` host that runs the
once-per-deploy steps (migrations). These rules need the whole inventory at once, so they live
here and run after every host resolved (`check_fleet`); config.py only checks each role's spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from djaploy.errors import ConfigError, display_path

__all__ = ["APP_ROLES", "DEFAULT_ROLES", "HAPROXY_MODULE", "ROLES", "check_fleet", "is_app_host", "load_balancers",
           "primary", "with_role"]

ROLES = ("web", "worker", "db", "lb")
DEFAULT_ROLES = ("web",)
#: roles that run the app's code (a release is staged on them; they get the app's environment)
APP_ROLES = ("web", "worker")
#: the module that makes a `db` host useful
POSTGRES_MODULE = "djaploy.modules.postgres"
#: the module that makes an `lb` host balance (and drain) the web hosts
HAPROXY_MODULE = "djaploy.modules.haproxy"


class _Host(Protocol):
    name: str
    roles: tuple[str, ...]
    primary: bool
    modules: tuple[str, ...]
    workers: dict[str, object]


def is_app_host(host: _Host) -> bool:
    """Whether the host runs the app's code (web or worker): only those get a release."""
    return any(role in APP_ROLES for role in host.roles)


def with_role(hosts: Sequence[_Host], role: str) -> list[_Host]:
    """The hosts holding `role`, in inventory order."""
    return [host for host in hosts if role in host.roles]


def load_balancers(hosts: Sequence[_Host]) -> list[_Host]:
    """The lb hosts running HAProxy, in inventory order: they front the web hosts (and hold the certificate)."""
    return [host for host in with_role(hosts, "lb") if HAPROXY_MODULE in host.modules]


def primary(hosts: Sequence[_Host]) -> _Host:
    """The host that runs the once-per-deploy steps: the one marked primary=True, else the first web host."""
    marked = [host for host in hosts if host.primary]
    return marked[0] if marked else with_role(hosts, "web")[0]


def check_fleet(hosts: Sequence[_Host], *, file: str) -> None:
    """Rules over the whole environment; a broken one is a ConfigError naming the file before any host is touched."""
    where = display_path(file)
    if not with_role(hosts, "web"):
        raise ConfigError("no host has the 'web' role; give at least one host roles=['web'] (the default when "
                          "roles= is left out)", file=where, field="roles")
    marked = [host.name for host in hosts if host.primary]
    if len(marked) > 1:
        raise ConfigError(f"hosts {', '.join(marked)} are all marked primary=True; mark exactly one (the web host "
                          "that runs migrations), or none to use the first web host", file=where, field="primary")
    databases = with_role(hosts, "db")
    if any(POSTGRES_MODULE in host.modules for host in hosts) and len(databases) != 1:
        found = ", ".join(host.name for host in databases) or "none"
        raise ConfigError(f"{POSTGRES_MODULE!r} needs exactly one host with the 'db' role (found: {found}); give "
                          "that host roles=['db'], or roles=['web', 'db'] for PostgreSQL on the web host",
                          file=where, field="roles")
    for host in hosts:
        if host.primary and "web" not in host.roles:
            raise ConfigError(f"host {host.name} is primary=True but has no 'web' role; the primary runs the "
                              "app's migrations, so it must be a web host", file=where, field="primary")
        if "db" in host.roles and POSTGRES_MODULE not in host.modules:
            raise ConfigError(f"host {host.name} has the 'db' role, but {POSTGRES_MODULE!r} is not in config.py's "
                              "modules; add it (with module_options={'postgres': {'password': 'env:...'}}) or drop "
                              "the role", file=where, field="roles")
    if hosts and hosts[0].workers and not with_role(hosts, "worker"):
        raise ConfigError(f"config.py's workers ({', '.join(hosts[0].workers)}) need a host with the 'worker' role; "
                          "add it to a host's roles (on a single host: roles=['web', 'worker'])",
                          file=where, field="roles")
