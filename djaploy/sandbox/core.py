"""The Sandbox: boots, lists and removes throwaway Debian VPS hosts (systemd-nspawn).

Each VPS is a booted system container with real systemd and sshd, in its own network
namespace, reachable from the host over SSH at its own address; see
../shared/sandbox-notes.md for the recipe this automates.

This module keeps the state (which hosts exist, under a lock) and orders the work; the pieces
live beside it: `vps` (create and remove one VPS), `wait_boot` (until systemd is up) and
`host` (SSH access).
"""

from __future__ import annotations

import logging
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import partial
from ipaddress import IPv4Network
from pathlib import Path

from . import keys, network, procs, rootfs, settings, vps, wait_boot
from ._run import run
from .errors import SandboxError
from .host import SandboxHost, ssh_run
from .locks import file_lock
from .state import HostRecord, SandboxState, all_recorded_subnets, load_state, save_state

log = logging.getLogger("djaploy.sandbox")


class Sandbox:
    """One named set of sandbox VPS hosts, with its state under $DJAPLOY_SANDBOX_DIR/NAME.

    `os` is the release `up` boots new hosts with ("debian-12", "debian-13"; default
    $DJAPLOY_SANDBOX_OS or debian-12); every other method works on whatever the hosts run.
    """

    def __init__(self, name: str | None = None, os: str | None = None) -> None:
        self.name = settings.validate_name(name or settings.default_name())
        self.os = settings.validate_os(os) if os else settings.default_os()
        self.root_dir = settings.runtime_dir()
        self.dir = self.root_dir / self.name
        self.state_path = self.dir / "state.json"
        self.key_path = self.dir / "id_ed25519"
        self.known_hosts_path = self.dir / "known_hosts"
        self._save_lock = threading.RLock()

    # ------------------------------------------------------------ public API

    def up(self, count: int = 1, *, boot_timeout: float | None = None, root_password: str | None = None) -> list[SandboxHost]:
        """Make sure hosts vps1..vpsN run (keeping any that already do) and return all
        running hosts in order. On failure, removes what this call started and raises.

        With `root_password`, the hosts this call boots look like a provider's fresh VPS: root
        logs in with that password only, and there is no other user (the password is not stored).
        """
        if count < 1:
            raise SandboxError("count must be at least 1")
        vps.require_root()
        with self._lock():
            state = self._load_or_new()
            self._drop_dead(state)
            self._revive_proxies(state)
            self._refuse_other_release(state)
            wanted = [f"vps{i}" for i in range(1, count + 1) if state.host(f"vps{i}") is None]
            if wanted:
                self._boot(state, wanted, boot_timeout or settings.boot_timeout(), root_password)
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
        vps.require_root()
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
        return ssh_run(self._resolve(host), command, user, timeout=timeout)

    def connect_hosts(self, first: SandboxHost, second: SandboxHost) -> None:
        """Let two VPS of this sandbox reach each other (SFTP replicas, multi-host tests).

        By default a VPS reaches only the host end of its own link. This turns on forwarding
        on the two host ends only (the global ip_forward stays off) and routes each VPS's
        subnet through the host. `down` undoes it: the routes and settings go with the veths.
        """
        vps.require_root()
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
            root_password_only=rec.root_password_only,
            os=rec.os,
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

    def _refuse_other_release(self, state: SandboxState) -> None:
        """`up` keeps running hosts: one that runs another release than asked for would
        silently give the caller (a test for debian-13, say) the wrong system."""
        other = [f"{rec.name} runs {rec.os}" for rec in state.sorted_hosts() if rec.os != self.os]
        if other:
            raise SandboxError(f"sandbox {self.name!r} was asked for {self.os}, but {', '.join(other)}: "
                               "run `down` first, or use another --name")

    def _revive_proxies(self, state: SandboxState) -> None:
        """A running VPS whose tinyproxy died would lose package access: restart the proxy."""
        for rec in state.sorted_hosts():
            if not procs.is_alive(rec.tinyproxy):
                log.info("%s: tinyproxy not running; restarting it", rec.name)
                vps.start_proxy(rec)
                self._save(state)

    def _boot(self, state: SandboxState, names: list[str], boot_timeout: float, root_password: str | None) -> None:
        """Create, start and wait for the named hosts; on any failure remove exactly them."""
        new: list[HostRecord] = []
        try:
            base = rootfs.ensure_base(settings.suite(self.os))
            self.dir.mkdir(parents=True, exist_ok=True)
            self.dir.chmod(0o755)
            pubkey = keys.ensure_keypair(self.key_path, f"djaploy-sandbox-{self.name}")
            vps.ensure_nspawn_run_dir()
            new = self._reserve(state, names)
            self._prepare_all(state, new, base, pubkey, root_password)
            self._write_known_hosts(state)
            for rec in new:
                vps.start(rec, partial(self._save, state))
            wait_boot.wait_all(
                new, boot_timeout, key_path=str(self.key_path), known_hosts_path=str(self.known_hosts_path),
                root_password=root_password,
            )
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
            os=self.os,
        )

    def _prepare_all(self, state: SandboxState, records: list[HostRecord], base: Path, pubkey: str,
                     root_password: str | None) -> None:
        """Prepare hosts in parallel (update-ca-certificates and host keys take ~1.5 s each)."""
        with ThreadPoolExecutor(max_workers=len(records)) as pool:
            futures = [pool.submit(vps.prepare, rec, base, pubkey, partial(self._save, state), root_password)
                       for rec in records]
            for future in futures:
                future.result()

    def _remove_host(self, state: SandboxState, rec: HostRecord) -> list[str]:
        """Remove one host's pieces; only a fully removed host is dropped from the state."""
        errors = vps.remove(rec)
        if not errors:
            with self._save_lock:
                state.hosts.remove(rec)
                if state.hosts or self.state_path.exists():
                    self._save(state)
                if self.known_hosts_path.exists():
                    self._write_known_hosts(state)
        return errors


def sandbox_hosts(name: str | None = None) -> list[SandboxHost]:
    """Running hosts of a sandbox ($DJAPLOY_SANDBOX_NAME or "demo"); [] if none. Never boots."""
    try:
        return Sandbox(name).status()
    except SandboxError:
        return []
