"""Rolling switches: the web hosts switch in batches while the load balancer keeps traffic off them.

Every host still runs in its own greenlet (session.run_on_hosts); a `Rollout` coordinates them. A
coordinator greenlet sends each participant orders and waits for its reply; the participants do
the work with their own plan: lb hosts drain, re-admit and wait (djaploy.modules.haproxy.drain), web
hosts run the `switch` (or `revert`) they were given. Per batch: drain it at every LB and wait until
no request is in flight, switch it, re-admit the hosts that can serve, wait until the LB's own check
says UP, next batch. The first batch is the canary: the first batch that fails stops the rollout,
the later batches are not switched, and (unless revert=False) the hosts already switched go back,
batch by batch, drained the same way. A batch holding every web host is switched without draining
(nothing would serve meanwhile); the strategy's own switch and the LB's retries carry it.

Without an lb host and without a batch size nothing is coordinated: every host switches at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from djaploy import shell
from djaploy.batches import split_batches
from djaploy.errors import DjaployError
from djaploy.fleet import APP_ROLES, with_role

if TYPE_CHECKING:
    from djaploy.config import Target
    from djaploy.context import HostContext

HAPROXY_MODULE = "djaploy.modules.haproxy"
GONE = "gone"  # a participant's last reply: it stopped (failed or interrupted)


@dataclass(frozen=True)
class Reply:
    ok: bool
    can_serve: bool = True  # after a failure: the host still answers its health check
    error: str = ""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Rollout:
    """One deploy's (or rollback's) batches over the web hosts, and the load balancers draining them."""

    def __init__(self, targets: Sequence[Target], batch_size: int | str | None = None, *, revert: bool = True) -> None:
        self.lbs = [t.name for t in with_role(targets, "lb") if HAPROXY_MODULE in t.modules]
        self.web = [t.name for t in with_role(targets, "web")]
        size = batch_size if batch_size is not None else (1 if self.lbs else None)
        self.batches = split_batches(self.web, size)
        self.revert = revert
        self.notes: list[str] = []  # for the run's summary
        self._orders: dict[str, Any] = {}
        self._replies: dict[str, Any] = {}
        self._gone: set[str] = set()  # participants that stopped
        self._unservable: set[str] = set()  # web hosts kept out of rotation: they cannot serve
        self._coordinator: Any = None

    @property
    def active(self) -> bool:
        """Whether switching is coordinated at all (else every host switches at once, as before)."""
        return bool(self.lbs) or len(self.batches) > 1

    def describe(self) -> str:
        sizes = "+".join(str(len(batch)) for batch in self.batches)
        through = f" through the load balancer ({', '.join(self.lbs)})" if self.lbs else ""
        return f"rolling: {len(self.web)} web host(s) in {len(self.batches)} batch(es) ({sizes}){through}"

    # --- participants (each in its own host's greenlet) -----------------------------------------

    def web_host(self, ctx: HostContext, switch: Callable[[], str], revert: Callable[[], str] | None = None) -> str:
        """Wait for this host's turn, run `switch`, and (when a later batch fails) `revert`."""
        name = ctx.target.name
        if not self.active or name not in self.web:
            return switch()
        message = ""
        with self._participating(name):
            while True:
                order = self._next_order(name)
                if order[0] == "done":
                    return message
                if order[0] == "skip":
                    raise DjaployError(f"[{name}] not switched: {order[1]}")
                if order[0] == "revert":
                    message = self._revert_host(ctx, revert, message)
                    continue
                try:
                    message = switch()
                except Exception as error:
                    self._reply(name, Reply(False, _can_serve(ctx), _first_line(error)))
                    raise
                self._reply(name, Reply(True))

    def _revert_host(self, ctx: HostContext, revert: Callable[[], str] | None, message: str) -> str:
        """Back to the previous release; a host that cannot go back (in_place keeps none) still
        serves the new one, which passed its checks: it says so instead of failing."""
        name = ctx.target.name
        try:
            if revert is None:
                raise DjaployError(f"[{name}] cannot go back to the previous release")
            reverted = revert()
        except Exception as error:
            self._reply(name, Reply(False, _can_serve(ctx), _first_line(error)))
            return f"{message}; not reverted: {_first_line(error)}"
        self._reply(name, Reply(True))
        return f"reverted: {reverted}"

    def runs_no_app(self, ctx: HostContext) -> bool:
        """An lb host without an app role gets no release: it drains, re-admits, follows the inventory."""
        return ctx.target.name in self.lbs and not set(ctx.target.roles) & set(APP_ROLES)

    def load_balancer(self, ctx: HostContext) -> str:
        """An lb host's part of a deploy: the batches, then the backend rewritten for the web hosts
        that serve now (hosts added to the inventory join it, removed ones leave it)."""
        from djaploy.modules.haproxy import sync_backend

        self.lb_host(ctx)
        return f"load balancer: {sync_backend(ctx).describe()}"

    def lb_host(self, ctx: HostContext) -> None:
        """Drain and re-admit the web hosts at this LB when the coordinator says so."""
        from djaploy.modules.haproxy import drain

        name = ctx.target.name
        if not self.active or name not in self.lbs:
            return
        with self._participating(name):
            while True:
                kind, admit, keep_out = self._next_order(name)
                if kind == "done":
                    return
                try:
                    admit = drain.members(ctx, admit)
                    if kind == "out":
                        drain.drain(ctx, admit)
                        drain.wait_idle(ctx, admit)
                    else:
                        drain.maint(ctx, drain.members(ctx, keep_out))
                        drain.ready(ctx, admit)
                        drain.wait_up(ctx, admit)
                except Exception as error:
                    self._reply(name, Reply(False, error=_first_line(error)))
                    raise
                self._reply(name, Reply(True))

    # --- the coordinator ------------------------------------------------------------------------

    def _start(self) -> None:
        import gevent
        from gevent.queue import Queue

        if self._coordinator is None:
            for name in [*self.web, *self.lbs]:
                self._orders[name], self._replies[name] = Queue(), Queue()
            self._coordinator = gevent.spawn(self._coordinate)

    def _coordinate(self) -> None:
        pending = list(self.web)  # not given their last order yet
        try:
            switched: list[list[str]] = []
            for number, batch in enumerate(self.batches, start=1):
                everyone = len(batch) == len(self.web)
                hosts = [name for name in batch if name not in self._gone]
                if not (everyone or self._at_lbs("out", hosts)):
                    why = f"the load balancer failed draining batch {number}"
                    self.notes.append(f"rolling: {why}; no more hosts switched")
                    later = [name for later_batch in self.batches[number - 1:] for name in later_batch]
                    for name in later:
                        self._order(name, ("skip", why))
                    pending = [name for name in pending if name not in later]
                    break
                replies = self._ask(hosts, ("switch",))
                ok = [name for name in hosts if replies[name].ok]
                serving = [name for name in hosts if replies[name].can_serve]
                self._unservable.update(name for name in hosts if name not in serving)
                lb_ok = everyone or self._at_lbs("in", serving, [n for n in hosts if n not in serving])
                switched.append(ok)
                pending = [name for name in pending if name not in hosts or name in ok]
                if len(ok) == len(hosts) and lb_ok:
                    continue
                failed = [name for name in hosts if name not in ok]
                why = (f"batch {number} ({', '.join(failed)}) failed" if failed
                       else f"the load balancer failed re-admitting batch {number}")
                self.notes.append(f"rolling: {why}{' (the canary)' if number == 1 else ''}; later batches not switched")
                later = [name for later_batch in self.batches[number:] for name in later_batch]
                for name in later:
                    self._order(name, ("skip", why))
                pending = [name for name in pending if name not in later]
                if self.revert and lb_ok:
                    self._revert(switched)
                elif any(switched):
                    self.notes.append("rolling: hosts already switched keep the new release"
                                      + (" (--no-revert)" if not self.revert else " (the load balancer failed)"))
                break
        finally:
            for name in pending:
                self._order(name, ("done",))
            for name in self.lbs:
                self._order(name, ("done", [], []))

    def _revert(self, switched: list[list[str]]) -> None:
        for batch in reversed([batch for batch in switched if batch]):
            hosts = [name for name in batch if name not in self._gone]
            others = [name for name in self.web if name not in batch and name not in self._gone | self._unservable]
            if not others:
                self.notes.append(f"rolling: {', '.join(hosts)} not reverted: no other web host could serve meanwhile")
                continue
            if not self._at_lbs("out", hosts):
                self.notes.append("rolling: the load balancer failed; the rest keep the new release")
                return
            replies = self._ask(hosts, ("revert",))
            serving = [name for name in hosts if replies[name].can_serve]
            self._unservable.update(name for name in hosts if name not in serving)
            self._at_lbs("in", serving, [name for name in hosts if name not in serving])
            kept = [name for name in hosts if not replies[name].ok]
            self.notes.append(f"rolling: reverted {', '.join(n for n in hosts if n not in kept) or 'none'}"
                              + (f"; {', '.join(kept)} could not go back" if kept else ""))

    def _at_lbs(self, kind: str, admit: list[str], keep_out: Sequence[str] = ()) -> bool:
        """Every LB drains (out) or re-admits (in) the hosts; False when one failed."""
        if not admit and not keep_out:
            return True
        lbs = [name for name in self.lbs if name not in self._gone]
        replies = self._ask(lbs, (kind, admit, list(keep_out)))
        return len(lbs) == len(self.lbs) and all(reply.ok for reply in replies.values())

    def _ask(self, names: Sequence[str], order: tuple[Any, ...]) -> dict[str, Reply]:
        for name in names:
            self._order(name, order)
        return {name: self._wait_reply(name) for name in names}

    def _order(self, name: str, order: tuple[Any, ...]) -> None:
        if name not in self._gone:
            self._orders[name].put(order)

    def _wait_reply(self, name: str) -> Reply:
        reply = self._replies[name].get()
        if reply == GONE:
            self._gone.add(name)
            return Reply(False, False, "stopped")
        return reply

    # --- participant plumbing -------------------------------------------------------------------

    def _participating(self, name: str) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def scope() -> Any:
            self._start()
            try:
                yield
            finally:  # failed, interrupted or done: the coordinator must never wait for it again
                self._replies[name].put(GONE)

        return scope()

    def _next_order(self, name: str) -> tuple[Any, ...]:
        order: tuple[Any, ...] = self._orders[name].get()
        return order

    def _reply(self, name: str, reply: Reply) -> None:
        self._replies[name].put(reply)


def _can_serve(ctx: HostContext) -> bool:
    """After a failed switch: whether the host still answers its health check through its web
    server (it goes back into rotation) or not (it stays out)."""
    try:
        return ctx.plan.query(shell.http_check(ctx.health_host, ctx.target.health_check_path, attempts=2)).ok
    except Exception:  # noqa: BLE001 - the connection may be gone: then it cannot serve
        return False


__all__ = ["Reply", "Rollout"]
