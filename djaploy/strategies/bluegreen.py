"""bluegreen: two slots, each with its own service and socket; the web server switches.

    slots/blue/   {project}-blue.service  on /run/{project}-blue/{project}.sock
    slots/green/  {project}-green.service on /run/{project}-green/{project}.sock

`deploy` stages a release into the slot not serving traffic, installs and migrates it, starts
its service and checks it through its own socket; traffic does not move. `activate` checks the
staged slot again, then swaps the app's live link (the socket path the web server connects to)
to the slot's socket: atomic, no web server reload, so no connection is dropped. `rollback`
switches back to the previous slot, which is still running.
state.json records which slot is active and what each slot holds:

    {"strategy": "bluegreen", "active": "green", "previous": "blue", "switched_at": ...,
     "slots": {"blue": {"state": "previous", "release": ..., "commit": ..., ...}, "green": {...}}}

Slot states: staged (deployed, never active), active, previous (was active: a rollback target),
failed (never activated).
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
    check_socket,
    clean_up,
    release_info,
    route_traffic,
    run_hooks,
    upload_and_extract,
    utc_now,
)

NAME = "bluegreen"


def other(slot: str | None) -> str:
    return "green" if slot == "blue" else "blue"


@dataclass
class Staged:
    """The slot a release was put in and prepared, not started yet: what `switch` and `discard` need."""

    slot: str
    active: str | None
    state: dict[str, Any]


def stage(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> Staged:
    """Put the release into the slot not serving traffic and prepare it (venv, env file, collectstatic)."""
    assert ctx.release
    paths = ctx.paths
    state = state_of(ctx, NAME)
    active = state.get("active")
    staged = Staged(other(active), active, state)
    service = paths.service_for(NAME, staged.slot)
    ctx.service = service
    slot_dir = paths.slot_dir(staged.slot)
    audit.update(slot=staged.slot)
    upload_and_extract(ctx, f"{slot_dir}.new")
    with UndoOnFailure(f"stop the {staged.slot} slot and mark it failed", lambda: discard(ctx, staged)):
        ctx.plan.run(
            f"stop {staged.slot} slot and put release in it",
            f"{shell.systemctl('stop', service.service)} 2>/dev/null; "
            f"runuser -u {shell.q(ctx.target.app_user)} -- sh -c {shell.q(shell.replace_dir(slot_dir + '.new', slot_dir))}",
        )
        ctx.code_dir = slot_dir
        run_hooks(ctx, modules, "prepare_data", "prepare_release")
    return staged


def discard(ctx: HostContext, staged: Staged) -> None:
    """Stop the staged slot and mark it failed: it never becomes a target of activate."""
    if not ctx.plan.dry_run:
        service = ctx.paths.service_for(NAME, staged.slot)
        ctx.plan.run(f"stop the failed {staged.slot} slot", f"{shell.systemctl('stop', service.service)} 2>/dev/null; true")
        staged.state["slots"][staged.slot] = {**release_info(ctx), "state": "failed"}
        write_state(ctx, staged.state)


def go_live(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], staged: Staged,
                 activate: bool = False) -> str:
    """Start the staged slot's service and check it through its own socket; traffic moves only
    with `activate` or when no slot was active yet."""
    assert ctx.release and ctx.service
    slot, active, state = staged.slot, staged.active, staged.state
    with UndoOnFailure(f"stop the {slot} slot and mark it failed", lambda: discard(ctx, staged)):
        run_hooks(ctx, modules, "publish")
        check_socket(ctx, ctx.service.socket_path, f"check {slot} slot through its own socket")
    state["slots"][slot] = {**release_info(ctx), "state": "staged"}
    write_state(ctx, state)
    message = f"release {ctx.release.name} staged in the {slot} slot"
    if activate or not active:
        reason = "" if activate else " (no slot was active yet)"
        return message + "; " + switch(ctx, modules, audit, "activate", state) + reason
    return message + f"; traffic stays on {active} until `manage.py activate --env {ctx.env}`"


def deploy(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], activate: bool = False) -> str:
    return go_live(ctx, modules, audit, stage(ctx, modules, audit), activate)


def switch(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], action: str,
           state: dict[str, Any] | None = None) -> str:
    """Move traffic to the other slot after checking it (activate: staged; rollback: previous).
    `state` is the host's state when the caller just wrote it (deploy --activate)."""
    paths = ctx.paths
    state = state if state is not None else state_of(ctx, NAME)
    active = state.get("active")
    target = other(active)
    slot = _slot_to_switch_to(ctx, action, state)
    service = paths.service_for(NAME, target)
    ctx.service = service
    ctx.code_dir = paths.slot_dir(target)
    audit.update(slot=target, release=slot.get("release"), commit=slot.get("commit"), from_slot=active)
    check_socket(ctx, service.socket_path, f"check {target} slot before switching")
    if ctx.plan.dry_run:
        return f"would switch traffic to {target} ({slot.get('release')})"
    def route_back() -> None:
        if active:
            ctx.service = paths.service_for(NAME, active)
            route_traffic(ctx, modules)

    route_traffic(ctx, modules)
    with UndoOnFailure(f"route traffic back to {active}", route_back):
        run_hooks(ctx, modules, "verify")
    clean_up(ctx, NAME)
    if active and active in state["slots"]:
        state["slots"][active]["state"] = "previous"
    slot["state"] = "active"
    state.update(active=target, previous=active, switched_at=utc_now())
    write_state(ctx, state)
    return f"traffic switched to {target} ({slot.get('release')})"


def _slot_to_switch_to(ctx: HostContext, action: str, state: dict[str, Any]) -> dict[str, Any]:
    """The other slot's record, when it is what `action` switches to (activate: staged; rollback: previous)."""
    target = other(state.get("active"))
    slot = state["slots"].get(target)
    wanted = "staged" if action == "activate" else "previous"
    if not slot or slot.get("state") != wanted:
        what = f"the {target} slot is {slot.get('state')} (release {slot.get('release')})" if slot else f"the {target} slot is empty"
        hint = "deploy first" if action == "activate" else "there is no previous slot to go back to"
        raise DjaployError(f"[{ctx.target.name}] {action} refused: {what}; {hint}")
    return slot


def check_switch(ctx: HostContext, command: str, to: str | None = None) -> None:
    """Raise before any host of a fleet switches when this one cannot (rollback, activate)."""
    if command == "rollback" and to:
        raise DjaployError(f"[{ctx.target.name}] bluegreen rolls back to the previous slot; --to is for zero_downtime")
    _slot_to_switch_to(ctx, command, state_of(ctx, NAME))


def activate(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> str:
    return switch(ctx, modules, audit, "activate")


def rollback(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], to: str | None = None) -> str:
    if to:
        raise DjaployError(f"[{ctx.target.name}] bluegreen rolls back to the previous slot; --to is for zero_downtime")
    return switch(ctx, modules, audit, "rollback")
