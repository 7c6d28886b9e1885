"""The Sandbox: boots, lists and removes throwaway Debian VPS hosts (systemd-nspawn).

Each VPS is a booted system container with real systemd and sshd, in its own network
namespace, reachable from the host over SSH at its own address; see
../shared/sandbox-notes.md for the recipe this automates.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import KW_ONLY, dataclass
from ipaddress import IPv4Network
from pathlib import Path

from . import keys, network, procs, proxy, rootfs, settings
from ._run import run, tail
from .errors import SandboxError
from .locks import file_lock
from .state import HostRecord, SandboxState, all_recorded_subnets, load_state, save_state

log = logging.getLogger("djaploy.sandbox")

NSPAWN_RUN_DIR = Path("/run/systemd/nspawn")
READY_STATES = ("running", "degraded")


@dataclass(frozen=True)
class SandboxHost:
    """What a deploy (or a test) needs to reach one sandbox VPS over SSH."""

    name: str
    address: str
    host_side_address: str
    _: KW_ONLY
    ssh_port: int = 22
    key_path: str
    known_hosts_path: str
    root_user: str = "root"
    sudo_user: str = settings.SUDO_USER

    def ssh_command(self, user: str | None = None, *, batch: bool = True) -> list[str]:
        """ssh argv up to and including user@address; append a remote command if wanted."""
        args = keys.ssh_args(self.key_path, self.known_hosts_path, batch=batch)
        return [*args, "-p", str(self.ssh_port), f"{user or self.root_user}@{self.address}"]

    def pyinfra_data(self, user: str | None = None) -> dict[str, object]:
        """Host data for a pyinfra inventory entry (address, data)."""
        return {
            "ssh_user": user or self.root_user,
            "ssh_port": self.ssh_port,
            "ssh_key": self.key_path,
            "ssh_known_hosts_file": self.known_hosts_path,
            "ssh_strict_host_key_checking": "yes",
        }


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root (netns, veth, mounts, systemd-nspawn); run it with sudo")


def _ensure_nspawn_run_dir() -> None:
    """nspawn needs a tmpfs here when the host runs no systemd (recipe §4); shared, never removed."""
    NSPAWN_RUN_DIR.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(NSPAWN_RUN_DIR):
        run(["mount", "-t", "tmpfs", "tmpfs", str(NSPAWN_RUN_DIR)])


class Sandbox:
    """One named set of sandbox VPS hosts, with its state under $DJAPLOY_SANDBOX_DIR/NAME."""

    def __init__(self, name: str | None = None) -> None:
        self.name = settings.validate_name(name or settings.default_name())
        self.root_dir = settings.runtime_dir()
        self.dir = self.root_dir / self.name
        self.state_path = self.dir / "state.json"
        self.key_path = self.dir / "id_ed25519"
        self.known_hosts_path = self.dir / "known_hosts"
        self._save_lock = threading.RLock()

    # ------------------------------------------------------------ public API

    def up(self, count: int = 1, *, boot_timeout: float | None = None) -> list[SandboxHost]:
        """Make sure hosts vps1..vpsN run (keeping any that already do) and return all
        running hosts in order. On failure, removes what this call started and raises."""
        if count < 1:
            raise SandboxError("count must be at least 1")
        _require_root()
        with self._lock():
            state = self._load_or_new()
            self._drop_dead(state)
            self._revive_proxies(state)
            wanted = [f"vps{i}" for i in range(1, count + 1) if state.host(f"vps{i}") is None]
            if wanted:
                self._boot(state, wanted, boot_timeout or settings.boot_timeout())
            return [self._public(state, h) for h in state.sorted_hosts()]

    def status(self) -> list[SandboxHost]:
        """Hosts recorded in the state whose VPS process still runs. Never boots anything."""
        state = load_state(self.state_path)
        if state is None:
            return []
        return [self._public(state, h) for h in state.sorted_hosts() if procs.is_alive(h.nspawn)]

    def recorded(self) -> list[tuple[SandboxHost, bool]]:
        """Every recorded host with whether its VPS process runs (for `status` output)."""
        state = load_state(self.state_path)
        if state is None:
            return []
        return [(self._public(state, h), procs.is_alive(h.nspawn)) for h in state.sorted_hosts()]

    def down(self) -> None:
        """Stop every VPS cleanly and remove all of this sandbox's resources and files."""
        _require_root()
        with self._lock():
            state = load_state(self.state_path)
            errors: list[str] = []
            if state is not None and state.hosts:
                # In parallel: each VPS may take up to the stop timeout to shut down.
                with ThreadPoolExecutor(max_workers=len(state.hosts)) as pool:
                    for result in pool.map(lambda rec: self._remove_host(state, rec), state.sorted_hosts()):
                        errors += result
            if errors:
                raise SandboxError("down left some things behind:\n" + "\n".join(errors))
            if self.dir.exists():
                rootfs.remove_rootfs(self.dir)

    def run(
        self,
        host: SandboxHost | int,
        command: str,
        user: str = "root",
        *,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on a host over SSH; captures text output, does not check."""
        target = self._resolve(host)
        return subprocess.run(
            [*target.ssh_command(user), command],
            check=False,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )

    def connect_hosts(self, first: SandboxHost, second: SandboxHost) -> None:
        """Let two VPS of this sandbox reach each other (SFTP replicas, multi-host tests).

        By default a VPS reaches only the host end of its own link. This turns on forwarding
        on the two host ends only (the global ip_forward stays off) and routes each VPS's
        subnet through the host. `down` undoes it: the routes and settings go with the veths.
        """
        _require_root()
        state = load_state(self.state_path)
        records = {rec.name: rec for rec in (state.hosts if state else [])}
        missing = [host.name for host in (first, second) if host.name not in records]
        if missing:
            raise SandboxError(f"sandbox {self.name!r} has no host {', '.join(missing)}")
        a, b = records[first.name], records[second.name]
        for rec in (a, b):
            run(["sysctl", "-qw", f"net.ipv4.conf.{rec.veth_host}.forwarding=1"])
        for rec, other in ((a, b), (b, a)):
            run(["ip", "netns", "exec", rec.netns, "ip", "route", "replace", other.subnet, "via", rec.host_side_address])

    def reachable(self, host: SandboxHost | int, user: str = "root") -> bool:
        """True if SSH with the sandbox key and strict host key checking works."""
        try:
            return self.run(host, "true", user, timeout=15).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    # ------------------------------------------------------------ internals

    def _lock(self) -> AbstractContextManager[None]:
        """Serialises up/down of one sandbox (lives outside its dir, which `down` deletes)."""
        return file_lock(self.root_dir / ".locks" / f"{self.name}.lock")

    def _resolve(self, host: SandboxHost | int) -> SandboxHost:
        if isinstance(host, SandboxHost):
            return host
        hosts = self.status()
        if not 1 <= host <= len(hosts):
            raise SandboxError(f"sandbox {self.name!r} has no running host number {host}")
        return hosts[host - 1]

    def _load_or_new(self) -> SandboxState:
        state = load_state(self.state_path)
        if state is None:
            state = SandboxState(self.name, str(self.key_path), str(self.known_hosts_path))
        return state

    def _public(self, state: SandboxState, rec: HostRecord) -> SandboxHost:
        return SandboxHost(
            rec.name,
            rec.address,
            rec.host_side_address,
            ssh_port=rec.ssh_port,
            key_path=state.key_path,
            known_hosts_path=state.known_hosts_path,
        )

    def _save(self, state: SandboxState) -> None:
        with self._save_lock:  # hosts are prepared and waited for in threads
            save_state(self.state_path, state)

    def _write_known_hosts(self, state: SandboxState) -> None:
        entries = [(h.address, h.ssh_port, h.host_keys) for h in state.sorted_hosts() if h.host_keys]
        keys.write_known_hosts(self.known_hosts_path, entries)

    def _drop_dead(self, state: SandboxState) -> None:
        """A recorded host whose VPS is gone (crash, host reboot) is cleaned up and rebooted."""
        for rec in state.sorted_hosts():
            if not procs.is_alive(rec.nspawn):
                log.info("%s: recorded but not running; cleaning up its leftovers", rec.name)
                errors = self._remove_host(state, rec)
                if errors:
                    raise SandboxError("could not clean up a dead host:\n" + "\n".join(errors))

    def _revive_proxies(self, state: SandboxState) -> None:
        """A running VPS whose tinyproxy died would lose package access: restart the proxy."""
        for rec in state.sorted_hosts():
            if not procs.is_alive(rec.tinyproxy):
                log.info("%s: tinyproxy not running; restarting it", rec.name)
                self._start_proxy(rec)
                self._save(state)

    def _start_proxy(self, rec: HostRecord) -> None:
        host_dir = Path(rec.host_dir)
        rec.tinyproxy = proxy.start_proxy(
            host_dir / "tinyproxy.conf", host_dir / "tinyproxy.log", rec.host_side_address, rec.network
        )

    def _boot(self, state: SandboxState, names: list[str], boot_timeout: float) -> None:
        """Create, start and wait for the named hosts; on any failure remove exactly them."""
        new: list[HostRecord] = []
        try:
            base = rootfs.ensure_base()
            self.dir.mkdir(parents=True, exist_ok=True)
            self.dir.chmod(0o755)
            pubkey = keys.ensure_keypair(self.key_path, f"djaploy-sandbox-{self.name}")
            _ensure_nspawn_run_dir()
            new = self._reserve(state, names)
            self._prepare_all(state, new, base, pubkey)
            self._write_known_hosts(state)
            for rec in new:
                self._start_vps(state, rec)
            self._wait_all(new, boot_timeout)
        except BaseException:
            for rec in reversed(new):
                self._remove_host(state, rec)
            if not state.hosts:
                rootfs.remove_rootfs(self.dir)
            raise

    def _reserve(self, state: SandboxState, names: list[str]) -> list[HostRecord]:
        """Pick free subnets and create netns + veth while holding the machine-wide lock, so
        concurrent `up`s of different sandboxes never get the same subnet."""
        with file_lock(self.root_dir / ".locks" / "subnets.lock"):
            used = all_recorded_subnets(self.root_dir) + network.host_networks()
            try:
                subnets = network.allocate_subnets(used, len(names), taken_ifnames=network.host_link_names())
            except ValueError as exc:
                raise SandboxError(str(exc)) from exc
            records = [self._plan(name, subnet) for name, subnet in zip(names, subnets)]
            state.hosts.extend(records)
            self._save(state)
            for rec in records:
                network.create_network(rec.netns, rec.veth_host, rec.veth_peer, rec.network)
        return records

    def _plan(self, name: str, subnet: IPv4Network) -> HostRecord:
        """All names and paths of a host, decided (and recorded) before anything exists."""
        host_side, address = network.host_addresses(subnet)
        veth_host, veth_peer = network.veth_names(network.subnet_index(subnet))
        return HostRecord(
            name=name,
            index=int(name.removeprefix("vps")),
            subnet=str(subnet),
            address=address,
            host_side_address=host_side,
            netns=network.netns_name(self.name, name),
            veth_host=veth_host,
            veth_peer=veth_peer,
            machine=f"djsb-{self.name}-{name}",
            host_dir=str(self.dir / name),
        )

    def _prepare_all(self, state: SandboxState, records: list[HostRecord], base: Path, pubkey: str) -> None:
        """Prepare hosts in parallel (update-ca-certificates and host keys take ~1.5 s each)."""
        with ThreadPoolExecutor(max_workers=len(records)) as pool:
            futures = [pool.submit(self._prepare, state, rec, base, pubkey) for rec in records]
            for future in futures:
                future.result()

    def _prepare(self, state: SandboxState, rec: HostRecord, base: Path, pubkey: str) -> None:
        """Proxy, copy-on-write root and per-host files for one VPS."""
        host_dir = Path(rec.host_dir)
        host_dir.mkdir(parents=True, exist_ok=True)
        self._start_proxy(rec)
        rec.rootfs = rootfs.planned_overlay(host_dir, base)
        self._save(state)
        rec.rootfs = rootfs.create_rootfs(host_dir, base)
        self._save(state)
        rec.host_keys = rootfs.customise(
            Path(rec.rootfs.root),
            hostname=rec.name,
            proxy_url=proxy.proxy_url(rec.host_side_address),
            pubkey=pubkey,
            sudo_user=settings.SUDO_USER,
        )
        self._save(state)

    def _start_vps(self, state: SandboxState, rec: HostRecord) -> None:
        """Boot the container (recipe §4: --register=no and --keep-unit are required here)."""
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
        ]
        try:
            rec.nspawn = procs.spawn(args, Path(rec.host_dir) / "nspawn.log")
        except FileNotFoundError as exc:
            raise SandboxError("systemd-nspawn missing: apt-get install -y systemd-container") from exc
        self._save(state)
        log.info("%s: booting at %s", rec.name, rec.address)

    def _wait_all(self, records: list[HostRecord], boot_timeout: float) -> None:
        """Wait for all new hosts in parallel; the first failure is raised."""
        deadline = time.monotonic() + boot_timeout
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=len(records)) as pool:
            futures = [pool.submit(self._wait_ready, rec, deadline, stop) for rec in records]
            try:
                for future in futures:
                    future.result()
            finally:
                stop.set()

    def _wait_ready(self, rec: HostRecord, deadline: float, stop: threading.Event) -> None:
        """Poll `systemctl is-system-running` over SSH until it says running (or degraded)."""
        host = SandboxHost(
            rec.name,
            rec.address,
            rec.host_side_address,
            key_path=str(self.key_path),
            known_hosts_path=str(self.known_hosts_path),
        )
        last = ""
        while not stop.is_set():
            if not procs.is_alive(rec.nspawn):
                raise SandboxError(f"{rec.name}: systemd-nspawn exited during boot\n{self._log_tail(rec)}")
            try:
                proc = self.run(host, "systemctl is-system-running", timeout=15)
                answer = proc.stdout.strip()
                last = answer or tail(proc.stderr, 1)
                if answer in READY_STATES:
                    if answer == "degraded":
                        log.warning("%s: systemd reports degraded (some unit failed)", rec.name)
                    log.info("%s: up (%s)", rec.name, answer)
                    return
            except subprocess.TimeoutExpired:
                last = "ssh timed out"
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{rec.name}: not ready at {rec.address} within the boot timeout "
                    f"(last answer: {last or 'none'})\n{self._log_tail(rec)}"
                )
            stop.wait(0.5)

    def _log_tail(self, rec: HostRecord) -> str:
        path = Path(rec.host_dir) / "nspawn.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return f"(no log at {path})"
        return f"--- {path} (last lines) ---\n{tail(text, 30)}"

    def _remove_host(self, state: SandboxState, rec: HostRecord) -> list[str]:
        """Undo one host in reverse order of creation; every step tolerates missing pieces.
        Only a fully removed host is dropped from the state."""
        errors: list[str] = []

        def step(what: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - keep going: later steps may still succeed
                errors.append(f"{rec.name}: {what}: {exc}")

        step("stop VPS", lambda: self._stop_vps(rec))
        step("kill leftovers in netns", lambda: self._kill_netns_leftovers(rec))
        step("stop tinyproxy", lambda: procs.stop(rec.tinyproxy, 5))
        step("remove root filesystem", lambda: rootfs.remove_rootfs(Path(rec.host_dir)))
        step("remove network", lambda: network.delete_network(rec.netns, rec.veth_host, rec.veth_peer))
        if not errors:
            with self._save_lock:
                state.hosts.remove(rec)
                if state.hosts or self.state_path.exists():
                    self._save(state)
                if self.known_hosts_path.exists():
                    self._write_known_hosts(state)
        return errors

    def _stop_vps(self, rec: HostRecord) -> None:
        if procs.is_alive(rec.nspawn):
            log.info("%s: shutting down", rec.name)
            if not procs.stop(rec.nspawn, settings.stop_timeout()):
                log.warning("%s: no clean shutdown within %ss; killed", rec.name, settings.stop_timeout())

    def _kill_netns_leftovers(self, rec: HostRecord) -> None:
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


def sandbox_hosts(name: str | None = None) -> list[SandboxHost]:
    """Running hosts of a sandbox ($DJAPLOY_SANDBOX_NAME or "demo"); [] if none. Never boots."""
    try:
        return Sandbox(name).status()
    except SandboxError:
        return []
