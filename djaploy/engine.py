"""The one place that drives pyinfra, through its Python API.

`Engine` connects to every host of an environment over SSH, then runs one Python function per
host in parallel greenlets. That function changes its host through `PyinfraPlan` (the `Plan`
of djaploy.context), whose methods map to pyinfra operations. In a real run each operation
executes immediately (pyinfra's execution stage), so later steps see what earlier ones did;
in a dry run operations are only planned and report whether they would change anything.

pyinfra is imported lazily so `manage.py help` stays fast.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from djaploy import fast_paths
from djaploy.context import CommandResult
from djaploy.direct_ops import DirectOperations, progress_handler
from djaploy.errors import ConnectError, DjaployError, RemoteError
from djaploy.output import Reporter, StepRecord
from djaploy.private_files import is_private, put_private
from djaploy.shell import join
from djaploy.timings import timed_process

if TYPE_CHECKING:
    from djaploy.config import Target

OUTPUT_TAIL_LINES = 25


class _LogCollector(logging.Handler):
    """Keeps pyinfra's log lines so errors can quote them instead of printing them raw."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - logging must never break a deploy
            pass


def _host_data(target: Target, password: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ssh_hostname": target.ssh_host,
        "ssh_port": target.ssh_port,
        "ssh_user": target.ssh_user,
        # Unknown host keys are accepted on first use and recorded; a changed key is refused.
        "ssh_strict_host_key_checking": "accept-new",
        "ssh_connect_retries": 1,
        "ssh_connect_retry_min_delay": 1,
        "ssh_connect_retry_max_delay": 2,
    }
    if target.ssh_key:
        data["ssh_key"] = target.ssh_key
    if password:  # bootstrap's first root login on a provider's VPS; tried after the key
        data["ssh_password"] = password
    if target.ssh_known_hosts_file:
        data["ssh_known_hosts_file"] = target.ssh_known_hosts_file
    return data


class PyinfraPlan:
    """`Plan` for one host, backed by pyinfra operations."""

    def __init__(self, engine: Engine, host: Any, target: Target) -> None:
        self.engine = engine
        self.host = host
        self.target = target
        self.dry_run = engine.dry_run
        self.sudo = target.ssh_user != "root"
        self.own_operations: set[str] = set()  # what the plan added; any other operation is a hook's own

    def direct_operations(self, label: str) -> DirectOperations:
        """Around a hook: pyinfra operations it calls itself run on this host like plan steps."""
        return DirectOperations(self, label)

    # -- plumbing --------------------------------------------------------------------------

    def _op(self, step: str, op_func: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        from pyinfra.api.exceptions import NestedOperationError, PyinfraError
        from pyinfra.api.operation import add_op

        kwargs.setdefault("_sudo", self.sudo)
        started = time.monotonic()
        try:
            meta = add_op(self.engine.state, op_func, *args, host=self.host, name=step, **kwargs)[self.host]
            self.own_operations.add(meta._hash)
        except NestedOperationError as exc:
            self.own_operations.add(exc.args[0])
            self.record(step, True, started, ok=False)
            raise RemoteError(self.target.name, step, self.failed_output(exc.args[0])) from None
        except PyinfraError as exc:
            self.record(step, False, started, ok=False)
            raise RemoteError(self.target.name, step, str(exc)) from None
        changed = bool(meta.will_change if self.dry_run else meta.did_change())
        self.record(step, changed, started)
        if not self.dry_run:
            self.log_output(step, meta)
        return changed

    def log_output(self, step: str, meta: Any) -> None:
        """Write what ran and what it printed to the run log (redacted)."""
        try:
            commands = [str(c) for c in (meta._commands or [])]
            output = [*meta.stdout_lines, *meta.stderr_lines]
        except Exception:  # noqa: BLE001 - logging must never break a deploy
            return
        for command in commands:
            self.engine.reporter.detail(f"[{self.target.name}] {step} $ {command}")
        for line in output:
            self.engine.reporter.detail(f"[{self.target.name}] {step} | {line}")

    def record(self, step: str, changed: bool, started: float, ok: bool = True) -> None:
        if (direct := self.engine.direct.get(self.host.name)) is not None:
            direct.report()  # a hook's own operations before this step, in the order they ran
        if not ok:
            self.engine.reporter.detail(f"[{self.target.name}] {step}: FAILED")
        record = StepRecord(self.target.name, step, changed, time.monotonic() - started, ok)
        self.engine.reporter.step(record, self.dry_run)

    def failed_output(self, op_hash: str) -> str:
        try:
            meta = self.engine.state.get_op_data_for_host(self.host, op_hash).operation_meta
            lines = [*meta.stdout_lines, *meta.stderr_lines]
        except Exception:  # noqa: BLE001 - fall back to pyinfra's own log lines
            lines = self.engine.log_lines[-OUTPUT_TAIL_LINES:]
        for line in lines:
            self.engine.reporter.detail(f"[{self.target.name}] | {line}")
        return self.engine.reporter.redact("\n".join(lines[-OUTPUT_TAIL_LINES:]))

    def _settled(self, step: str, check: Callable[[], bool]) -> bool:
        """A fast path's one query found nothing to do: report the step unchanged (djaploy.fast_paths)."""
        started = time.monotonic()
        if check():
            self.record(step, False, started)
            return True
        return False

    def _user_args(self, as_user: str | None) -> dict[str, Any]:
        if as_user and as_user != self.target.ssh_user:
            # A readable working directory: tools like uv read config from the cwd.
            return {"_sudo": True, "_sudo_user": as_user, "_use_sudo_login": False, "_chdir": "/"}
        return {}

    # -- Plan API --------------------------------------------------------------------------

    def packages(self, step: str, packages: Sequence[str]) -> bool:
        """All installed: not even `apt update` runs (pyinfra counts a stale cache's refresh as a change)."""
        from pyinfra.operations import apt

        installed = self.query(f"dpkg-query -W -f '${{db:Status-Status}}\\n' {join(packages)} 2>/dev/null")
        if installed.ok and installed.stdout.split() == ["installed"] * len(packages):
            self.record(step, False, time.monotonic())
            return False
        return self._op(step, apt.packages, packages=list(packages), update=True, cache_time=24 * 3600)

    def user(self, step: str, name: str, *, home: str) -> bool:
        from pyinfra.operations import server

        if self._settled(step, lambda: fast_paths.user_is_settled(self, name, home=home, login_shell="/bin/bash")):
            return False
        return self._op(step, server.user, user=name, home=home, shell="/bin/bash", create_home=True, ensure_home=True)

    def directory(self, step: str, path: str, *, owner: str = "root", mode: str = "755") -> bool:
        from pyinfra.operations import files

        return self._op(step, files.directory, path=path, user=owner, group=owner, mode=mode)

    def put_text(self, step: str, path: str, content: str, *, owner: str = "root", mode: str = "644") -> bool:
        if is_private(mode):
            return put_private(self, step, content.encode(), path, owner, mode)
        if self._settled(step, lambda: fast_paths.file_is_unchanged(self, path, content.encode(), owner, mode)):
            return False
        from pyinfra.operations import files

        return self._op(step, files.put, src=io.StringIO(content), dest=path, user=owner, group=owner, mode=mode)

    def put_file(self, step: str, local_path: str, remote_path: str, *, owner: str = "root", mode: str = "644") -> bool:
        if is_private(mode):
            return put_private(self, step, Path(local_path).read_bytes(), remote_path, owner, mode)
        from pyinfra.operations import files

        return self._op(step, files.put, src=local_path, dest=remote_path, user=owner, group=owner, mode=mode)

    def fetch_file(self, step: str, remote_path: str, local_path: str) -> bool:
        from pyinfra.operations import files

        return self._op(step, files.get, src=remote_path, dest=local_path)

    def link(self, step: str, path: str, target: str) -> bool:
        from pyinfra.operations import files

        return self._op(step, files.link, path=path, target=target)

    def absent(self, step: str, path: str) -> bool:
        from pyinfra.facts.files import Link
        from pyinfra.operations import files

        is_link = bool(self.host.get_fact(Link, path=path, _sudo=self.sudo))
        return self._op(step, files.link if is_link else files.file, path=path, present=False)

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        from pyinfra.api.exceptions import NestedOperationError
        from pyinfra.api.operation import add_op
        from pyinfra.operations import server

        started = time.monotonic()
        if self.dry_run:
            self.record(step, True, started)
            return CommandResult(True, "")
        args = {"_sudo": self.sudo, **self._user_args(as_user)}
        try:
            meta = add_op(self.engine.state, server.shell, commands=[command], host=self.host, name=step, **args)[self.host]
            self.own_operations.add(meta._hash)
        except NestedOperationError as exc:
            self.own_operations.add(exc.args[0])
            self.record(step, True, started, ok=False)
            raise RemoteError(self.target.name, step, self.failed_output(exc.args[0])) from None
        self.record(step, True, started)
        self.log_output(step, meta)
        return CommandResult(True, self.engine.reporter.redact(meta.stdout), self.engine.reporter.redact(meta.stderr))

    def service(self, step: str, name: str, *, running: bool = True, enabled: bool = True, restarted: bool = False,
                reloaded: bool = False, daemon_reload: bool = False) -> bool:
        from pyinfra.operations import systemd

        unit = fast_paths.unit_name(name)
        if not (restarted or reloaded or daemon_reload) and self._settled(
                step, lambda: fast_paths.service_is_settled(self, unit, running=running, enabled=enabled)):
            return False
        if restarted and running and not reloaded and not self.dry_run:  # restart without asking facts first
            answer = self.run(step, fast_paths.restart_command(unit, daemon_reload=daemon_reload))
            if not enabled or answer.stdout.split()[-1:] == ["enabled"]:
                return True
            return self._op(f"{step} (enable)", systemd.service, service=name, enabled=True) or True
        return self._op(step, systemd.service, service=name, running=running, enabled=enabled, restarted=restarted,
                        reloaded=reloaded, daemon_reload=daemon_reload)

    def query(self, command: str, *, as_user: str | None = None, sudo: bool | None = None) -> CommandResult:
        """Read-only command, run even in a dry run (the equivalent of a pyinfra fact).

        sudo=False runs it as the login user itself (bootstrap proves `sudo -n` works that way,
        where pyinfra's own sudo would prompt for a password instead of failing)."""
        from pyinfra.api.command import StringCommand

        args = {"_sudo": self.sudo if sudo is None else sudo, **self._user_args(as_user)}
        ok, output = self.host.run_shell_command(StringCommand(command), **args)
        return CommandResult(bool(ok), self.engine.reporter.redact(output.stdout), self.engine.reporter.redact(output.stderr))


class Engine:
    """Connect to the hosts of one environment and run a function per host, in parallel."""

    def __init__(self, targets: Sequence[Target], reporter: Reporter, *, dry_run: bool = False,
                 passwords: Mapping[str, str] | None = None) -> None:
        if not targets:
            raise DjaployError("no hosts to run on")
        self.targets = list(targets)
        self._passwords = dict(passwords or {})  # host name -> SSH password; never printed
        self.reporter = reporter
        self.dry_run = dry_run
        self.state: Any = None
        self._hosts: dict[str, Any] = {}
        self._log = _LogCollector()
        self.direct: dict[str, DirectOperations] = {}  # per host: the hook whose own operations are running

    @property
    def log_lines(self) -> list[str]:
        return self._log.lines

    def __enter__(self) -> Engine:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def connect(self) -> None:
        """Open SSH connections to all hosts; one unreachable host fails the command before any change."""
        with timed_process("import pyinfra"):  # lazily, so `manage.py help` never pays for it
            import gevent
            from pyinfra.api import Config, Inventory, State
            from pyinfra.api.exceptions import ConnectError as PyinfraConnectError

        # Ctrl-C lands in whichever greenlet runs (often pyinfra's output readers): djaploy reports
        # the interruption itself, so gevent need not print a traceback per greenlet.
        hub = gevent.get_hub()
        if KeyboardInterrupt not in hub.NOT_ERROR:
            hub.NOT_ERROR = (*hub.NOT_ERROR, KeyboardInterrupt)

        pyinfra_logger = logging.getLogger("pyinfra")
        pyinfra_logger.handlers[:] = [self._log]
        pyinfra_logger.propagate = False
        pyinfra_logger.setLevel(logging.INFO)

        inventory = Inventory(([(t.name, _host_data(t, self._passwords.get(t.name))) for t in self.targets], {}))
        config = Config(CONNECT_TIMEOUT=10, FAIL_PERCENT=0)
        self.state = State(inventory, config, check_for_changes=self.dry_run)
        self.state.add_callback_handler(progress_handler(self.direct))
        # pyinfra's current state is a process-wide context that add_op sets and restores around
        # each call; with one greenlet per host those restores race. Pin it for our lifetime.
        from pyinfra.context import ctx_inventory, ctx_state

        ctx_state.set(self.state)
        ctx_inventory.set(inventory)
        targets = {t.name: t for t in self.targets}
        errors: dict[str, str] = {}

        def connect_one(host: Any) -> None:
            try:
                host.connect(raise_exceptions=True, show_errors=False)
            except PyinfraConnectError as exc:
                errors[host.name] = str(exc.args[0] if exc.args else exc)
            except Exception as exc:  # noqa: BLE001 - paramiko raises many kinds; report them all
                errors[host.name] = f"{type(exc).__name__}: {exc}"

        started = time.monotonic()
        with timed_process("connect"):
            gevent.joinall([self.state.pool.spawn(connect_one, host) for host in inventory])
        if errors:
            self.disconnect_hosts(inventory)
            lines = []
            for name, error in errors.items():
                t = targets[name]
                lines.append(f"[{name}] cannot connect to {t.ssh_user}@{t.ssh_host}:{t.ssh_port}: {error}")
            raise ConnectError(
                "\n".join(lines)
                + "\nNothing was changed on any host. Check the host is up and the ssh_host, ssh_port, "
                "ssh_user and ssh_key fields of the inventory."
            )
        for host in inventory:
            self.state.activate_host(host)
            self._hosts[host.name] = host
        if not self.dry_run:
            # Execution stage: operations added from now on run immediately, in order, per host.
            self.state.is_executing = True
        self.reporter.line(
            f"connected to {len(self._hosts)} host(s) in {time.monotonic() - started:.1f}s"
            + (" (dry run: nothing will be changed)" if self.dry_run else "")
        )

    def disconnect_hosts(self, hosts: Iterable[Any]) -> None:
        for host in hosts:
            try:
                if host.connected:
                    host.disconnect()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass

    def disconnect(self) -> None:
        if self.state is not None:
            from pyinfra.context import ctx_inventory, ctx_state

            with timed_process("disconnect"):
                self.disconnect_hosts(self.state.inventory)
            ctx_state.reset()
            ctx_inventory.reset()

    def plan_for(self, target: Target) -> PyinfraPlan:
        return PyinfraPlan(self, self._hosts[target.name], target)

    def run_per_host(self, work: Callable[[Target, PyinfraPlan], Any]) -> dict[str, BaseException | None]:
        """Run `work` for every host in parallel; return each host's exception (None on success)."""
        import gevent

        results: dict[str, BaseException | None] = {}

        def run_one(target: Target) -> None:
            try:
                work(target, self.plan_for(target))
                results[target.name] = None
            except BaseException as exc:  # noqa: BLE001 - reported per host by the caller
                results[target.name] = exc

        greenlets = [self.state.pool.spawn(run_one, target) for target in self.targets]
        try:
            gevent.joinall(greenlets, raise_error=False)
        except KeyboardInterrupt:
            # Ctrl-C: let every host unwind (release its lock, write its audit line) before exiting.
            self.reporter.line("interrupted: stopping, releasing locks...")
            gevent.killall(greenlets, exception=KeyboardInterrupt, block=True, timeout=60)
            raise
        return results
