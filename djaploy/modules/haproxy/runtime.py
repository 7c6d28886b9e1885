"""HAProxy's runtime API: the shell commands that talk to its admin socket, and `show stat` parsed.

Pure builders and parsers (no host, no plan): the drain driver and the config steps run what
these return. Every value is quoted (`shell.q`); server names were checked when the config loaded.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from djaploy import shell

CONFIG_FILE = "/etc/haproxy/haproxy.cfg"
SOCKET = "/run/haproxy/admin.sock"
STATE_FILE = "/var/lib/haproxy/server-state"
#: the one backend holding the web hosts; runtime commands address servers as app/<host name>
BACKEND = "app"
#: what `set server ... state` takes
ADMIN_STATES = ("ready", "drain", "maint")
#: what a web host's state at the LB is shown as (status)
LB_STATES = ("up", "drain", "maint", "down")


def api(command: str) -> str:
    """Send one runtime API command to the admin socket (socat prints HAProxy's answer)."""
    return f"printf '%s\\n' {shell.q(command)} | socat stdio {shell.q(SOCKET)}"


def set_state(servers: list[str], state: str) -> str:
    """Put servers in an admin state; HAProxy answers nothing on success, an error line otherwise,
    so any output fails the command."""
    if state not in ADMIN_STATES:
        raise ValueError(f"unknown admin state {state!r}; one of {', '.join(ADMIN_STATES)}")
    steps = [f'out=$({api(f"set server {BACKEND}/{name} state {state}")}) && [ -z "$out" ] || '
             f'{{ echo {shell.q(name + ": ")}"$out" >&2; exit 1; }}' for name in servers]
    return "; ".join(steps) if steps else "true"


def show_stat(*, after_seconds: float = 0) -> str:
    """`show stat` as CSV; `after_seconds` waits on the host first (a poll that never blocks the deployer)."""
    wait = f"sleep {after_seconds:g}; " if after_seconds else ""
    return wait + api("show stat")


def check_and_reload() -> str:
    """Validate the config, save the servers' state right before the reload (so drains survive it:
    the state file is read at every start and reload, a stale one would resurrect an old drain),
    then reload gracefully (or start HAProxy when it is not running)."""
    config, sock, state = shell.q(CONFIG_FILE), shell.q(SOCKET), shell.q(STATE_FILE)
    save = (f"if [ -S {sock} ]; then {api('show servers state')} > {state}.new && mv {state}.new {state}; "
            f"else rm -f {state}; fi")
    return f"haproxy -c -q -f {config} && {{ {save}; }} && systemctl reload-or-restart haproxy"


def backend_members(candidates: list[tuple[str, str]], health_host: str, health_path: str) -> str:
    """Print the names of the candidate web hosts (name, address) the backend should hold: those it
    already holds (the LB's own check handles a host that fails later) and those answering the health
    check from here (a host configured but not deployed yet must not get traffic)."""
    present = f"present=$({api('show stat')} 2>/dev/null | cut -d, -f1,2)"
    lines = [present]
    for name, address in candidates:
        url = f"http://{_url_host(address)}:80{health_path}"
        known = f"printf '%s\\n' \"$present\" | grep -qxF {shell.q(f'{BACKEND},{name}')}"
        # Straight to the web host: never through an http_proxy the host's environment may set.
        probe = (f"curl -fsS -o /dev/null --max-time 3 --noproxy '*' -H {shell.q(f'Host: {health_host}')} "
                 f"{shell.q(url)}")
        lines.append(f"{{ {known} || {probe}; }} >/dev/null 2>&1 && echo {shell.q(name)}")
    return "; ".join(lines) + "; true"


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@dataclass(frozen=True)
class ServerStat:
    """One web host as HAProxy sees it: requests in flight (scur) and its status column."""

    name: str
    scur: int
    status: str

    @property
    def lb_state(self) -> str:
        """up, drain, maint or down (status shows MAINT, DRAIN, UP, UP 1/2, DOWN, NOLB, no check...)."""
        status = self.status.upper()
        if status.startswith("MAINT"):
            return "maint"
        if status.startswith("DRAIN"):
            return "drain"
        if status.startswith("UP") or status == "NO CHECK":
            return "up"
        return "down"


def parse_stat(text: str, backend: str = BACKEND) -> dict[str, ServerStat]:
    """The servers of `backend` in `show stat`'s CSV (header line '# pxname,svname,...'), by name;
    the BACKEND and FRONTEND summary rows are left out."""
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError(f"not HAProxy's `show stat` output: {text[:80]!r}")
    rows = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    servers = {}
    for row in rows:
        if row.get("pxname") != backend or row.get("svname") in ("BACKEND", "FRONTEND", None):
            continue
        servers[row["svname"]] = ServerStat(row["svname"], int(row.get("scur") or 0), row.get("status") or "")
    return servers
