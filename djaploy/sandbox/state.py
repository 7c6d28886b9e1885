"""state.json: everything `down` needs to undo `up`, written atomically after every step.

Each resource's name or path is recorded *before* it is created, so a crash at any point
leaves a state from which `down` can still find and remove what exists.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from . import settings
from .procs import ProcRef
from .rootfs import RootfsPaths

STATE_VERSION = 1


@dataclass
class HostRecord:
    """One VPS as recorded on disk (richer than the public SandboxHost)."""

    name: str
    index: int  # 1-based position in the sandbox: vps1, vps2 ...
    subnet: str
    address: str
    host_side_address: str
    netns: str
    veth_host: str
    veth_peer: str
    machine: str
    host_dir: str
    rootfs: RootfsPaths | None = None
    nspawn: ProcRef | None = None
    tinyproxy: ProcRef | None = None
    host_keys: list[str] = field(default_factory=list)
    ssh_port: int = 22
    root_password_only: bool = False  # booted like a provider's VPS: root with a password, no key, no other user
    os: str = settings.DEFAULT_OS  # the release it runs ("debian-13"); states written before --os ran debian-12

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(self.subnet)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rootfs"] = self.rootfs.to_dict() if self.rootfs else None
        data["nspawn_pid"] = self.nspawn.pid if self.nspawn else None
        data["tinyproxy_pid"] = self.tinyproxy.pid if self.tinyproxy else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostRecord:
        data = dict(data)
        data.pop("nspawn_pid", None)
        data.pop("tinyproxy_pid", None)
        rootfs = data.pop("rootfs", None)
        nspawn = data.pop("nspawn", None)
        tinyproxy = data.pop("tinyproxy", None)
        return cls(
            **data,
            rootfs=RootfsPaths.from_dict(rootfs) if rootfs else None,
            nspawn=ProcRef(**nspawn) if nspawn else None,
            tinyproxy=ProcRef(**tinyproxy) if tinyproxy else None,
        )


@dataclass
class SandboxState:
    name: str
    key_path: str
    known_hosts_path: str
    hosts: list[HostRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "key_path": self.key_path,
            "known_hosts_path": self.known_hosts_path,
            "hosts": [h.to_dict() for h in self.sorted_hosts()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxState:
        return cls(
            name=data["name"],
            key_path=data["key_path"],
            known_hosts_path=data["known_hosts_path"],
            hosts=[HostRecord.from_dict(h) for h in data.get("hosts", [])],
        )

    def host(self, name: str) -> HostRecord | None:
        return next((h for h in self.hosts if h.name == name), None)

    def sorted_hosts(self) -> list[HostRecord]:
        return sorted(self.hosts, key=lambda h: h.index)


def load_state(path: Path) -> SandboxState | None:
    """The recorded state, or None if there is none (or it cannot be read by this user)."""
    try:
        return SandboxState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_state(path: Path, state: SandboxState) -> None:
    """Write to a temp file in the same dir, fsync, rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(state.to_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def all_recorded_subnets(runtime_root: Path) -> list[IPv4Network]:
    """Subnets recorded by every sandbox on this machine (running or not yet cleaned up)."""
    nets: list[IPv4Network] = []
    for state_file in runtime_root.glob("*/state.json"):
        state = load_state(state_file)
        if state:
            nets.extend(h.network for h in state.hosts)
    return nets
