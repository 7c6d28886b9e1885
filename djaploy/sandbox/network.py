"""Addressing and plumbing: one /30 in 10.231.0.0/16, one netns and one veth pair per VPS."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Network
from pathlib import Path

from ._run import run
from .errors import SandboxError

POOL = IPv4Network("10.231.0.0/16")
# 10.231.0.0/24 is left alone: it is what the hand-run recipe in the notes uses.
FIRST = IPv4Network("10.231.1.0/30")
PREFIX = 30
NETNS_DIR = Path("/run/netns")
IFNAME_MAX = 15


def subnet_index(subnet: IPv4Network, pool: IPv4Network = POOL) -> int:
    """Position of a /30 in the pool; makes short, unique interface names."""
    return (int(subnet.network_address) - int(pool.network_address)) // subnet.num_addresses


def host_addresses(subnet: IPv4Network) -> tuple[str, str]:
    """(host side, VPS side) of a /30: its two usable addresses, .1 and .2 of the block."""
    first, second = list(subnet.hosts())[:2]
    return str(first), str(second)


def veth_names(index: int) -> tuple[str, str]:
    """(host end, VPS end); at most 10 chars, well within the kernel's 15."""
    host, peer = f"djsb{index}h", f"djsb{index}c"
    assert len(host) <= IFNAME_MAX and len(peer) <= IFNAME_MAX
    return host, peer


def netns_name(sandbox: str, host: str) -> str:
    """Readable in `ip netns list`, and unique per sandbox and host."""
    return f"djsb-{sandbox}-{host}"


def allocate_subnets(
    used: Iterable[IPv4Network],
    count: int,
    *,
    taken_ifnames: Iterable[str] = (),
    pool: IPv4Network = POOL,
    first: IPv4Network = FIRST,
) -> list[IPv4Network]:
    """Pick `count` free /30s from the pool, lowest first, that overlap nothing in `used`
    and whose veth names are not already taken on the host."""
    used_list = [net for net in used if net.overlaps(pool)]
    taken = set(taken_ifnames)
    found: list[IPv4Network] = []
    for subnet in pool.subnets(new_prefix=PREFIX):
        if len(found) == count:
            break
        if subnet.network_address < first.network_address:
            continue
        if any(subnet.overlaps(net) for net in used_list):
            continue
        if taken.intersection(veth_names(subnet_index(subnet, pool))):
            continue
        found.append(subnet)
    if len(found) < count:
        raise ValueError(f"no {count} free /{PREFIX} subnets left in {pool}")
    return found


def parse_ipv4_networks(ip_addr_output: str) -> list[IPv4Network]:
    """Networks of the addresses in `ip -4 -o addr show` output."""
    nets = []
    for line in ip_addr_output.splitlines():
        fields = line.split()
        if "inet" in fields:
            cidr = fields[fields.index("inet") + 1]
            nets.append(ipaddress.ip_interface(cidr).network)
    return [n for n in nets if isinstance(n, IPv4Network)]


def parse_link_names(ip_link_output: str) -> list[str]:
    """Interface names of `ip -o link show` output ("3: name@peer: <...")."""
    names = []
    for line in ip_link_output.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def host_networks() -> list[IPv4Network]:
    """IPv4 networks configured on the host right now (other tools may use the pool too)."""
    return parse_ipv4_networks(run(["ip", "-4", "-o", "addr", "show"]).stdout)


def host_link_names() -> list[str]:
    return parse_link_names(run(["ip", "-o", "link", "show"]).stdout)


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def netns_pids(name: str) -> list[int]:
    """Processes inside one of our namespaces (after nspawn died hard, its container's
    systemd can outlive it there: this is how we still find and stop it)."""
    if not netns_exists(name):
        return []
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(tok) for tok in out.split() if tok.isdigit()]


def create_network(netns: str, veth_host: str, veth_peer: str, subnet: IPv4Network) -> None:
    """netns + veth pair, host end .1, VPS end .2, both up, lo up inside (the recipe's §2)."""
    host_addr, vps_addr = host_addresses(subnet)
    delete_network(netns, veth_host, veth_peer)  # leftovers of a crashed run with our names
    run(["ip", "netns", "add", netns])
    run(["ip", "link", "add", veth_host, "type", "veth", "peer", "name", veth_peer])
    run(["ip", "link", "set", veth_peer, "netns", netns])
    run(["ip", "addr", "add", f"{host_addr}/{PREFIX}", "dev", veth_host])
    run(["ip", "link", "set", veth_host, "up"])
    inside = ["ip", "netns", "exec", netns]
    run([*inside, "ip", "addr", "add", f"{vps_addr}/{PREFIX}", "dev", veth_peer])
    run([*inside, "ip", "link", "set", veth_peer, "up"])
    run([*inside, "ip", "link", "set", "lo", "up"])
    # Hosts of a fleet reach each other (database, load balancer) through the host side, as on a
    # provider's private network: a route to the pool, and forwarding on this link only (the
    # machine's global ip_forward stays as it is; fleet-notes "Hosts reaching each other").
    run([*inside, "ip", "route", "add", str(POOL), "via", host_addr])
    run(["sysctl", "-q", "-w", f"net.ipv4.conf.{veth_host}.forwarding=1"])


def delete_network(netns: str, veth_host: str, veth_peer: str) -> None:
    """Remove the netns (which takes its veth end, and so the pair, with it) and any
    veth end left on the host by a half-finished setup. Missing pieces are fine."""
    if netns_exists(netns):
        run(["ip", "netns", "delete", netns])
    for name in (veth_host, veth_peer):
        # The kernel removes the pair asynchronously after `netns delete`: a link that
        # vanishes between the check and the delete is a success, not an error.
        if link_exists(name):
            proc = run(["ip", "link", "delete", name], check=False)
            if proc.returncode != 0 and link_exists(name):
                raise SandboxError(f"could not delete interface {name}: {proc.stderr.strip()}")
