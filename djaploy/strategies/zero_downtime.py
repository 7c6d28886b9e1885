"""zero_downtime: immutable releases, an atomic `current` link, a graceful restart.

    releases/<release>/   extracted once, never changed
    current -> releases/<release>

A new release is installed and migrated beside the live one, then proves itself in a private
gunicorn (health check with the host's domain) before anything points at it. Only then is
`current` swapped (temporary link + rename) and the socket-activated service restarted:
in-flight requests finish on the old workers, new connections wait in the socket backlog
for the new ones. If anything fails before the swap, the old release never stopped serving;
if the new release fails after it, `current` goes back and the old release is restarted.
A failed release is removed, so it is never a rollback target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.modules.base import BaseModule
from djaploy.state import state_of, write_state
from djaploy.strategies.common import (
    UndoOnFailure,
    clean_up,
    health_gate,
    release_info,
    route_traffic,
    run_hooks,
    upload_and_extract,
)

NAME = "zero_downtime"


def _existing_releases(ctx: HostContext) -> list[str]:
    listing = ctx.plan.query(f"ls -1 {shell.q(ctx.paths.releases_dir)} 2>/dev/null || true").stdout
    return [line for line in listing.splitlines() if line.strip()]


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


def _switch_and_restart(ctx: HostContext, release: str, step: str) -> None:
    """One round trip: swap `current` atomically, then restart gracefully onto it."""
    assert ctx.service
    restart = f" && {shell.systemctl('restart', ctx.service.service)}" if "web" in ctx.target.roles else ""
    ctx.plan.run(step, f"{shell.switch_symlink(ctx.paths.current, ctx.paths.release_dir(release))}{restart}")


def _remove_release(ctx: HostContext, release: str) -> None:
    ctx.plan.run(f"remove release {release}", f"rm -rf {shell.q(ctx.paths.release_dir(release))}")


@dataclass
class Staged:
    """A release extracted and prepared beside the live one: what `switch` and `discard` need."""

    name: str
    previous: str | None
    state: dict[str, Any]
    on_disk: list[str]


def stage(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> Staged:
    """Upload, extract and prepare the release (venv, env file, collectstatic) beside the live one.
    Nothing serves it yet; a failure removes it."""
    assert ctx.release
    paths = ctx.paths
    ctx.service = paths.service_for(NAME)
    state = state_of(ctx, NAME)
    on_disk = _existing_releases(ctx)
    name = _unique_name(ctx.release.name, set(on_disk) | set(state["releases"]))
    audit["release"] = name
    release_dir = paths.release_dir(name)
    previous = state.get("current") if state.get("current") in on_disk else None
    staged = Staged(name, previous, state, on_disk)
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
    """Prove the staged release in a private gunicorn, then make it live; a failure puts the previous one back."""
    paths, name, previous, state = ctx.paths, staged.name, staged.previous, staged.state
    release_dir = paths.release_dir(name)
    with UndoOnFailure(f"remove release {name}", lambda: discard(ctx, staged)):
        health_gate(ctx)
    if ctx.plan.dry_run:
        return f"release {name} would go live"

    def put_previous_back() -> None:
        if previous:
            _switch_and_restart(ctx, previous, f"restore release {previous}")
        _remove_release(ctx, name)

    ctx.plan.run("switch current", shell.switch_symlink(paths.current, release_dir))
    with UndoOnFailure(f"restore release {previous}" if previous else f"remove release {name}", put_previous_back):
        run_hooks(ctx, modules, "publish")
        route_traffic(ctx, modules)
        run_hooks(ctx, modules, "verify")

    info = release_info(ctx)
    info["release"] = name
    state["releases"][name] = info
    state["order"] = [n for n in state["order"] if n != name] + [name]
    state["current"] = name
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
    paths = ctx.paths
    ctx.service = paths.service_for(NAME)
    state = state_of(ctx, NAME)
    current, target = _rollback_choice(ctx, state, to)
    audit.update(release=target, rolled_back_from=current, commit=state["releases"][target].get("commit"))
    if ctx.plan.dry_run:
        return f"would roll back from {current} to {target}"
    _switch_and_restart(ctx, target, f"switch current to {target} and restart")
    ctx.code_dir = paths.release_dir(target)
    with UndoOnFailure(f"restore release {current}",
                       lambda: _switch_and_restart(ctx, current, f"restore release {current}")):
        run_hooks(ctx, modules, "verify")
    state["releases"][current]["rolled_back"] = True
    state["current"] = target
    write_state(ctx, state)
    return f"rolled back from {current} to {target}"


def activate(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> str:
    raise DjaployError(f"[{ctx.target.name}] activate is for deployment_strategy='bluegreen'; zero_downtime deploys go live when they pass their health check")


__all__ = ["Staged", "activate", "check_switch", "deploy", "discard", "go_live", "releases_to_prune", "rollback", "rollback_target", "stage"]
