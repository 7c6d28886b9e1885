"""Rolling go-live: the web hosts switch batch by batch while the load balancer keeps traffic off them.

Staging and the migration already ran on every host at once (djaploy.rollout); only the switch is
batched. Per batch: drain it at every lb host and wait until no request is in flight, switch it
(each host's own strategy and health gate, in parallel), re-admit the hosts that serve and keep
out those that do not, wait until HAProxy's own check says UP, next batch. The first batch is the
canary: the first batch that fails stops the rollout, the later batches are not switched, and
(with a `revert`) the hosts already switched go back, batch by batch, drained the same way. A
batch holding every web host is switched without draining (nothing would serve meanwhile); the
strategy's own switch and the LB's retries carry it. Without lb hosts the batches just follow
each other. The drain primitives are djaploy.modules.haproxy.drain's; this file only orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from djaploy import shell
from djaploy.context import HostContext
from djaploy.locks import Parallel
from djaploy.modules.haproxy import drain, sync_backend

__all__ = ["Rolled", "can_serve", "describe", "follow_inventory", "roll"]

#: switch the named hosts in parallel; each failed host's error by name
Switch = Callable[[Sequence[str]], dict[str, BaseException]]


@dataclass
class Rolled:
    """What a rolling switch did, per host."""

    live: list[str] = field(default_factory=list)  # web hosts that switched and stayed switched
    errors: dict[str, BaseException] = field(default_factory=dict)  # failed: a switch, an lb host's step
    skipped: dict[str, str] = field(default_factory=dict)  # later batches, not switched: why
    reverted: dict[str, str] = field(default_factory=dict)  # switched, then back to the previous release: why
    messages: dict[str, str] = field(default_factory=dict)  # a line to add to a host's own (could not go back)
    notes: list[str] = field(default_factory=list)  # for the run's summary

    @property
    def complete(self) -> bool:
        return not self.errors and not self.skipped and not self.reverted


def describe(batches: Sequence[Sequence[str]], balancers: Sequence[str]) -> str:
    sizes = "+".join(str(len(batch)) for batch in batches)
    hosts = sum(len(batch) for batch in batches)
    through = f" through the load balancer ({', '.join(balancers)})" if balancers else ""
    return f"rolling: {hosts} web host(s) in {len(batches)} batch(es) ({sizes}){through}"


def can_serve(ctx: HostContext) -> bool:
    """After a failed switch: whether the host still answers its health check through its web server
    (it goes back into rotation) or not (it stays out)."""
    try:
        return ctx.plan.query(shell.http_check(ctx.health_host, ctx.target.health_check_path, attempts=2)).ok
    except Exception:  # noqa: BLE001 - the connection may be gone: then it cannot serve
        return False


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@dataclass
class _Balancers:
    """The lb hosts, asked in parallel; the first failure stops every later step at them."""

    contexts: Mapping[str, HostContext]
    parallel: Parallel
    rolled: Rolled

    def drain(self, names: Sequence[str]) -> bool:
        def one(lb: str) -> None:
            ctx = self.contexts[lb]
            held = drain.members(ctx, names)
            drain.drain(ctx, held)
            drain.wait_idle(ctx, held)
        return self._each(names, one)

    def admit(self, serving: Sequence[str], keep_out: Sequence[str]) -> bool:
        def one(lb: str) -> None:
            ctx = self.contexts[lb]
            drain.maint(ctx, drain.members(ctx, keep_out))
            held = drain.members(ctx, serving)
            drain.ready(ctx, held)
            drain.wait_up(ctx, held)
        return self._each([*serving, *keep_out], one)

    def _each(self, names: Sequence[str], work: Callable[[str], None]) -> bool:
        if not names or not self.contexts:
            return True
        if self.rolled.errors.keys() & self.contexts.keys():
            return False
        errors = self.parallel(list(self.contexts), work)
        self.rolled.errors.update(errors)
        return not errors


def roll(batches: Sequence[Sequence[str]], balancers: Mapping[str, HostContext], parallel: Parallel, switch: Switch,
         *, serves: Callable[[str], bool], revert: Callable[[str], str] | None = None) -> Rolled:
    """Switch `batches` in order through `balancers`; `serves(host)` says whether a failed host still
    answers; `revert(host)` (deploys) takes a switched host back when a later batch fails."""
    rolled = Rolled()
    lbs = _Balancers(balancers, parallel, rolled)
    web = [name for batch in batches for name in batch]
    unservable: set[str] = set()
    switched: list[list[str]] = []
    for number, batch in enumerate(batches, start=1):
        everyone = len(batch) == len(web)
        if not (everyone or lbs.drain(batch)):
            why = f"the load balancer failed draining batch {number}"
            rolled.notes.append(f"rolling: {why}; no more hosts switched")
            _stop(rolled, [name for later in batches[number - 1:] for name in later], why)
            break
        errors = switch(batch)
        rolled.errors.update(errors)
        ok = [name for name in batch if name not in errors]
        serving = ok + [name for name in errors if serves(name)]
        unservable.update(name for name in batch if name not in serving)
        lb_ok = everyone or lbs.admit(serving, [name for name in batch if name not in serving])
        switched.append(ok)
        rolled.live += ok
        if not errors and lb_ok:
            continue
        why = (f"batch {number} ({', '.join(errors)}) failed" if errors
               else f"the load balancer failed re-admitting batch {number}")
        rolled.notes.append(f"rolling: {why}{' (the canary)' if number == 1 else ''}; later batches not switched")
        _stop(rolled, [name for later in batches[number:] for name in later], why)
        if revert is not None and lb_ok:
            _revert(rolled, lbs, switched, web, unservable, revert, serves, why)
        elif any(switched):
            rolled.notes.append("rolling: hosts already switched keep the new release"
                                + (" (--no-revert)" if lb_ok else " (the load balancer failed)"))
        break
    return rolled


def _stop(rolled: Rolled, names: Sequence[str], why: str) -> None:
    rolled.skipped.update({name: f"not switched: {why}" for name in names})


def _revert(rolled: Rolled, lbs: _Balancers, switched: list[list[str]], web: list[str], unservable: set[str],
            revert: Callable[[str], str], serves: Callable[[str], bool], why: str) -> None:
    """The switched batches back to the previous release, newest first, each drained like on the way in."""
    for batch in reversed([batch for batch in switched if batch]):
        others = [name for name in web if name not in batch and name not in unservable]
        if not others:
            rolled.notes.append(f"rolling: {', '.join(batch)} not reverted: no other web host could serve meanwhile")
            continue
        if not lbs.drain(batch):
            rolled.notes.append("rolling: the load balancer failed; the rest keep the new release")
            return
        messages: dict[str, str] = {}

        def back(name: str) -> None:
            messages[name] = revert(name)

        errors = lbs.parallel(batch, back)
        serving = [name for name in batch if name not in errors or serves(name)]
        unservable.update(name for name in batch if name not in serving)
        lbs.admit(serving, [name for name in batch if name not in serving])
        for name in batch:
            if name in errors:  # it still serves the new release, which passed its checks: it says so
                rolled.messages[name] = f"not reverted: {_first_line(errors[name])}"
            else:
                rolled.live.remove(name)
                rolled.reverted[name] = f"reverted ({messages[name]}): {why}"
        kept = [name for name in batch if name in errors]
        rolled.notes.append(f"rolling: reverted {', '.join(n for n in batch if n not in kept) or 'none'}"
                            + (f"; {', '.join(kept)} could not go back" if kept else ""))


def follow_inventory(balancers: Mapping[str, HostContext], parallel: Parallel
                     ) -> tuple[dict[str, str], dict[str, BaseException]]:
    """Each lb host's backend rewritten for the web hosts that serve now (hosts added to the
    inventory join, removed ones leave); its summary line, or its error."""
    messages: dict[str, str] = {}

    def one(lb: str) -> None:
        messages[lb] = f"load balancer: {sync_backend(balancers[lb]).describe()}"

    return messages, parallel(list(balancers), one)
