"""Where a command's time goes: seconds per phase, per host and for the whole process.

Phases are exclusive: a phase timed inside another (migrate inside the prepare_release hook)
is subtracted from the outer one, so a host's phases add up to the time spent in them and the
breakdown shows what to cut. Process phases (load config, build, connect) belong to the command,
not to a host. With DJAPLOY_TIMINGS_FILE set, the command writes every figure there as JSON, so
bench/ can split a command's wall time without parsing its output.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

TIMINGS_FILE_VARIABLE = "DJAPLOY_TIMINGS_FILE"

#: phases of the command as a whole (one process runs one command); reset when a command starts
PROCESS_PHASES: dict[str, float] = {}
#: time.time() when the management command's handle() began: bench/ measures Django's start-up up to it
HANDLE_STARTED: list[float] = []


@contextmanager
def timed_into(timings: MutableMapping[str, float], phase: str, *,
               clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Add the time spent in `phase` to `timings`, minus the phases timed inside it.

    The phase takes its place in `timings` when it starts, so phases are listed in the order
    they began (an outer phase before the inner ones), as a person reads the run."""
    timings.setdefault(phase, 0.0)
    started = clock()
    inner_before = sum(timings.values())
    try:
        yield
    finally:
        inner = sum(timings.values()) - inner_before
        timings[phase] += max(0.0, clock() - started - inner)


def timed_process(phase: str) -> AbstractContextManager[None]:
    """Time a phase of the whole command (load config, build, connect)."""
    return timed_into(PROCESS_PHASES, phase)


def mark_handle_started() -> None:
    """A command begins: forget an earlier command's phases (tests run many in one process)."""
    PROCESS_PHASES.clear()
    HANDLE_STARTED[:] = [time.time()]


def write_timings_file(command: str, seconds: float, host_timings: dict[str, dict[str, float]]) -> None:
    """When DJAPLOY_TIMINGS_FILE names a file, write the run's phases there (names and seconds, never secrets)."""
    destination = os.environ.get(TIMINGS_FILE_VARIABLE)
    if not destination:
        return
    data = {
        "command": command,
        "handle_started": HANDLE_STARTED[0] if HANDLE_STARTED else None,
        "seconds": round(seconds, 4),
        "process": {name: round(value, 4) for name, value in PROCESS_PHASES.items()},
        "hosts": {host: {name: round(value, 4) for name, value in phases.items()}
                  for host, phases in host_timings.items()},
    }
    Path(destination).write_text(json.dumps(data, indent=2) + "\n")
