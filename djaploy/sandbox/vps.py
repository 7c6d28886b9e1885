"""One VPS's pieces, created and removed: its proxy, its root filesystem, its container.

Each function changes one host record; the caller saves the state (through `save`) so a
crash leaves a record of everything that exists and `down` can still remove it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from . import network, procs, proxy, rootfs, settings
from ._run import run
from .errors import SandboxError
from .state import HostRecord

log = logging.getLogger("djaploy.sandbox")

NSPAWN_RUN_DIR = Path("/run/systemd/nspawn")


def require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root (netns, veth, mounts, systemd-nspawn); run it with sudo")


def ensure_nspawn_run_dir() -> None:
    """nspawn needs a tmpfs here when the host runs no systemd (recipe §4); shared, never removed."""
    NSPAWN_RUN_DIR.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(NSPAWN_RUN_DIR):
        run(["mount", "-t", "tmpfs", "tmpfs", str(NSPAWN_RUN_DIR)])


def start_proxy(rec: HostRecord) -> None:
    host_dir = Path(rec.host_dir)
    rec.tinyproxy = proxy.start_proxy(
        host_dir / "tinyproxy.conf", host_dir / "tinyproxy.log", rec.host_side_address, rec.network
    )


def prepare(rec: HostRecord, base: Path, pubkey: str, save: Callable[[], None], root_password: str | None = None) -> None:
    """Proxy, copy-on-write root and per-host files for one VPS (root_password: see rootfs.customise)."""
    host_dir = Path(rec.host_dir)
    host_dir.mkdir(parents=True, exist_ok=True)
    start_proxy(rec)
    rec.rootfs = rootfs.planned_overlay(host_dir, base)
    save()
    rec.rootfs = rootfs.create_rootfs(host_dir, base)
    save()
    rec.host_keys = rootfs.customise(
        Path(rec.rootfs.root),
        hostname=rec.name,
        proxy_url=proxy.proxy_url(rec.host_side_address),
        pubkey=pubkey,
        sudo_user=settings.SUDO_USER,
        root_password=root_password,
    )
    rec.root_password_only = root_password is not None
    save()


def start(rec: HostRecord, save: Callable[[], None]) -> None:
    """Boot the container (recipe §4: --register=no and --keep-unit are required here).

    CAP_NET_ADMIN, as root has on a real VPS, so a host can run its own firewall (nftables);
    it reaches only the container's own network namespace.
    """
    assert rec.rootfs is not None
    args = [
        "systemd-nspawn",
        "-D",
        rec.rootfs.root,
        "-b",
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path={network.NETNS_DIR / rec.netns}",
        "-M",
        rec.machine,
        "--console=passive",
        "--link-journal=no",
        "--capability=CAP_NET_ADMIN",
    ]
    try:
        rec.nspawn = procs.spawn(args, Path(rec.host_dir) / "nspawn.log")
    except FileNotFoundError as exc:
        raise SandboxError("systemd-nspawn missing: apt-get install -y systemd-container") from exc
    save()
    log.info("%s: booting at %s", rec.name, rec.address)


def remove(rec: HostRecord) -> list[str]:
    """Undo one host in reverse order of creation; every step tolerates missing pieces.
    Returns what could not be removed (nothing: the host is fully gone)."""
    errors: list[str] = []

    def step(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - keep going: later steps may still succeed
            errors.append(f"{rec.name}: {what}: {exc}")

    step("stop VPS", lambda: _stop(rec))
    step("kill leftovers in netns", lambda: _kill_netns_leftovers(rec))
    step("stop tinyproxy", lambda: procs.stop(rec.tinyproxy, 5))
    step("remove root filesystem", lambda: rootfs.remove_rootfs(Path(rec.host_dir)))
    step("remove network", lambda: network.delete_network(rec.netns, rec.veth_host, rec.veth_peer))
    return errors


def _stop(rec: HostRecord) -> None:
    if procs.is_alive(rec.nspawn):
        log.info("%s: shutting down", rec.name)
        if not procs.stop(rec.nspawn, settings.stop_timeout()):
            log.warning("%s: no clean shutdown within %ss; killed", rec.name, settings.stop_timeout())


def _kill_netns_leftovers(rec: HostRecord) -> None:
    """If nspawn was SIGKILLed, the container's processes live on in our netns."""
    pids = network.netns_pids(rec.netns)
    if not pids:
        return
    log.warning("%s: killing %d leftover container process(es)", rec.name, len(pids))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while network.netns_pids(rec.netns) and time.monotonic() < deadline:
        time.sleep(0.1)
    if network.netns_pids(rec.netns):
        raise SandboxError(f"processes still running in netns {rec.netns}")
