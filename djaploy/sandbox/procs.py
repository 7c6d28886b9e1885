"""Background processes (systemd-nspawn, tinyproxy) tracked by PID *and* start time.

The CLI exits while the VPS keeps running, so a later `down` only has the recorded PID.
The start time guards against PID reuse: we never signal a process that is not the one we
started, and never look processes up by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Popen objects of children started by this Python process, so they get reaped (no zombies,
# no "still running" ResourceWarning) when the same process (e.g. a test session) stops them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcRef:
    pid: int
    starttime: int


def parse_stat(text: str) -> tuple[str, int]:
    """(state letter, start time in clock ticks) from /proc/PID/stat; comm may hold ") "."""
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], int(rest[19])


def _read_stat(pid: int) -> tuple[str, int] | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child; harmless otherwise."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_alive(ref: ProcRef | None) -> bool:
    """True if the very process we started still runs (zombies and reused PIDs are dead)."""
    if ref is None:
        return False
    _reap(ref.pid)
    stat = _read_stat(ref.pid)
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == ref.starttime


def spawn(args: Sequence[str], log_path: Path) -> ProcRef:
    """Start a long-lived process in its own session (Ctrl-C in the shell won't hit it),
    output appended to a log file."""
    with log_path.open("ab") as out:
        child = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN[child.pid] = child
    stat = _read_stat(child.pid)
    starttime = stat[1] if stat else 0
    return ProcRef(child.pid, starttime)


def _wait_gone(ref: ProcRef, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(ref):
            return True
        time.sleep(0.1)
    return not is_alive(ref)


def _signal(ref: ProcRef, sig: int) -> None:
    """Signal through a pidfd opened *before* re-checking identity: no PID-reuse race."""
    try:
        fd = os.pidfd_open(ref.pid)
    except ProcessLookupError:
        return
    try:
        if is_alive(ref):
            signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def stop(ref: ProcRef | None, timeout: float, sig: int = signal.SIGTERM) -> bool:
    """Send `sig` to our own process, wait up to `timeout`, then SIGKILL.

    Returns True if it exited on the first signal (a clean stop)."""
    if ref is None or not is_alive(ref):
        return True
    _signal(ref, sig)
    if _wait_gone(ref, timeout):
        return True
    _signal(ref, signal.SIGKILL)
    _wait_gone(ref, 10)
    return False
