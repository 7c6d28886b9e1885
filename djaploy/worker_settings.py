"""config.py's `workers`: name -> manage.py command line, or a dict for a singleton or a grace period.

    workers={"tasks": "manage.py process_tasks",
             "scheduler": {"command": "manage.py run_scheduler", "singleton": True, "stop_grace_seconds": 60}}

Each becomes a systemd service on the environment's `worker` hosts (djaploy.workers); a singleton
runs on exactly one of them. Pure and a leaf: config.py checks the values with `check_workers`,
the rest of djaploy reads them through `parse_workers`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_STOP_GRACE_SECONDS", "Worker", "WorkerError", "check_workers", "parse_workers"]

#: seconds a worker gets after TERM to finish the job in flight before it is killed
DEFAULT_STOP_GRACE_SECONDS = 30
WORKER_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,30}")
#: a manage.py argument as it goes into a systemd ExecStart line, unquoted: no space, quote, $, % or \
ARGUMENT_RE = re.compile(r"[A-Za-z0-9_.,:=/@+-]+")
KEYS = ("command", "singleton", "stop_grace_seconds")


class WorkerError(ValueError):
    """An entry of `workers` that cannot run: names the entry and the reason."""


@dataclass(frozen=True)
class Worker:
    """One background service: `manage.py` + `arguments`, from the live release."""

    name: str
    arguments: tuple[str, ...]
    singleton: bool = False
    stop_grace_seconds: int = DEFAULT_STOP_GRACE_SECONDS


def _arguments(name: str, command: Any) -> tuple[str, ...]:
    where = f"workers[{name!r}]"
    if not isinstance(command, str):
        raise WorkerError(f"{where}: the command must be a string like 'manage.py process_tasks', got {command!r}")
    try:
        words = shlex.split(command)
    except ValueError as error:
        raise WorkerError(f"{where}: {command!r} cannot be split into words ({error})") from None
    if len(words) < 2 or words[0] != "manage.py":
        raise WorkerError(f"{where}: {command!r} must be a manage.py command line, like 'manage.py process_tasks'")
    for word in words[1:]:
        if not ARGUMENT_RE.fullmatch(word):
            raise WorkerError(f"{where}: argument {word!r} may hold only letters, digits and _ . , : = / @ + - "
                             "(put anything else in a setting the command reads)")
    return tuple(words[1:])


def _worker(name: Any, value: Any) -> Worker:
    if not isinstance(name, str) or not WORKER_NAME_RE.fullmatch(name):
        raise WorkerError(f"worker name {name!r}: 1-31 lowercase letters, digits, '-' or '_', starting with a letter "
                         "(it names the systemd service)")
    if not isinstance(value, Mapping):
        return Worker(name, _arguments(name, value))
    where = f"workers[{name!r}]"
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise WorkerError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; it takes {', '.join(KEYS)}")
    if "command" not in value:
        raise WorkerError(f"{where} needs 'command', like {{'command': 'manage.py process_tasks'}}")
    singleton = value.get("singleton", False)
    if not isinstance(singleton, bool):
        raise WorkerError(f"{where}['singleton'] must be True or False, got {singleton!r}")
    grace = value.get("stop_grace_seconds", DEFAULT_STOP_GRACE_SECONDS)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 1 <= grace <= 3600:
        raise WorkerError(f"{where}['stop_grace_seconds'] must be whole seconds from 1 to 3600, got {grace!r}")
    return Worker(name, _arguments(name, value["command"]), singleton, grace)


def parse_workers(value: Mapping[str, Any]) -> tuple[Worker, ...]:
    """The workers in config order; WorkerError with the entry and the reason for a bad one."""
    return tuple(_worker(name, entry) for name, entry in value.items())


def check_workers(value: Mapping[str, Any]) -> str | None:
    """The rule of DjaployConfig.workers."""
    try:
        parse_workers(value)
    except WorkerError as error:
        return str(error)
    return None
