"""Taking web hosts out of rotation at the load balancer and back, through the runtime API (no reload).

Each function runs on the LB host's context (`ctx.plan`). A rolling deploy calls, per batch:
`drain` then `wait_idle` (no request in flight), switches the hosts, then `ready` and `wait_up`
(HAProxy's own health check says UP) before the next batch. `states` is what `status` shows.
Polls sleep on the LB host, never in the deployer, so other hosts' work goes on meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.modules.haproxy.runtime import BACKEND, ServerStat, parse_stat, set_state, show_stat

POLL_SECONDS = 0.2
IDLE_TIMEOUT = 60.0  # a request still running after a minute is stuck: stop rather than cut it
UP_TIMEOUT = 60.0


def stats(ctx: HostContext, *, after_seconds: float = 0) -> dict[str, ServerStat]:
    """The backend's servers as HAProxy sees them now."""
    result = ctx.plan.query(show_stat(after_seconds=after_seconds))
    if not result.ok:
        raise DjaployError(f"[{ctx.target.name}] haproxy: cannot read `show stat` from the admin socket: "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return parse_stat(result.stdout)


def members(ctx: HostContext, names: Sequence[str]) -> list[str]:
    """The hosts among `names` the backend holds (a host not deployed yet is not in it)."""
    if ctx.plan.dry_run:
        return list(names)
    held = stats(ctx)
    return [name for name in names if name in held]


def drain(ctx: HostContext, names: Sequence[str]) -> None:
    """No new requests to these hosts; requests in flight finish."""
    if names:
        ctx.plan.run(f"haproxy: drain {', '.join(names)}", set_state(list(names), "drain"))


def ready(ctx: HostContext, names: Sequence[str]) -> None:
    """Back into rotation (HAProxy sends traffic once its own check says UP)."""
    if names:
        ctx.plan.run(f"haproxy: re-admit {', '.join(names)}", set_state(list(names), "ready"))


def maint(ctx: HostContext, names: Sequence[str]) -> None:
    """Out of rotation and unchecked: a host that failed and cannot serve."""
    if names:
        ctx.plan.run(f"haproxy: keep {', '.join(names)} out (maint)", set_state(list(names), "maint"))


def _wait(ctx: HostContext, names: Sequence[str], done: Callable[[ServerStat], bool], what: str,
          timeout: float) -> None:
    if not names or ctx.plan.dry_run:
        return
    deadline = time.monotonic() + timeout
    pending = list(names)
    after = 0.0
    while True:
        current = stats(ctx, after_seconds=after)
        pending = [name for name in pending if not (name in current and done(current[name]))]
        if not pending:
            return
        if time.monotonic() > deadline:
            seen = ", ".join(f"{name}: {current[name].status if name in current else 'not in the backend'}"
                             for name in pending)
            raise DjaployError(f"[{ctx.target.name}] haproxy: {what} after {timeout:g}s ({seen})")
        after = POLL_SECONDS


def wait_idle(ctx: HostContext, names: Sequence[str], timeout: float = IDLE_TIMEOUT) -> None:
    """Until the drained hosts have no request in flight (scur 0)."""
    _wait(ctx, names, lambda stat: stat.scur == 0, "requests still in flight on drained hosts", timeout)


def wait_up(ctx: HostContext, names: Sequence[str], timeout: float = UP_TIMEOUT) -> None:
    """Until HAProxy's own health check reports the hosts UP (and they are in rotation)."""
    _wait(ctx, names, lambda stat: stat.lb_state == "up", "hosts not UP at the load balancer", timeout)


def states(ctx: HostContext) -> dict[str, str]:
    """Each backend server's state at the LB (up, drain, maint, down), for `status`."""
    return {name: stat.lb_state for name, stat in stats(ctx).items()}


__all__ = ["BACKEND", "drain", "maint", "members", "ready", "states", "stats", "wait_idle", "wait_up"]
