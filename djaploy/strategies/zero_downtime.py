"""zero_downtime: immutable releases, an atomic `current` link, a graceful restart.

    releases/<release>/   extracted once, never changed
    current -> releases/<release>

A new release is installed and migrated beside the live one, then proves itself in its own
gunicorn, the handover (health check with the host's domain), before anything points at it.
Only then is `current` swapped (temporary link + rename) and the live link moved to the
handover, which is already warm; the socket-activated service restarts onto the release with
no traffic on it, takes the traffic back and the handover stops gracefully (see handover.py):
no request waits for a gunicorn to boot. A rollback hands over the same way. If anything fails
before the swap, the old release never stopped serving; if the new release fails after it,
`current` goes back and the old release is restarted. A failed release is removed, so it is
never a rollback target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.layout import VENV_LINK_NAME, AppService
from djaploy.modules.base import BaseModule
from djaploy.state import state_of, write_state
from djaploy.strategies import handover
from djaploy.strategies.common import (
    UndoOnFailure,
    clean_up,
    release_info,
    route_traffic,
    run_hooks,
    timed,
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


def _serves_web(ctx: HostContext) -> bool:
    """A worker host runs no gunicorn: no handover, only `current` moves (its workers restart later)."""
    return "web" in ctx.target.roles


def _start_handover(ctx: HostContext, helper: AppService, release_dir: str) -> None:
    """The health gate: `release_dir` answers in the handover gunicorn `helper`, ready to take traffic."""
    assert ctx.service
    ctx.code_dir = release_dir
    handover.start(ctx, helper, service=ctx.service, project_dir=ctx.project_dir, env_file=ctx.env_file,
                   venv=f"{release_dir}/{VENV_LINK_NAME}")


def _restore(ctx: HostContext, release: str | None, step: str, remove: str | None = None) -> None:
    """One round trip: `release` back on the service, traffic back to it, no handover (and `remove` gone)."""
    assert ctx.service
    previous = ctx.paths.release_dir(release) if release else None
    if _serves_web(ctx):
        commands = [handover.restore_command(ctx, ctx.service, previous)]
    else:
        commands = [shell.switch_symlink(ctx.paths.current, previous)] if previous else []
    if remove:
        commands.append(f"rm -rf {shell.q(ctx.paths.release_dir(remove))}")
    if commands:
        ctx.plan.run(step, " && ".join(commands))


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
    """Remove a staged release that will not go live (its host or another failed before switching),
    and its handover if it started."""
    if ctx.plan.dry_run:
        return
    assert ctx.service
    removal = f"rm -rf {shell.q(ctx.paths.release_dir(staged.name))}"
    stop = f"{handover.stop_all_command(ctx.service)}; " if _serves_web(ctx) else ""
    ctx.plan.run(f"remove release {staged.name}", stop + removal)


def go_live(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], staged: Staged,
            activate: bool = False) -> str:
    """Prove the staged release in the handover gunicorn, then make it live through it (no request
    waits for the service's restart); a failure puts the previous one back."""
    assert ctx.service
    paths, name, previous, state = ctx.paths, staged.name, staged.previous, staged.state
    release_dir = paths.release_dir(name)
    web, helper = _serves_web(ctx), handover.handover_service(ctx.service)
    if web:
        with UndoOnFailure(f"remove release {name}", lambda: discard(ctx, staged)):
            _start_handover(ctx, helper, release_dir)
    if ctx.plan.dry_run:
        return f"release {name} would go live"

    def put_previous_back() -> None:
        _restore(ctx, previous, f"restore release {previous}" if previous else "route traffic back", remove=name)

    with UndoOnFailure(f"restore release {previous}" if previous else f"remove release {name}", put_previous_back):
        with timed(ctx, "switch"):
            ctx.plan.run("switch current",  # and the traffic to the handover, already warm
                         handover.take_traffic_command(ctx, ctx.service, helper, release_dir) if web
                         else shell.switch_symlink(paths.current, release_dir))
        run_hooks(ctx, modules, "publish")  # the service restarts onto the release: no traffic waits for it
        if web:
            with timed(ctx, "switch"):
                ctx.plan.run(f"route traffic back to {ctx.service.name}, stop {handover.label(ctx.service)}",
                             handover.hand_back_command(ctx, ctx.service, helper))
            run_hooks(ctx, modules, "route_traffic")
        else:
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
    target_dir = paths.release_dir(target)
    ctx.code_dir = target_dir
    helper = handover.handover_service(ctx.service)
    with UndoOnFailure(f"restore release {current}", lambda: _restore(ctx, current, f"restore release {current}")):
        if _serves_web(ctx):
            _start_handover(ctx, helper, target_dir)
            with timed(ctx, "switch"):  # one round trip: to the handover, restart onto the target, back
                ctx.plan.run(
                    f"switch to {target} through {handover.label(ctx.service)}",
                    f"{handover.route_to(ctx, helper.socket_path)} && "
                    f"{handover.restart_command(ctx, ctx.service, target_dir)} && "
                    f"{handover.hand_back_command(ctx, ctx.service, helper)}",
                )
        else:
            ctx.plan.run(f"switch current to {target}", shell.switch_symlink(paths.current, target_dir))
        run_hooks(ctx, modules, "verify")
    state["releases"][current]["rolled_back"] = True
    state["current"] = target
    write_state(ctx, state)
    return f"rolled back from {current} to {target}"


def activate(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> str:
    raise DjaployError(f"[{ctx.target.name}] activate is for deployment_strategy='bluegreen'; zero_downtime deploys go live when they pass their health check")


__all__ = ["Staged", "activate", "check_switch", "deploy", "discard", "go_live", "releases_to_prune", "rollback", "rollback_target", "stage"]
