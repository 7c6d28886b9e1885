"""Release strategies: how a release goes live on a host, and how to go back.

Each strategy module offers deploy(ctx, modules, audit, activate), activate(ctx, modules,
audit) and rollback(ctx, modules, audit, to); each returns one line saying what happened.

A deploy is two steps, so a fleet can stage on every host before any host switches
(djaploy.rollout): `stage(ctx, modules, audit) -> staged` puts the release on the host and
prepares it without serving it (a failure undoes itself), `discard(ctx, staged)` removes a
staged release that will not go live, and `go_live(ctx, modules, audit, staged, activate)`
proves it and makes it serve (a failure puts the previous release back). `deploy` is
`go_live(stage(...))`. `check_switch(ctx, command, to)` raises when the host cannot roll back or
activate, so a fleet checks every host before any switches.
"""

from __future__ import annotations

from types import ModuleType

from djaploy.strategies import bluegreen, in_place, zero_downtime

STRATEGIES: dict[str, ModuleType] = {
    "in_place": in_place,
    "zero_downtime": zero_downtime,
    "bluegreen": bluegreen,
}
