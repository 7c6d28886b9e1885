"""Release strategies: how a release goes live on a host, and how to go back.

Each strategy module offers deploy(ctx, modules, audit, activate), activate(ctx, modules,
audit) and rollback(ctx, modules, audit, to); each returns one line saying what happened.
"""

from __future__ import annotations

from types import ModuleType

from djaploy.strategies import bluegreen, in_place, zero_downtime

STRATEGIES: dict[str, ModuleType] = {
    "in_place": in_place,
    "zero_downtime": zero_downtime,
    "bluegreen": bluegreen,
}
