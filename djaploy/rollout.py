"""A deploy, rollback or activate over a whole environment, in phases (djaploy.rollout_plan).

Every phase runs on its hosts in parallel and ends before the next begins, so: every app host's
lock is taken before any host changes; a failure while staging or migrating on any host discards
the staged release everywhere before any host switches (each keeps serving its previous release);
after the go-live phase began, each host's line says what it serves. `go_live` switches a given
list of hosts, so a rollout in batches (through a load balancer) can call it per batch.
The phases take a `Parallel` (djaploy.locks), so they run on recording plans in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from djaploy.rollout_plan import RolloutPlan
from djaploy.strategies import STRATEGIES
from djaploy.strategies.common import audit_fields, timed
from djaploy.workers import update_workers

__all__ = ["HostRun", "Outcome", "Stopped", "deploy_phases", "go_live", "switch_phases"]


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


def deploy_phases(runs: dict[str, HostRun], plan: RolloutPlan, parallel: Parallel, *, activate: bool = False,
                  force_unlock: bool = False, on_live: Callable[[HostContext], None] = lambda ctx: None) -> Outcome:
    """lock, stage, migrate once, go live, workers (djaploy.rollout_plan)."""
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
        live = go_live(runs, names, parallel, outcome, activate=activate, on_live=on_live)
        restart_workers(runs, live, plan, parallel, outcome)

    outcome = _locked_phases(runs, "deploy", parallel, force_unlock, phases)
    outcome.messages.update({name: run.message for name, run in runs.items() if run.message})
    return outcome


def switch_phases(runs: dict[str, HostRun], plan: RolloutPlan, parallel: Parallel, command: str, *,
                  to: str | None = None, force_unlock: bool = False,
                  on_live: Callable[[HostContext], None] = lambda ctx: None) -> Outcome:
    """rollback or activate every app host under the environment's lock, then restart the workers.
    In a fleet, every host first checks it can (a release or slot to go to), so none switches unless all can."""
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
        errors = parallel(names, one)
        outcome.errors.update(errors)
        restart_workers(runs, [name for name in names if name not in errors], plan, parallel, outcome)

    outcome = _locked_phases(runs, command, parallel, force_unlock, phases)
    outcome.messages.update({name: run.message for name, run in runs.items() if run.message})
    return outcome
