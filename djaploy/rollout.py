"""A deploy, rollback or activate over a whole environment, in phases (djaploy.rollout_plan).

Every phase runs on its hosts in parallel and ends before the next begins, so: every app host's
lock is taken before any host changes; a failure while staging or migrating on any host discards
the staged release everywhere before any host switches (each keeps serving its previous release);
after the go-live phase began, each host's line says what it serves. With an lb host or a batch
size the go-live (and a rollback's or activate's switch) runs batch by batch over the web hosts
(djaploy.rolling calls `go_live` per batch), then on the other app hosts; the lb hosts' backends
follow the inventory at the end. The phases take a `Parallel` (djaploy.locks), so they run on
recording plans in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.locks import (
    EnvironmentLocked,
    Held,
    Parallel,
    lock_environment,
    release_environment,
)
from djaploy.modules.base import BaseModule
from djaploy.rolling import can_serve, follow_inventory, roll
from djaploy.rollout_plan import RolloutPlan
from djaploy.strategies import STRATEGIES
from djaploy.strategies.common import audit_fields, timed
from djaploy.workers import update_workers

__all__ = ["HostRun", "Outcome", "Stopped", "deploy_phases", "go_live", "switch_hosts", "switch_phases"]


class Stopped(DjaployError):
    """This host was fine, but the operation stopped because another host failed."""


@dataclass
class HostRun:
    """One app host through the phases: its context, modules, audit line and staged release."""

    ctx: HostContext
    modules: list[BaseModule]
    audit: dict[str, Any] = field(default_factory=dict)
    staged: Any = None
    message: str = ""

    @property
    def strategy(self) -> Any:
        return STRATEGIES[self.ctx.target.deployment_strategy]


@dataclass
class Outcome:
    """Per host: its error (failed or stopped) and its summary line."""

    errors: dict[str, BaseException] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # about the whole run (a rolling switch's batches)


def _stopped(names: Sequence[str], errors: dict[str, BaseException], why: str) -> dict[str, BaseException]:
    """`errors`, plus a Stopped for every other host of `names` saying why it stopped too."""
    cause = ", ".join(errors)
    return {**errors, **{name: Stopped(f"[{name}] {why.format(hosts=cause)}") for name in names if name not in errors}}


def _locked_phases(runs: dict[str, HostRun], action: str, parallel: Parallel, force_unlock: bool,
                   phases: Callable[[Outcome], None]) -> Outcome:
    """Take every host's lock (all or nothing), run `phases`, then write each host's audit line and release."""
    contexts = {name: run.ctx for name, run in runs.items()}
    audits = {name: run.audit for name, run in runs.items()}
    try:
        held: dict[str, Held | None] = lock_environment(contexts, action, audits, parallel, force_unlock=force_unlock)
    except EnvironmentLocked as locked:
        why = f"{action} not started, no host changed: the deploy lock of {{hosts}} is held or could not be taken"
        return Outcome(_stopped(list(runs), locked.errors, why))
    outcome = Outcome()
    try:
        phases(outcome)
    except BaseException as error:  # an interruption: every host's audit line says so, and its lock goes
        release_environment(contexts, held, audits, {name: error for name in runs}, parallel)
        raise
    lock_errors = release_environment(contexts, held, audits, outcome.errors, parallel)
    outcome.errors.update({name: error for name, error in lock_errors.items() if name not in outcome.errors})
    return outcome


def go_live(runs: dict[str, HostRun], names: Sequence[str], parallel: Parallel, outcome: Outcome, *,
            activate: bool = False, on_live: Callable[[HostContext], None] = lambda ctx: None) -> list[str]:
    """Switch the staged release live on `names` (each host's strategy: health gate, switch, undo on
    failure); returns the hosts that went live."""
    def one(name: str) -> None:
        run = runs[name]
        run.message = run.strategy.go_live(run.ctx, run.modules, run.audit, run.staged, activate)
        on_live(run.ctx)

    errors = parallel(list(names), one)
    outcome.errors.update(errors)
    return [name for name in names if name not in errors]


def restart_workers(runs: dict[str, HostRun], names: Sequence[str], plan: RolloutPlan, parallel: Parallel,
                    outcome: Outcome) -> None:
    """Worker units onto the live release on `names`, restarted; removed workers retired."""
    def one(name: str) -> None:
        run = runs[name]
        with timed(run.ctx, "workers"):
            line = update_workers(run.ctx, plan.workers.get(name, ()))
        if line:
            run.message = f"{run.message}; {line}" if run.message else line

    outcome.errors.update(parallel(list(names), one))


def switch_hosts(runs: dict[str, HostRun], plan: RolloutPlan, balancers: Mapping[str, HostContext],
                 parallel: Parallel, outcome: Outcome, switch: Callable[[Sequence[str]], dict[str, BaseException]], *,
                 revert: Callable[[str], str] | None = None, discard: Callable[[str], None] = lambda name: None) -> list[str]:
    """Every app host's switch: all at once, or (plan.rolling) the web hosts batch by batch through the
    lb hosts and then the others; returns the hosts on the new release. A host not switched because
    a batch failed is `discard`ed and Stopped; one that went back (`revert`) is Stopped too."""
    names = list(plan.app_hosts)
    if not plan.rolling:
        outcome.errors.update(switch(names))
        return [name for name in names if name not in outcome.errors]
    rolled = roll(plan.batches, balancers, parallel, switch, serves=lambda name: can_serve(runs[name].ctx), revert=revert)
    web = {name for batch in plan.batches for name in batch}
    others = [name for name in names if name not in web]  # workers without a site: after every web batch
    live = list(rolled.live)
    if rolled.complete:
        errors = switch(others)
        outcome.errors.update(errors)
        live += [name for name in others if name not in errors]
    else:
        rolled.skipped.update({name: "not switched: the web hosts' rollout stopped" for name in others})
    outcome.errors.update(rolled.errors)
    outcome.notes += rolled.notes
    outcome.errors.update(parallel(list(rolled.skipped), discard))
    for name, why in {**rolled.skipped, **rolled.reverted}.items():
        outcome.errors.setdefault(name, Stopped(f"[{name}] {why}"))
    for name, line in rolled.messages.items():
        runs[name].message = f"{runs[name].message}; {line}"
    if not set(outcome.errors) & set(balancers):
        messages, errors = follow_inventory(balancers, parallel)
        outcome.messages.update(messages)
        outcome.errors.update(errors)
    return live


def _revert_deploy(run: HostRun, on_live: Callable[[HostContext], None]) -> str:
    """A switched host back to the release it served before this deploy (a later batch failed)."""
    staged = run.staged
    if run.ctx.target.deployment_strategy == "bluegreen" and staged.state.get("active") != staged.slot:
        return f"traffic stayed on the {staged.active} slot"  # go_live only staged it: nothing to undo
    undo: dict[str, Any] = {}
    message = str(run.strategy.rollback(run.ctx, run.modules, undo, None))
    run.audit["reverted_to"] = undo.get("release") or undo.get("slot")
    on_live(run.ctx)
    return message


def deploy_phases(runs: dict[str, HostRun], plan: RolloutPlan, parallel: Parallel, *, activate: bool = False,
                  force_unlock: bool = False, on_live: Callable[[HostContext], None] = lambda ctx: None,
                  balancers: Mapping[str, HostContext] | None = None, revert: bool = True) -> Outcome:
    """lock, stage, migrate once, go live (in batches through `balancers` when rolling), workers
    (djaploy.rollout_plan). `revert=False` leaves switched hosts on the new release when a later batch fails."""
    names = list(plan.app_hosts)
    for run in runs.values():
        run.ctx.runs_migrations = not plan.migrate_once
        run.audit.update(audit_fields(run.ctx))

    def stage(name: str) -> None:
        run = runs[name]
        run.staged = run.strategy.stage(run.ctx, run.modules, run.audit)

    def migrate(name: str) -> None:
        ctx = runs[name].ctx
        with timed(ctx, "migrate once"):
            ctx.manage(f"migrate once for the environment (primary {name})", "migrate", "--noinput")

    def phases(outcome: Outcome) -> None:
        errors = parallel(names, stage)
        if not errors and plan.migrate_once:
            errors = parallel([plan.primary], migrate)
        if errors:
            staged = [name for name in names if runs[name].staged is not None]  # a failed stage undid itself
            errors.update(parallel(staged, lambda name: runs[name].strategy.discard(runs[name].ctx, runs[name].staged)))
            why = ("deploy stopped before any host switched ({hosts} failed): the staged release was removed; "
                   "this host still serves its previous release")
            outcome.errors.update(_stopped(names, errors, why))
            return
        def switch(batch: Sequence[str]) -> dict[str, BaseException]:
            switched = Outcome()
            go_live(runs, batch, parallel, switched, activate=activate, on_live=on_live)
            return switched.errors

        def discard(name: str) -> None:
            runs[name].strategy.discard(runs[name].ctx, runs[name].staged)

        live = switch_hosts(runs, plan, balancers or {}, parallel, outcome, switch, discard=discard,
                            revert=(lambda name: _revert_deploy(runs[name], on_live)) if revert else None)
        restart_workers(runs, live, plan, parallel, outcome)

    outcome = _locked_phases(runs, "deploy", parallel, force_unlock, phases)
    outcome.messages.update({name: run.message for name, run in runs.items() if run.message})
    return outcome


def switch_phases(runs: dict[str, HostRun], plan: RolloutPlan, parallel: Parallel, command: str, *,
                  to: str | None = None, force_unlock: bool = False,
                  on_live: Callable[[HostContext], None] = lambda ctx: None,
                  balancers: Mapping[str, HostContext] | None = None) -> Outcome:
    """rollback or activate every app host under the environment's lock (in batches through `balancers`
    when rolling, without reverts), then restart the workers. In a fleet, every host first checks it
    can (a release or slot to go to), so none switches unless all can."""
    names = list(plan.app_hosts)

    def one(name: str) -> None:
        run = runs[name]
        if command == "rollback":
            run.message = run.strategy.rollback(run.ctx, run.modules, run.audit, to)
        else:
            run.message = run.strategy.activate(run.ctx, run.modules, run.audit)
        on_live(run.ctx)

    def check(name: str) -> None:
        runs[name].strategy.check_switch(runs[name].ctx, command, to)

    def phases(outcome: Outcome) -> None:
        if len(names) > 1 and not runs[names[0]].ctx.plan.dry_run:  # every host can, or none switches
            errors = parallel(names, check)
            if errors:
                outcome.errors.update(_stopped(names, errors, f"{command} not started, no host changed: {{hosts}} cannot"))
                return
        live = switch_hosts(runs, plan, balancers or {}, parallel, outcome, lambda batch: parallel(list(batch), one))
        restart_workers(runs, live, plan, parallel, outcome)

    outcome = _locked_phases(runs, command, parallel, force_unlock, phases)
    outcome.messages.update({name: run.message for name, run in runs.items() if run.message})
    return outcome
