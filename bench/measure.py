"""How bench/ measures one step: wall time, peak memory, djaploy's own phases, and the load.

A step is a callable that returns when the change serves (djaploy's commands do; the floor
waits for the new answer itself). `measure` runs it with or without HTTP load and returns one
row for the table. The phases come from djaploy itself (DJAPLOY_TIMINGS_FILE, djaploy.timings),
so the breakdown is what the code measured, not what bench/ guesses from its output.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.poller import Poller
from djaploy.loadgen import Load
from djaploy.timings import TIMINGS_FILE_VARIABLE

#: the table's phase columns, in the order a deploy runs them; djaploy's phase names map onto them
PHASE_GROUPS: dict[str, tuple[str, ...]] = {
    "start-up": ("django start-up",),
    "config": ("load config",),
    "build": ("build",),
    "import": ("import pyinfra",),
    "connect": ("connect", "disconnect"),
    "configure": ("configure server",),
    "upload": ("upload",),
    "install": ("install",),
    "migrate": ("migrate", "migrate once"),
    "collectstatic": ("collectstatic",),
    "hooks": ("prepare data", "prepare release", "workers"),
    "gate": ("health gate",),
    "publish": ("publish",),  # the systemd module's restart (and nginx's site) run in this hook
    "switch": ("switch", "route traffic"),
    "verify": ("verify",),
    "clean-up": ("clean-up",),
}


@dataclass
class Outcome:
    """What one step did: its wall time and, for a djaploy command, its phases and memory."""

    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float | None = None
    output: str = ""


def run_manage(project_root: Path, env: dict[str, str], *args: str) -> Outcome:
    """`manage.py ARGS` as a user runs it; peak memory from wait4, phases from DJAPLOY_TIMINGS_FILE."""
    with tempfile.TemporaryDirectory(prefix="djaploy-bench-run-") as folder:
        timings_file = Path(folder) / "timings.json"
        out_path = Path(folder) / "out.txt"
        with out_path.open("w") as out:
            started_wall, started = time.time(), time.monotonic()
            process = subprocess.Popen([sys.executable, "manage.py", *args], cwd=project_root, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env={**env, TIMINGS_FILE_VARIABLE: str(timings_file)})
            _, status, usage = os.wait4(process.pid, 0)  # the rusage of this process alone, not the bench's
            seconds = time.monotonic() - started
            process.returncode = os.waitstatus_to_exitcode(status)
        output = out_path.read_text()
        if process.returncode != 0:
            raise SystemExit(f"manage.py {' '.join(args)} failed ({process.returncode}):\n{output}")
        phases = phases_of(json.loads(timings_file.read_text()), started_wall, seconds) if timings_file.exists() else {}
    return Outcome(seconds, phases, round(usage.ru_maxrss / 1024, 1), output)


def phases_of(data: dict[str, Any], started_wall: float, wall: float) -> dict[str, float]:
    """The table's phase columns for one command: its process phases plus, per column, the slowest
    host's (hosts run in parallel), Django start-up from the process start, the rest as 'other'."""
    process: dict[str, float] = dict(data.get("process", {}))
    if data.get("handle_started"):
        process["django start-up"] = max(0.0, data["handle_started"] - started_wall)
    grouped = _grouped(process)
    for host_phases in data.get("hosts", {}).values():
        for column, value in _grouped(host_phases).items():
            grouped[column] = max(grouped.get(column, 0.0), value)
    grouped = {column: round(grouped[column], 3) for column in PHASE_GROUPS if grouped.get(column, 0.0) >= 0.005}
    grouped["other"] = round(max(0.0, wall - sum(grouped.values())), 3)  # what no phase covers, and unnamed phases
    return grouped


def _grouped(phases: dict[str, float]) -> dict[str, float]:
    return {column: sum(phases.get(name, 0.0) for name in names) for column, names in PHASE_GROUPS.items()}


def measure(label: str, step: Callable[[], Outcome], *, url: str, clients: int, load: bool,
            switches: bool = False) -> dict[str, Any]:
    """Run `step` once, with `clients` HTTP clients requesting `url` throughout when `load`.

    `switches`: the step changes the version served; a poller times it until the other version
    serves steadily (bench.poller, as for the peer), and when it first answered."""
    report = None
    with Poller(url) if switches else nullcontext() as poller:
        if load:
            with Load(url, clients=clients, max_seconds=600) as running:
                time.sleep(0.5)
                started = time.monotonic()
                outcome = step()
                time.sleep(0.5)
            report = running.report
        else:
            started = time.monotonic()
            outcome = step()
        switch = _wait_for_switch(poller, started) if poller else None
    row: dict[str, Any] = {"what": label, "load": load, "seconds": round(outcome.seconds, 2)}
    if switch:
        row.update(switch)
        row["command_seconds"] = row["seconds"]
        if switch.get("steady_s") is not None:
            row["seconds"] = round(max(outcome.seconds, switch["steady_s"]), 2)
    if outcome.phases:
        row["phases"] = outcome.phases
    if outcome.peak_rss_mib is not None:
        row["peak_rss_mib"] = outcome.peak_rss_mib
    if report:
        row.update(
            requests=report.total,
            failed=report.failures,
            failure_reasons=dict(report.failure_reasons),
            versions=report.bodies_in_order,
            mixed_window_s=round(report.mixed_window_seconds, 3),
            max_gap_s=round(report.max_gap_seconds(), 3),
            rps=round(report.requests_per_second),
        )
    print(json.dumps(row), flush=True)
    return row


def _wait_for_switch(poller: Poller, started: float, timeout: float = 60.0) -> dict[str, Any]:
    """When the other version first answered and from when on only it did, seconds from `started`."""
    deadline = time.monotonic() + timeout
    version, first, steady = poller.change(started)
    while steady is None and time.monotonic() < deadline:
        time.sleep(0.1)
        version, first, steady = poller.change(started)
    return {"new_version": version,
            "first_new_answer_s": round(first - started, 2) if first is not None else None,
            "steady_s": round(steady - started, 2) if steady is not None else None}


def help_timings(project_root: Path, env: dict[str, str], settings: dict[str, str], runs: int = 9) -> dict[str, Any]:
    """`manage.py help` per settings module: median wall and CPU (user + system) seconds.

    The settings alternate run by run, so a change in the machine's load hits both alike; CPU
    time is what the process itself spends, which other work on a shared machine barely moves."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    for run in range(runs + 1):
        for name, module in settings.items():
            started = time.monotonic()
            process = subprocess.Popen([sys.executable, "manage.py", "help"], cwd=project_root, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, env={**env, "DJANGO_SETTINGS_MODULE": module})
            _, status, usage = os.wait4(process.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"manage.py help failed with {module}")
            if run:  # the first round warms the caches
                samples[name].append((time.monotonic() - started, usage.ru_utime + usage.ru_stime))
    return {name: {"wall_s": round(statistics.median(w for w, _ in values), 3),
                   "cpu_s": round(statistics.median(c for _, c in values), 3)} for name, values in samples.items()}
