"""The deploy lock: per host (a directory, mkdir is atomic) and for a whole environment.

A host's lock holds who/where/when/what; it is released on success, failure and interruption,
with the operation's audit line. A stale one (a deployer killed with -9) is reported with its
holder and broken with `unlock` or `--force-unlock`.

The environment's lock is every app host's lock, taken in parallel, all or nothing: when one
host's is held, the ones just taken are given back untouched, so a deploy or rollback never
switches some hosts while another operation holds the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError, LockHeld
from djaploy.strategies.common import deployer, utc_now

#: run `work(host)` on each named host in parallel; each failed host's error by name
Parallel = Callable[[Sequence[str], Callable[[str], object]], dict[str, BaseException]]


@dataclass
class Held:
    """A lock this command took on one host: what its audit line and release need."""

    action: str
    info: dict[str, Any]
    started: float = field(default_factory=time.monotonic)


def take_lock(ctx: HostContext, action: str, audit: Mapping[str, Any], *, force_unlock: bool = False) -> Held | None:
    """Take the host's lock (None in a dry run, which takes none); LockHeld names the holder."""
    if ctx.plan.dry_run:
        return None
    paths = ctx.paths
    info = {"action": action, "by": deployer(), "since": utc_now(), "env": ctx.env, **audit}
    if force_unlock:
        ctx.plan.run("break the deploy lock (--force-unlock)", f"rm -rf {shell.q(paths.lock_dir)}")
    result = ctx.plan.run("take the deploy lock", shell.acquire_lock(paths.lock_dir, json.dumps(info, sort_keys=True)))
    lines = result.stdout.strip().splitlines()
    if not lines or lines[0] != "acquired":
        holder = " ".join(lines[1:]) if len(lines) > 1 else result.stderr.strip()
        raise LockHeld(
            f"[{ctx.target.name}] {action} refused: the deploy lock {paths.lock_dir} is held: {holder}\n"
            f"Wait for that operation to finish. If it is dead, break the lock with "
            f"`manage.py unlock --env {ctx.env}` (or pass --force-unlock)."
        )
    return Held(action, info)


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    interrupted = isinstance(error, (KeyboardInterrupt, SystemExit)) or type(error).__name__ == "GreenletExit"
    return "interrupted" if interrupted else "failed"


def give_back(ctx: HostContext, held: Held | None, audit: dict[str, Any], error: BaseException | None) -> None:
    """Write the operation's audit line and release the host's lock, in one round trip."""
    if held is None:
        return
    outcome = outcome_of(error)
    if error is not None:
        audit["error"] = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
    line = {
        "at": utc_now(),
        "action": held.action,
        "by": held.info["by"],
        "env": ctx.env,
        "host": ctx.target.name,
        "strategy": ctx.target.deployment_strategy,
        "result": outcome,
        "seconds": round(time.monotonic() - held.started, 2),
        **audit,
    }
    paths = ctx.paths
    try:
        ctx.plan.run("write the audit line and release the deploy lock",
                     shell.release_lock(paths.lock_dir, paths.audit_log, json.dumps(line, sort_keys=True)))
    except DjaployError:
        if outcome == "ok":
            raise  # otherwise the operation's own error is the one to report


def give_back_untouched(ctx: HostContext, held: Held | None) -> None:
    """Release a lock taken for an operation that never started on this host (no audit line)."""
    if held is not None:
        ctx.plan.run("release the deploy lock (another host's is held)", f"rm -rf {shell.q(ctx.paths.lock_dir)}")


@contextmanager
def locked(ctx: HostContext, action: str, audit: dict[str, Any], *, force_unlock: bool = False) -> Iterator[None]:
    """Hold the host's deploy lock for one operation, and write its audit line at the end.
    Only this bookkeeping catches BaseException: it writes the line and re-raises."""
    held = take_lock(ctx, action, audit, force_unlock=force_unlock)
    try:
        yield
    except BaseException as error:
        give_back(ctx, held, audit, error)
        raise
    give_back(ctx, held, audit, None)


class EnvironmentLocked(DjaployError):
    """Some host's lock was held: no host's lock is kept and nothing was changed."""

    def __init__(self, errors: dict[str, BaseException]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors.values()))


def lock_environment(contexts: Mapping[str, HostContext], action: str, audits: Mapping[str, dict[str, Any]],
                     parallel: Parallel, *, force_unlock: bool = False) -> dict[str, Held | None]:
    """Every host's lock, taken in parallel, or none: when one is held (or a host fails), the
    ones taken are released again and EnvironmentLocked carries each failed host's error."""
    held: dict[str, Held | None] = {}

    def take(name: str) -> None:
        held[name] = take_lock(contexts[name], action, audits[name], force_unlock=force_unlock)

    errors = parallel(list(contexts), take)
    if errors:
        taken = [name for name in held if name not in errors]
        parallel(taken, lambda name: give_back_untouched(contexts[name], held[name]))
        raise EnvironmentLocked(errors)
    return held


def release_environment(contexts: Mapping[str, HostContext], held: Mapping[str, Held | None],
                        audits: Mapping[str, dict[str, Any]], errors: Mapping[str, BaseException],
                        parallel: Parallel) -> dict[str, BaseException]:
    """Every host's audit line and lock release, in parallel; each with its own host's error."""
    return parallel(list(held), lambda name: give_back(contexts[name], held[name], audits[name], errors.get(name)))
