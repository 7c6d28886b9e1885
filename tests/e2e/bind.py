"""A real authoritative DNS server (Debian's bind9 `named`) for one test zone, with a TSIG key
that may update it (RFC 2136): what certbot's dns-rfc2136 plugin talks to.

It listens on one address and port only: the sandbox VPS link's host side, which both the
VPS (certbot sends its updates) and Pebble on this machine (it resolves the TXT records) reach.
Everything lives in a temp folder; `stop()` ends the one process this object started.
Needs the Debian packages `bind9` (named, tsig-keygen) and `dnsutils` (dig).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

KEY_NAME = "djaploy-e2e"
START_TIMEOUT = 15.0


def available() -> str | None:
    """Why named cannot run here, or None."""
    for tool, package in (("named", "bind9"), ("tsig-keygen", "bind9"), ("dig", "dnsutils")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package}; scripts/setup.sh does)"
    return None


def free_port(address: str) -> int:
    """A port free for both TCP and UDP on `address` (DNS uses both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
                return port


class AuthoritativeDns:
    """named serving `zone` on address:port; updates allowed with the TSIG key `secret`."""

    def __init__(self, zone: str, address: str, workdir: Path) -> None:
        self.zone = zone.rstrip(".")
        self.address = address
        self.workdir = Path(workdir)
        self.port = free_port(address)
        self.secret = ""
        self._process: subprocess.Popen | None = None
        self._log = None

    @property
    def server(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        key = subprocess.run(["tsig-keygen", "-a", "hmac-sha256", KEY_NAME], check=True, capture_output=True,
                             text=True).stdout
        self.secret = re.search(r'secret "([^"]+)"', key).group(1)
        (self.workdir / "key.conf").write_text(key)
        (self.workdir / "zone.db").write_text(
            f"$TTL 5\n@ IN SOA ns.{self.zone}. hostmaster.{self.zone}. 1 60 60 600 5\n"
            f"@ IN NS ns.{self.zone}.\nns IN A {self.address}\n")
        folder = self.workdir
        (folder / "named.conf").write_text(f'''include "{folder}/key.conf";
options {{
    directory "{folder}";
    pid-file "{folder}/named.pid";
    listen-on port {self.port} {{ {self.address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
controls {{ }};
zone "{self.zone}" {{
    type primary;
    file "{folder}/zone.db";
    journal "{folder}/zone.db.jnl";
    allow-update {{ key "{KEY_NAME}"; }};
}};
''')
        subprocess.run(["named-checkconf", str(folder / "named.conf")], check=True, capture_output=True, text=True)
        self._log = open(folder / "named.log", "w")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(["named", "-g", "-u", "root", "-c", str(folder / "named.conf")], cwd=folder,
                                         stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while self.query("SOA", self.zone) == "":
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"named did not serve {self.zone}:\n{self.log_tail()}")
            time.sleep(0.2)

    def query(self, kind: str, name: str) -> str:
        """dig's short answer from this server ('' when there is none)."""
        result = subprocess.run(["dig", "+short", "+norecurse", "+time=1", "+tries=1", "-p", str(self.port),
                                 f"@{self.address}", kind, name], capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    def stop(self) -> None:
        """Stop the process this object started (by its own handle), then close its log."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "named.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
