"""zero_downtime: immutable releases, an atomic `current` link, two services used in turn.

    releases/<release>/   extracted once, never changed
    current -> releases/<release>

A new release is installed and migrated beside the live one, then started in the service
(lane) that is not serving, and proves itself there (health check with the host's domain on
that lane's own socket) before anything points at it. Only then does the live link move to it
and the old lane stop gracefully: the release boots once and no request waits for a restart
(djaploy.strategies.lanes). If anything fails before that, the old release never stopped
serving; a failure after it puts the traffic, `current` and the old lane back. A failed
release is removed, so it is never a rollback target. A rollback starts the older release in
the idle lane the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.layout import AppService
from djaploy.modules.base import BaseModule
from djaploy.state import state_of, write_state
from djaploy.strategies.common import (
    UndoOnFailure,
    clean_up,
    release_info,
    run_hooks,
    upload_and_extract,
)
from djaploy.strategies.lanes import go_live_in_lane, host_now_command, lane_of, next_lane, parse_host_now

NAME = "zero_downtime"


def _host_now(ctx: HostContext) -> tuple[dict[str, Any], list[str], AppService | None]:
    """(state, release folders on disk, the app's service the live link points at): one round trip."""
    text, on_disk, live = parse_host_now(ctx.plan.query(host_now_command(ctx)).stdout)
    return state_of(ctx, NAME, text), on_disk, ctx.paths.service_on(live)


def _unique_name(name: str, taken: set[str]) -> str:
    """A redeploy of the same tag gets its own folder: releases are immutable."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-r{number}"
    return candidate


def rollback_target(state: dict[str, Any]) -> str | None:
    """The newest release before the live one that was not itself rolled back."""
    order = [name for name in state.get("order", []) if name in state.get("releases", {})]
    current = state.get("current")
    if current not in order:
        return None
    for name in reversed(order[: order.index(current)]):
        if not state["releases"][name].get("rolled_back"):
            return name
    return None


def releases_to_prune(state: dict[str, Any], keep: int, on_disk: list[str]) -> list[str]:
    """Old releases beyond `keep`, and leftovers of interrupted deploys; never the live one or
    the rollback target."""
    order = [name for name in state.get("order", []) if name in state.get("releases", {})]
    kept = set(order[-keep:]) | {state.get("current"), rollback_target(state)}
    return [name for name in on_disk if name not in kept]


def _remove_release(ctx: HostContext, release: str) -> None:
    ctx.plan.run(f"remove release {release}", f"rm -rf {shell.q(ctx.paths.release_dir(release))}")


@dataclass
class Staged:
    """A release extracted and prepared beside the live one: what `switch` and `discard` need."""

    name: str
    previous: str | None
    state: dict[str, Any]
    on_disk: list[str]
    serving: AppService | None  # what the live link points at: the lane (or other service) to stop after


def stage(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> Staged:
    """Upload, extract and prepare the release (venv, env file, collectstatic) beside the live one.
    Nothing serves it yet; a failure removes it."""
    assert ctx.release
    paths = ctx.paths
    state, on_disk, serving = _host_now(ctx)
    name = _unique_name(ctx.release.name, set(on_disk) | set(state["releases"]))
    audit["release"] = name
    release_dir = paths.release_dir(name)
    previous = state.get("current") if state.get("current") in on_disk else None
    staged = Staged(name, previous, state, on_disk, serving)
    ctx.service = paths.service_for(NAME, next_lane(paths, serving))  # the lane it will start in
    with UndoOnFailure(f"remove release {name}", lambda: discard(ctx, staged)):
        upload_and_extract(ctx, release_dir)
        ctx.code_dir = release_dir
        run_hooks(ctx, modules, "prepare_data", "prepare_release")
    return staged


def discard(ctx: HostContext, staged: Staged) -> None:
    """Remove a staged release that will not go live (its host or another failed before switching)."""
    if not ctx.plan.dry_run:
        _remove_release(ctx, staged.name)


def go_live(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], staged: Staged,
            activate: bool = False) -> str:
    """Start the staged release in the idle lane; once it answers, move the traffic to it
    (djaploy.strategies.lanes). A failure puts the previous release back and removes this one."""
    paths, name, previous, state = ctx.paths, staged.name, staged.previous, staged.state
    if ctx.plan.dry_run:
        return f"release {name} would go live"
    lane = go_live_in_lane(ctx, modules, paths.release_dir(name), paths.release_dir(previous) if previous else None,
                           staged.serving, undo_extra=lambda: _remove_release(ctx, name))
    info = release_info(ctx)
    info["release"] = name
    state["releases"][name] = info
    state["order"] = [n for n in state["order"] if n != name] + [name]
    state.update(current=name, lane=lane)
    _prune(ctx, state, [*staged.on_disk, name])
    write_state(ctx, state)
    return f"release {name} is live" + (f" (rollback target: {rollback_target(state)})" if rollback_target(state) else "")


def deploy(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], activate: bool = False) -> str:
    return go_live(ctx, modules, audit, stage(ctx, modules, audit))


def _prune(ctx: HostContext, state: dict[str, Any], on_disk: list[str]) -> None:
    doomed = releases_to_prune(state, ctx.target.keep_releases, on_disk)
    for name in doomed:
        state["releases"].pop(name, None)
    state["order"] = [n for n in state["order"] if n in state["releases"]]
    clean_up(ctx, NAME, [ctx.paths.release_dir(name) for name in doomed])


def _rollback_choice(ctx: HostContext, state: dict[str, Any], to: str | None) -> tuple[str, str]:
    """(live release, release to go back to); DjaployError when there is no such pair."""
    current = state.get("current")
    if not current:
        raise DjaployError(f"[{ctx.target.name}] nothing to roll back: no zero_downtime release is live")
    target = to or rollback_target(state)
    if not target:
        raise DjaployError(f"[{ctx.target.name}] no previous release to roll back to (kept: {', '.join(state['order'])})")
    if target not in state["releases"]:
        raise DjaployError(f"[{ctx.target.name}] release {target!r} is not kept on this host; kept: {', '.join(state['order'])}")
    if target == current:
        raise DjaployError(f"[{ctx.target.name}] release {target} is already live")
    return current, target


def check_switch(ctx: HostContext, command: str, to: str | None = None) -> None:
    """Raise before any host of a fleet switches when this one cannot (rollback, activate)."""
    if command != "rollback":
        activate(ctx, [], {})
    _rollback_choice(ctx, state_of(ctx, NAME), to)


def rollback(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], to: str | None = None) -> str:
    """Start the older release in the idle lane and move the traffic to it, as a deploy does."""
    paths = ctx.paths
    state, _, serving = _host_now(ctx)
    current, target = _rollback_choice(ctx, state, to)
    audit.update(release=target, rolled_back_from=current, commit=state["releases"][target].get("commit"))
    if ctx.plan.dry_run:
        return f"would roll back from {current} to {target}"
    ctx.code_dir = paths.release_dir(target)
    lane = go_live_in_lane(ctx, modules, paths.release_dir(target), paths.release_dir(current), serving)
    if serving is not None and lane_of(paths, serving) is None:
        clean_up(ctx, NAME)  # the live service was not a lane (djaploy before lanes): retire it
    state["releases"][current]["rolled_back"] = True
    state.update(current=target, lane=lane)
    write_state(ctx, state)
    return f"rolled back from {current} to {target}"


def activate(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> str:
    raise DjaployError(f"[{ctx.target.name}] activate is for deployment_strategy='bluegreen'; zero_downtime deploys go live when they pass their health check")


__all__ = ["Staged", "activate", "check_switch", "deploy", "discard", "go_live", "releases_to_prune", "rollback", "rollback_target", "stage"]
