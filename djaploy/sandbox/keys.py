"""The sandbox's SSH client key and known_hosts file, plus ssh command lines using them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ._run import run


def ensure_keypair(key_path: Path, comment: str) -> str:
    """One ed25519 keypair per sandbox name, made once; returns the public key line."""
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key_path)])
    key_path.chmod(0o600)
    return Path(f"{key_path}.pub").read_text().strip()


def known_hosts_host(address: str, port: int = 22) -> str:
    """The host field OpenSSH looks up: bare address on port 22, else "[address]:port"."""
    return address if port == 22 else f"[{address}]:{port}"


def known_hosts_lines(address: str, host_keys: Iterable[str], port: int = 22) -> list[str]:
    """One line per host key ("type base64"; a trailing comment is dropped)."""
    lines = []
    for key in host_keys:
        parts = key.split()
        lines.append(f"{known_hosts_host(address, port)} {parts[0]} {parts[1]}")
    return lines


def write_known_hosts(path: Path, entries: Iterable[tuple[str, int, Iterable[str]]]) -> None:
    """Rewrite the whole file from the state, atomically, so it never lists a gone host."""
    lines = [line for address, port, keys in entries for line in known_hosts_lines(address, keys, port)]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def ssh_args(
    key_path: str, known_hosts_path: str, *, connect_timeout: int = 10, batch: bool = True
) -> list[str]:
    """ssh options that use only the sandbox's key and known_hosts, with strict checking,
    and ignore the user's ~/.ssh/config so results do not depend on who runs them."""
    args = [
        "ssh",
        "-F",
        "none",
        "-i",
        key_path,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts_path}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"ConnectTimeout={connect_timeout}",
        "-o",
        "LogLevel=ERROR",
    ]
    if batch:
        args += ["-o", "BatchMode=yes"]
    return args
