"""The firewall a host gets: SSH plus the ports its roles serve, nothing else, as nftables text.

What a role opens is data (`ROLE_PORTS`). A host's roles are its inventory `roles`, where a `web`
host opens HTTP only when it runs a web server module (nginx, caddy); a `db` host opens
PostgreSQL only to the environment's app hosts (their private_address), as pg_hba.conf does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from djaploy.config import Target
from djaploy.fleet import is_app_host
from djaploy.modules.base import load_module_class

#: where djaploy keeps the ruleset; nftables.service loads it at boot
NFTABLES_CONF = "/etc/nftables.conf"


@dataclass(frozen=True)
class Allow:
    """Incoming TCP to `port`, from anywhere or only from `sources` (addresses or networks)."""

    port: int
    sources: tuple[str, ...] = ()


POSTGRES_PORT = 5432
ROLE_PORTS: dict[str, tuple[Allow, ...]] = {
    "web": (Allow(80), Allow(443)),
    "lb": (Allow(80), Allow(443)),
}
WEB_SERVER_MODULES = ("nginx", "caddy")


def host_roles(target: Target) -> list[str]:
    """The roles whose ports the host opens: its inventory roles, `web` only with a web server module."""
    names = [load_module_class(path).name for path in target.modules]
    serves_http = any(name in WEB_SERVER_MODULES for name in names)
    return sorted(role for role in target.roles if role in ("lb", "db") or role == "web" and serves_http)


def allowed(target: Target, fleet: Sequence[Target] = ()) -> list[Allow]:
    """SSH on the host's own port first, then every role's ports; `fleet`: the environment's hosts."""
    rules = [Allow(target.ssh_port)]
    for role in host_roles(target):
        role_rules = ROLE_PORTS.get(role, ())
        if role == "db":
            app_hosts = tuple(sorted({host.private_address for host in fleet or (target,)
                                      if is_app_host(host) and host.name != target.name}))
            role_rules = (Allow(POSTGRES_PORT, app_hosts),) if app_hosts else ()
        rules += [rule for rule in role_rules if rule not in rules]
    return rules


def nftables_ruleset(rules: Iterable[Allow]) -> str:
    """An nftables file that replaces only djaploy's own table (other tables, Docker's say, stay),
    drops every new incoming connection but the allowed ones, and keeps loopback and ICMP."""
    lines = []
    for rule in rules:
        source = f"ip saddr {{ {', '.join(rule.sources)} }} " if rule.sources else ""
        lines.append(f"\t\t{source}tcp dport {rule.port} accept")
    return "\n".join([
        "#!/usr/sbin/nft -f",
        "# Written by djaploy bootstrap: SSH and the ports of this host's roles; nothing else comes in.",
        "table inet djaploy",
        "delete table inet djaploy",
        "table inet djaploy {",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
        '\t\tiifname "lo" accept',
        "\t\tmeta l4proto { icmp, ipv6-icmp } accept",
        *lines,
        "\t}",
        "}",
        "",
    ])
