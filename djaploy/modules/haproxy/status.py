"""What `status` shows about the load balancer: each web host's state there (up, drain, maint, down)
beside its release. `read_lb_states` runs on an lb host; `lb_lines` puts what every lb host said
under the web hosts it is about."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.modules.haproxy.drain import states

#: the key of an lb host's status data holding its servers' states
STATUS_KEY = "load_balancer"


def read_lb_states(ctx: HostContext) -> dict[str, str] | None:
    """The backend's servers and their states on this lb host; None on other hosts; a host the LB
    cannot be asked about shows why."""
    if "lb" not in ctx.target.roles:
        return None
    try:
        return states(ctx)
    except DjaployError as error:
        return {"": f"unknown ({str(error).splitlines()[0]})"}


def lb_lines(statuses: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Per host, one line per lb host: its state there ("not in the backend" for the other hosts,
    so a web host the LB has not taken in yet shows too)."""
    lines: dict[str, list[str]] = {}
    for lb, status in statuses.items():
        servers = status.get(STATUS_KEY)
        if servers is None:
            continue
        for name, other in statuses.items():
            if other.get(STATUS_KEY) is None:
                state = servers.get(name, servers.get("", "not in the backend"))
                lines.setdefault(name, []).append(f"  load balancer {lb}: {state}")
    return lines


__all__ = ["STATUS_KEY", "lb_lines", "read_lb_states"]
