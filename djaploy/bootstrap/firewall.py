"""The firewall a host gets: SSH plus the ports its roles serve, nothing else, as nftables text.

What a role opens is data (`ROLE_PORTS`), and which roles a host has comes from its modules
(`ROLE_OF_MODULE`), so a new role (a database host, a load balancer) is one entry each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from djaploy.config import Target
from djaploy.modules.base import load_module_class

#: where djaploy keeps the ruleset; nftables.service loads it at boot
NFTABLES_CONF = "/etc/nftables.conf"


@dataclass(frozen=True)
class Allow:
    """Incoming TCP to `port`, from anywhere or only from `sources` (addresses or networks)."""

    port: int
    sources: tuple[str, ...] = ()


ROLE_PORTS: dict[str, tuple[Allow, ...]] = {
    "web": (Allow(80), Allow(443)),
}
ROLE_OF_MODULE: dict[str, str] = {"nginx": "web", "caddy": "web"}


def host_roles(target: Target) -> list[str]:
    """The roles a host plays, from the modules it runs (a web server module: "web")."""
    names = [load_module_class(path).name for path in target.modules]
    return sorted({ROLE_OF_MODULE[name] for name in names if name in ROLE_OF_MODULE})


def allowed(target: Target) -> list[Allow]:
    """SSH on the host's own port first, then every role's ports."""
    rules = [Allow(target.ssh_port)]
    for role in host_roles(target):
        rules += [rule for rule in ROLE_PORTS[role] if rule not in rules]
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
