"""haproxy.cfg for the load balancer: the frontend answering the environment's domains on :80, the
backend over the web hosts' private addresses with HAProxy's own health check.

HAProxy's config has its own syntax (spaces split words, '#' starts a comment, quotes and '$'
expand): every value that goes into it must be one plain word, checked here, so a hostile domain,
health path or address is refused before anything reaches a host.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from djaploy.fleet import with_role
from djaploy.modules.haproxy.runtime import BACKEND, SOCKET, STATE_FILE
from djaploy.render import render

if TYPE_CHECKING:
    from pathlib import Path

    from djaploy.config import Target

#: a URL path HAProxy takes as one word (no space, quote, '#', '$' or backslash)
PATH_WORD_RE = re.compile(r"/[A-Za-z0-9\-._~/?=&:@+,!*%]*")
DOMAIN_RE = re.compile(r"(\*\.)?([a-z0-9_-]+\.)*[a-z0-9-]+", re.IGNORECASE)
#: an IPv4 or IPv6 address or a host name
ADDRESS_RE = re.compile(r"[A-Za-z0-9._:-]+")
SERVER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
#: how often HAProxy checks each web host; with fall 2 / rise 2 a host is out or back within a second
CHECK_INTERVAL_MS = 500


@dataclass(frozen=True)
class Server:
    """One web host in the backend."""

    name: str
    address: str


def config_problem(target: Target, fleet: Sequence[Target]) -> str | None:
    """Why the environment cannot be written into haproxy.cfg, or None."""
    for domain in target.domains:
        if not DOMAIN_RE.fullmatch(domain):
            return f"domain {domain!r} is not a plain domain name"
    if not PATH_WORD_RE.fullmatch(target.health_check_path):
        return (f"health_check_path {target.health_check_path!r} cannot go into haproxy.cfg; use letters, digits "
                "and - . _ ~ / ? = & : @ + , ! * % only")
    for host in with_role(fleet, "web"):
        if not SERVER_NAME_RE.fullmatch(host.name):
            return f"host name {host.name!r} cannot name an HAProxy server"
        if not ADDRESS_RE.fullmatch(host.private_address):
            return f"host {host.name}: private_address {host.private_address!r} is not an address or host name"
    return None


def web_servers(fleet: Sequence[Target]) -> list[Server]:
    """Every web host of the environment, in inventory order."""
    return [Server(host.name, host.private_address) for host in with_role(fleet, "web")]


def health_host(target: Target) -> str:
    """The Host header of the LB's health check: the first exact domain, so ALLOWED_HOSTS applies."""
    exact = [domain for domain in target.domains if not domain.startswith("*.")]
    return exact[0] if exact else "localhost"


def haproxy_config(target: Target, fleet: Sequence[Target], servers: Sequence[Server], *, env: str,
                   config_dir: Path | None = None, acme_port: int | None = None, tls_pem: str | None = None) -> str:
    """The whole haproxy.cfg; `servers` are the web hosts the backend holds now (a subset of the fleet's).
    `acme_port`: route certbot's challenge path there; `tls_pem`: also serve HTTPS with it (djaploy.modules.haproxy.tls)."""
    problem = config_problem(target, fleet)
    if problem:
        raise ValueError(problem)
    if tls_pem is not None and not PATH_WORD_RE.fullmatch(tls_pem):
        raise ValueError(f"the PEM's path must be one plain word: {tls_pem!r}")
    if not all(SERVER_NAME_RE.fullmatch(s.name) and ADDRESS_RE.fullmatch(s.address) for s in servers):
        raise ValueError(f"server names and addresses must be plain words: {servers!r}")
    domains = [domain.lower() for domain in target.domains]
    return render(
        "haproxy.cfg.j2",
        config_dir,
        project=target.app_name,
        env=env,
        socket=SOCKET,
        state_file=STATE_FILE,
        backend=BACKEND,
        exact_domains=[domain for domain in domains if not domain.startswith("*.")],
        wildcard_suffixes=[domain[1:] for domain in domains if domain.startswith("*.")],
        health_path=target.health_check_path,
        health_host=health_host(target),
        servers=[Server(s.name, f"[{s.address}]" if ":" in s.address else s.address) for s in servers],
        check_interval_ms=CHECK_INTERVAL_MS,
        acme_port=acme_port,
        tls_pem=tls_pem,
    )
