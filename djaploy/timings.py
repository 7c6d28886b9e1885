"""Where a command's time goes: seconds per phase, per host and for the whole process.

Phases are exclusive: a phase timed inside another (migrate inside the prepare_release hook)
is subtracted from the outer one, so a host's phases add up to the time spent in them and the
breakdown shows what to cut. Process phases (connect, build) belong to the command, not to a
host. With DJAPLOY_TIMINGS_FILE set, the command writes every figure there as JSON (bench/).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TIMINGS_FILE_VARIABLE = "DJAPLOY_TIMINGS_FILE"

#: phases of the command as a whole (one process runs one command)
PROCESS_PHASES: dict[str, float] = {}
#: time.time() when the management command's handle() began: bench/ subtracts its own start
HANDLE_STARTED: list[float] = []


@contextmanager
def timed_into(timings: MutableMapping[str, float], phase: str) -> Iterator[None]:
    """Add the time spent in `phase` to `timings`, minus phases timed inside it."""
    started = time.monotonic()
    inner_before = sum(timings.values())
    try:
        yield
    finally:
        inner = sum(timings.values()) - inner_before
        timings[phase] = timings.get(phase, 0.0) + max(0.0, time.monotonic() - started - inner)


def timed_process(phase: str) -> Any:
    """Time a phase of the whole command (connect, build)."""
    return timed_into(PROCESS_PHASES, phase)


def mark_handle_started() -> None:
    HANDLE_STARTED[:] = [time.time()]


def write_timings_file(command: str, seconds: float, host_timings: dict[str, dict[str, float]]) -> None:
    """When DJAPLOY_TIMINGS_FILE names a file, write the run's phases there (never secrets: names and seconds)."""
    destination = os.environ.get(TIMINGS_FILE_VARIABLE)
    if not destination:
        return
    data = {
        "command": command,
        "handle_started": HANDLE_STARTED[0] if HANDLE_STARTED else None,
        "seconds": round(seconds, 4),
        "process": {name: round(value, 4) for name, value in PROCESS_PHASES.items()},
        "hosts": {host: {name: round(value, 4) for name, value in phases.items()} for host, phases in host_timings.items()},
    }
    Path(destination).write_text(json.dumps(data, indent=2) + "\n")
