"""One tinyproxy per VPS on the host end of its veth: the VPS's only way to package mirrors."""

from __future__ import annotations

import socket
import time
from ipaddress import IPv4Network
from pathlib import Path

from . import procs, settings
from ._run import tail
from .errors import SandboxError


def proxy_url(listen: str, port: int = settings.PROXY_PORT) -> str:
    return f"http://{listen}:{port}"


def tinyproxy_conf(listen: str, allow: IPv4Network, port: int = settings.PROXY_PORT) -> str:
    """Listens only on this VPS's host-side address and only serves that VPS's /30."""
    return (
        "User nobody\n"
        "Group nogroup\n"
        f"Port {port}\n"
        f"Listen {listen}\n"
        "Timeout 600\n"
        "MaxClients 100\n"
        "LogLevel Notice\n"
        f"Allow {allow}\n"
        "ConnectPort 443\n"
        "ConnectPort 80\n"
    )


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_proxy(conf_path: Path, log_path: Path, listen: str, allow: IPv4Network) -> procs.ProcRef:
    """Write the config, start tinyproxy in the foreground (-d) and wait until it listens."""
    conf_path.write_text(tinyproxy_conf(listen, allow))
    try:
        ref = procs.spawn(["tinyproxy", "-d", "-c", str(conf_path)], log_path)
    except FileNotFoundError as exc:
        raise SandboxError("tinyproxy is not installed: apt-get install -y tinyproxy") from exc
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _listening(listen, settings.PROXY_PORT):
            return ref
        if not procs.is_alive(ref):
            break
        time.sleep(0.1)
    procs.stop(ref, 2)
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    raise SandboxError(f"tinyproxy did not start on {listen}:{settings.PROXY_PORT}:\n{tail(text)}")
