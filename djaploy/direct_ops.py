"""pyinfra operations a module hook calls itself (``apt.packages(...)``, as djaploy 1.x modules do).

Part of the engine: with engine.py, the only code that imports pyinfra (lazily). pyinfra's
operation functions find their state and host through ``pyinfra.context``; the engine pins the
state, but outside ``add_op`` no host is set, so such a call would fail. `DirectOperations`,
entered around every hook call (``PyinfraPlan.direct_operations``), points that context at the
hook's host (per greenlet, so hosts never mix) with sudo as the plan uses it. In a real run the
operation then executes at once on that host (the engine's execution stage), in order with the
plan's steps; in a dry run it is only planned. Each one is reported like a plan step (progress
line, run log); a failure becomes a RemoteError naming it and quoting its output.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from djaploy.errors import RemoteError
from djaploy.output import StepRecord


class DirectOperations:
    """While a hook runs: its direct operation calls target its host and are reported in order."""

    def __init__(self, plan: Any, label: str) -> None:
        """`plan` is the engine's PyinfraPlan for the host (not imported: the engine imports this)."""
        self.plan = plan
        self.label = label
        self.state = plan.engine.state
        self.host = plan.host
        self.seen = set(self.state.ops[self.host])  # operations from before the hook are not its own
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self._saved: tuple[Any, Any] = (None, None)

    def __enter__(self) -> DirectOperations:
        from pyinfra.context import ctx_host

        self._saved = (ctx_host.get(), self.host.current_deploy_kwargs)
        ctx_host.set(self.host)
        if self.plan.sudo:
            self.host.current_deploy_kwargs = {**(self._saved[1] or {}), "_sudo": True}
        self.plan.engine.direct[self.host.name] = self
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> bool:
        from pyinfra.api.exceptions import NestedOperationError
        from pyinfra.context import ctx_host

        failed = error.args[0] if isinstance(error, NestedOperationError) and error.args else None
        try:
            self.report(failed)
            if failed is not None:
                raise RemoteError(self.plan.target.name, self.step(failed), self.plan.failed_output(failed)) from None
        finally:
            self.plan.engine.direct.pop(self.host.name, None)
            ctx_host.set(self._saved[0])
            self.host.current_deploy_kwargs = self._saved[1]
        return False

    def step(self, op_hash: str) -> str:
        names = sorted(self.state.get_op_meta(op_hash).names)
        return f"{self.label}: {', '.join(names) or 'pyinfra operation'}"

    def report(self, failed: str | None = None) -> None:
        """A progress line for every direct operation done since the last report, in call order."""
        for op_hash, data in list(self.state.ops[self.host].items()):
            if op_hash in self.seen or op_hash in self.plan.own_operations:
                continue
            meta = data.operation_meta
            if self.state.is_executing and not meta.is_complete() and op_hash != failed:
                return  # still running: it and the ones after it are reported later
            self.seen.add(op_hash)
            ok = op_hash != failed and (not meta.is_complete() or meta.did_succeed(False))
            changed = bool(meta.did_change()) if self.state.is_executing and ok else bool(meta.will_change)
            start = self.started.get(op_hash, time.monotonic())
            record = StepRecord(self.plan.target.name, self.step(op_hash), changed,
                                self.finished.get(op_hash, time.monotonic()) - start, ok)
            self.plan.engine.reporter.step(record, self.plan.dry_run)
            if ok and self.state.is_executing:
                self.plan.log_output(record.step, meta)


def progress_handler(direct: dict[str, DirectOperations]) -> Any:
    """A pyinfra state callback: timing for direct operations, and a report as the next one starts."""
    from pyinfra.api.state import BaseStateCallback

    class Progress(BaseStateCallback):
        def operation_host_start(self, state: Any, host: Any, op_hash: str) -> None:
            scope = direct.get(host.name)
            if scope is not None:
                scope.report()
                scope.started[op_hash] = time.monotonic()

        def operation_host_success(self, state: Any, host: Any, op_hash: str, retry_count: int = 0) -> None:
            if (scope := direct.get(host.name)) is not None:
                scope.finished[op_hash] = time.monotonic()

        def operation_host_error(self, state: Any, host: Any, op_hash: str, *args: Any) -> None:
            self.operation_host_success(state, host, op_hash)

    return Progress()
