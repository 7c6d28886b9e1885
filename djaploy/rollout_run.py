"""The rollout's phases (djaploy.rollout) over one SSH session to the app hosts, collected in a RunResult.

Hosts with only db or lb roles get no release; of them, only the lb hosts running HAProxy are
connected to (they drain the web hosts of a rolling switch, djaploy.rolling). A failed host's line
says what it still serves, read back from the host before the session closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from djaploy.context import HostContext
from djaploy.engine import Engine
from djaploy.locks import Parallel
from djaploy.rollout import HostRun, Outcome, Stopped
from djaploy.rollout_plan import RolloutPlan
from djaploy.session import RunResult, Session, raise_if_failed, site_urls
from djaploy.state import read_state, serving_from_state

__all__ = ["run_rollout"]


def engine_parallel(engine: Engine) -> Parallel:
    """Parallel over the engine's hosts: one greenlet per named host (the others return at once)."""
    def parallel(names: Sequence[str], work: Callable[[str], object]) -> dict[str, BaseException]:
        wanted = set(names)
        if not wanted:
            return {}
        outcomes = engine.run_per_host(lambda target, plan: work(target.name) if target.name in wanted else None)
        return {name: error for name, error in outcomes.items() if name in wanted and error is not None}
    return parallel


Phases = Callable[[dict[str, HostRun], dict[str, HostContext], Parallel], Outcome]


def run_rollout(session: Session, result: RunResult, plan: RolloutPlan, phases: Phases, **context: Any) -> RunResult:
    """Connect to the app hosts (and lb hosts), run `phases(runs, balancers, parallel)`, and record
    per host what happened."""
    started = time.monotonic()
    reporter = session.reporter
    connected = set(plan.app_hosts) | set(plan.load_balancers)
    targets = [target for target in session.targets if target.name in connected]
    serving: dict[str, str] = {}
    with Engine(targets, reporter, dry_run=result.dry_run) as engine:
        contexts = {target.name: HostContext(env=session.env, target=target, plan=engine.plan_for(target),
                                             config_dir=session.config_dir, fleet=tuple(session.targets),
                                             modules=tuple(session.modules[target.name]), **context)
                    for target in targets}
        runs = {name: HostRun(contexts[name], session.modules[name]) for name in plan.app_hosts}
        balancers = {name: contexts[name] for name in plan.load_balancers}
        parallel = engine_parallel(engine)
        try:
            outcome = phases(runs, balancers, parallel)
        finally:
            for name, ctx in contexts.items():
                result.timings[name] = dict(ctx.timings)
            for name, run in runs.items():
                result.strategies[name] = run.ctx.target.deployment_strategy

        def read_serving(name: str) -> None:
            serving[name] = serving_from_state(read_state(runs[name].ctx))

        parallel([name for name in outcome.errors if name in runs], read_serving)
    result.seconds = time.monotonic() - started
    for target in session.targets:
        name = target.name
        result.changed[name] = len(reporter.changed_steps(name))
        if name in plan.idle_hosts:
            result.messages[name] = outcome.messages.get(name) or f"no release (roles: {', '.join(target.roles)})"
            continue
        if "web" in target.roles:
            result.urls[name] = site_urls(target)
        if name in outcome.messages:
            result.messages[name] = outcome.messages[name]
        if name in outcome.errors:
            result.serving[name] = serving.get(name, "")
    # The failures first, then the hosts they stopped: the first error is the one to announce.
    for name in sorted(outcome.errors, key=lambda name: isinstance(outcome.errors[name], Stopped)):
        result.errors[name] = outcome.errors[name]
    result.notes += outcome.notes
    raise_if_failed(result, len(session.targets), reporter)
    return result
