"""A host's ``.djaploy/state.json``: what is deployed there and what serves. The one owner of its schema.

Strategies write it at the end of every successful operation; status, remote, logs and the
summary after a failure read it. Only this file knows its keys:

    in_place        {"strategy": "in_place", "current": R, "releases": {R: INFO}}
    zero_downtime   {"strategy": "zero_downtime", "current": R, "order": [R, ...], "releases": {R: INFO, ...}}
    bluegreen       {"strategy": "bluegreen", "active": SLOT, "previous": SLOT, "switched_at": ...,
                     "slots": {SLOT: {"state": "staged|active|previous|failed", **INFO}}}

INFO is what `strategies.common.release_info` records (release, ref, commit, deployed_at, version when versioned, ...).
A host that was never deployed has no file: its state is {}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from djaploy import shell
from djaploy.errors import RemoteError

if TYPE_CHECKING:
    from djaploy.context import HostContext
    from djaploy.layout import AppPaths


class InvalidState(ValueError):
    """state.json holds something that is not a JSON object."""


def read_command(paths: AppPaths) -> str:
    """Print state.json, or nothing when there is none."""
    return f"cat {shell.q(paths.state_file)} 2>/dev/null || true"


def parse_state(text: str) -> dict[str, Any]:
    """state.json's text as a dict ({} for none); InvalidState when it is not a JSON object."""
    text = text.strip()
    if not text:
        return {}
    try:
        state = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidState(f"not valid JSON: {error}") from None
    if not isinstance(state, dict):
        raise InvalidState(f"a JSON {type(state).__name__}, not an object")
    return state


def read_state(ctx: HostContext, text: str | None = None) -> dict[str, Any]:
    """The host's state.json ({} before the first deploy); `text`: its content, when a query that
    asked more at once (zero_downtime's) already read it."""
    try:
        return parse_state(ctx.plan.query(read_command(ctx.paths)).stdout if text is None else text)
    except InvalidState:
        raise RemoteError(ctx.target.name, "read state",
                          hint=f"{ctx.paths.state_file} is not valid JSON; fix or remove it") from None


def write_state(ctx: HostContext, state: dict[str, Any]) -> None:
    """Record `state` atomically (never in a dry run); ctx.state holds it for the rest of the operation."""
    ctx.state = state
    if ctx.plan.dry_run:
        return
    ctx.plan.run("record state", shell.write_file_atomically(ctx.paths.state_file, json.dumps(state, sort_keys=True)))


def fresh_state(strategy: str) -> dict[str, Any]:
    """The state of `strategy` before its first release on a host."""
    if strategy == "bluegreen":
        return {"strategy": strategy, "active": None, "previous": None, "slots": {}}
    return {"strategy": strategy, "current": None, "order": [], "releases": {}}


def state_of(ctx: HostContext, strategy: str, text: str | None = None) -> dict[str, Any]:
    """The host's state when `strategy` wrote it, else a fresh one (another strategy's is replaced)."""
    state = read_state(ctx, text)
    return state if state.get("strategy") == strategy else fresh_state(strategy)


@dataclass(frozen=True)
class Serving:
    """What serves on a host by its state: strategy None when nothing was deployed; slot for bluegreen,
    lane (a or b) for zero_downtime."""

    strategy: str | None
    release: str | None
    slot: str | None = None


def serving(state: dict[str, Any]) -> Serving:
    """Read what serves from a host's state (pure)."""
    strategy = state.get("strategy") or None
    if strategy == "bluegreen":
        active = state.get("active") or None
        release = state.get("slots", {}).get(active, {}).get("release") if active else None
        return Serving(strategy, release, active)
    if strategy == "zero_downtime":  # lane: which of its two services serves (None: state from before lanes)
        return Serving(strategy, state.get("current") or None, state.get("lane") or None)
    return Serving(strategy, state.get("current") or None)


def serving_info(state: dict[str, Any]) -> dict[str, Any]:
    """The INFO of what serves (release, commit, version...), {} when nothing does (pure)."""
    now = serving(state)
    if now.strategy == "bluegreen":
        return dict(state.get("slots", {}).get(now.slot, {})) if now.slot else {}
    return dict(state.get("releases", {}).get(now.release, {})) if now.release else {}


def serving_from_state(state: dict[str, Any]) -> str:
    """'release X' / 'release X in the blue slot' / 'nothing yet', from a host's state.json."""
    now = serving(state)
    if now.strategy == "bluegreen":
        return f"release {now.release} in the {now.slot} slot" if now.slot else "nothing yet"
    return f"release {now.release}" if now.release else "nothing yet"
