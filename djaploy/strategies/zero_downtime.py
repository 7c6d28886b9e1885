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

from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.modules.base import BaseModule
from djaploy.layout import VENV_LINK_NAME
from djaploy.state import state_of, write_state
from djaploy.strategies import handover
from djaploy.strategies.common import UndoOnFailure, clean_up, release_info, run_hooks, timed, upload_and_extract

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


def _start_handover(ctx: HostContext, release_dir: str) -> None:
    """The health gate: `release_dir` answers in the handover gunicorn, ready to take traffic."""
    assert ctx.service
    ctx.code_dir = release_dir
    handover.start(ctx, handover.handover_service(ctx.service), project_dir=ctx.project_dir, env_file=ctx.env_file,
                   venv=f"{release_dir}/{VENV_LINK_NAME}")


def _restore(ctx: HostContext, release: str | None, step: str, remove: str | None = None) -> None:
    """One round trip: `release` back on the service, traffic back to it, no handover (and `remove` gone)."""
    assert ctx.service
    previous = ctx.paths.release_dir(release) if release else None
    command = handover.restore_command(ctx, ctx.service, handover.handover_service(ctx.service), previous)
    removal = f" && rm -rf {shell.q(ctx.paths.release_dir(remove))}" if remove else ""
    ctx.plan.run(step, command + removal)


def deploy(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], activate: bool = False) -> str:
    assert ctx.release
    paths = ctx.paths
    ctx.service = paths.service_for(NAME)
    state = state_of(ctx, NAME)
    on_disk = _existing_releases(ctx)
    name = _unique_name(ctx.release.name, set(on_disk) | set(state["releases"]))
    audit["release"] = name
    release_dir = paths.release_dir(name)
    previous = state.get("current") if state.get("current") in on_disk else None

    helper = handover.handover_service(ctx.service)

    def remove_release() -> None:
        if not ctx.plan.dry_run:
            ctx.plan.run(f"remove release {name}", f"{handover.stop_command(helper)}; rm -rf {shell.q(release_dir)}")

    with UndoOnFailure(f"remove release {name}", remove_release):
        upload_and_extract(ctx, release_dir)
        ctx.code_dir = release_dir
        run_hooks(ctx, modules, "prepare_data", "prepare_release")
        _start_handover(ctx, release_dir)
    if ctx.plan.dry_run:
        return f"release {name} would go live"

    def put_previous_back() -> None:
        _restore(ctx, previous, f"restore release {previous}" if previous else "route traffic back", remove=name)

    with UndoOnFailure(f"restore release {previous}" if previous else f"remove release {name}", put_previous_back):
        with timed(ctx, "switch"):
            ctx.plan.run("switch current",  # and the traffic to the handover, already warm
                         handover.take_traffic_command(ctx, ctx.service, helper, release_dir))
        run_hooks(ctx, modules, "publish")  # the service restarts onto the release: no traffic waits for it
        with timed(ctx, "switch"):
            ctx.plan.run(f"route traffic back to {ctx.service.name}, stop {helper.service}",
                         handover.hand_back_command(ctx, ctx.service, helper))
        run_hooks(ctx, modules, "route_traffic", "verify")

    info = release_info(ctx)
    info["release"] = name
    state["releases"][name] = info
    state["order"] = [n for n in state["order"] if n != name] + [name]
    state["current"] = name
    _prune(ctx, state, [*on_disk, name])
    write_state(ctx, state)
    return f"release {name} is live" + (f" (rollback target: {rollback_target(state)})" if rollback_target(state) else "")


def _prune(ctx: HostContext, state: dict[str, Any], on_disk: list[str]) -> None:
    doomed = releases_to_prune(state, ctx.target.keep_releases, on_disk)
    for name in doomed:
        state["releases"].pop(name, None)
    state["order"] = [n for n in state["order"] if n in state["releases"]]
    clean_up(ctx, NAME, [ctx.paths.release_dir(name) for name in doomed])


def rollback(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any], to: str | None = None) -> str:
    paths = ctx.paths
    ctx.service = paths.service_for(NAME)
    state = state_of(ctx, NAME)
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
    audit.update(release=target, rolled_back_from=current, commit=state["releases"][target].get("commit"))
    if ctx.plan.dry_run:
        return f"would roll back from {current} to {target}"
    helper = handover.handover_service(ctx.service)
    with UndoOnFailure(f"restore release {current}", lambda: _restore(ctx, current, f"restore release {current}")):
        _start_handover(ctx, paths.release_dir(target))
        with timed(ctx, "switch"):  # one round trip: to the handover, restart onto the target, back
            ctx.plan.run(
                f"switch to {target} through {helper.service}",
                f"{handover.route_to(ctx, helper.socket_path)} && "
                f"{handover.restart_command(ctx, ctx.service, paths.release_dir(target))} && "
                f"{handover.hand_back_command(ctx, ctx.service, helper)}",
            )
        run_hooks(ctx, modules, "verify")
    state["releases"][current]["rolled_back"] = True
    state["current"] = target
    write_state(ctx, state)
    return f"rolled back from {current} to {target}"


def activate(ctx: HostContext, modules: list[BaseModule], audit: dict[str, Any]) -> str:
    raise DjaployError(f"[{ctx.target.name}] activate is for deployment_strategy='bluegreen'; zero_downtime deploys go live when they pass their health check")


__all__ = ["activate", "deploy", "releases_to_prune", "rollback", "rollback_target"]
