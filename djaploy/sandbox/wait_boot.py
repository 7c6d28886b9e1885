"""Waiting for freshly started VPS hosts to finish booting: systemd says so over SSH."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import procs
from ._run import tail
from .errors import SandboxError
from .host import SandboxHost, ssh_run, ssh_run_password
from .state import HostRecord

log = logging.getLogger("djaploy.sandbox")

READY_STATES = ("running", "degraded")


def wait_all(records: list[HostRecord], boot_timeout: float, *, key_path: str, known_hosts_path: str,
             root_password: str | None = None) -> None:
    """Wait for all new hosts in parallel; the first failure is raised. With `root_password`
    the hosts are asked as root with that password (they accept no key)."""
    deadline = time.monotonic() + boot_timeout
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=len(records)) as pool:
        futures = [pool.submit(_wait_ready, rec, deadline, stop, key_path, known_hosts_path, root_password)
                   for rec in records]
        try:
            for future in futures:
                future.result()
        finally:
            stop.set()


def _wait_ready(rec: HostRecord, deadline: float, stop: threading.Event, key_path: str, known_hosts_path: str,
                root_password: str | None) -> None:
    """Poll `systemctl is-system-running` over SSH until it says running (or degraded)."""
    host = SandboxHost(
        rec.name,
        rec.address,
        rec.host_side_address,
        key_path=key_path,
        known_hosts_path=known_hosts_path,
    )
    last = ""
    while not stop.is_set():
        if not procs.is_alive(rec.nspawn):
            raise SandboxError(f"{rec.name}: systemd-nspawn exited during boot\n{_log_tail(rec)}")
        try:
            # degraded: which units failed, so a test that later fails on this host can say why
            command = "systemctl is-system-running; systemctl --failed --no-legend --plain 2>/dev/null | cut -d' ' -f1"
            if root_password is None:
                proc = ssh_run(host, command, timeout=15)
            else:
                proc = ssh_run_password(host, command, "root", root_password, timeout=15)
            answer, *failed = proc.stdout.split() or [""]
            last = answer or tail(proc.stderr, 1)
            if answer in READY_STATES:
                if answer == "degraded":
                    log.warning("%s: systemd reports degraded (failed: %s)", rec.name, " ".join(failed) or "unknown")
                log.info("%s: up (%s)", rec.name, answer)
                return
        except subprocess.TimeoutExpired:
            last = "ssh timed out"
        if time.monotonic() > deadline:
            raise SandboxError(
                f"{rec.name}: not ready at {rec.address} within the boot timeout "
                f"(last answer: {last or 'none'})\n{_log_tail(rec)}"
            )
        stop.wait(0.5)


def _log_tail(rec: HostRecord) -> str:
    path = Path(rec.host_dir) / "nspawn.log"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return f"--- {path} (last lines) ---\n{tail(text, 30)}"
