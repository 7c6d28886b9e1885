"""Pebble (Let's Encrypt's ACME test server) and its mock DNS, run for one sandbox VPS.

The sandbox VPS reaches only its own link's host side, so Pebble listens there
(``https://<host_side_address>:14000/dir``) with a TLS certificate made here by openssl.
pebble-challtestsrv answers Pebble's DNS queries on loopback: A records for the test domains
point at the VPS, so Pebble validates HTTP-01 / TLS-ALPN-01 against the VPS's real ports 80/443.
Pebble keeps everything in memory: every start has a new issuing root (`root_pem`).

Recipe and pitfalls: ../shared/acme-notes.md. Needs the Debian package `pebble` and openssl.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Self

ACME_PORT = 14000
MANAGEMENT_PORT = 15000
START_TIMEOUT = 15.0
#: Pebble's certificates live a week: under certbot's 30 days, so they are always due for renewal.
VALIDITY_SECONDS = 7 * 24 * 3600
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def available() -> str | None:
    """Why Pebble cannot run here, or None."""
    for tool in ("pebble", "pebble-challtestsrv", "openssl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install pebble openssl)"
    return None


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True)


def make_tls_certificate(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for `address` signed by it: (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *curve, "-keyout", "tls-ca.key", "-out", "tls-ca.pem", "-days", "2",
             "-subj", "/CN=djaploy e2e Pebble TLS CA", cwd=directory)
    _openssl("req", *curve, "-keyout", "pebble.key", "-out", "pebble.csr", "-subj", "/CN=pebble", cwd=directory)
    (directory / "pebble.ext").write_text(
        f"subjectAltName=IP:{address},IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl("x509", "-req", "-in", "pebble.csr", "-CA", "tls-ca.pem", "-CAkey", "tls-ca.key", "-CAcreateserial",
             "-out", "pebble.pem", "-days", "2", "-extfile", "pebble.ext", cwd=directory)
    return directory / "tls-ca.pem", directory / "pebble.pem", directory / "pebble.key"


class Pebble:
    """Pebble + challtestsrv bound for one VPS; start() and stop() (also a context manager).
    With `dns_server` ("address:port", a real authoritative server), Pebble resolves there and
    no challtestsrv runs."""

    def __init__(self, host_side_address: str, workdir: Path, dns_server: str | None = None) -> None:
        self.address = host_side_address
        self.workdir = Path(workdir)
        self.dns_server = dns_server
        self.dns_port = _free_loopback_port()
        self.challtestsrv_port = _free_loopback_port()
        self._processes: list[subprocess.Popen] = []
        self._logs: list = []
        self.tls_ca = self.workdir / "tls-ca.pem"

    @property
    def directory_url(self) -> str:
        return f"https://{self.address}:{ACME_PORT}/dir"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self.tls_ca, cert, key = make_tls_certificate(self.workdir, self.address)
        config = {"pebble": {
            "listenAddress": f"{self.address}:{ACME_PORT}",
            "managementListenAddress": f"{self.address}:{MANAGEMENT_PORT}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "certificateValidityPeriod": VALIDITY_SECONDS,
        }}
        config_file = self.workdir / "pebble-config.json"
        config_file.write_text(json.dumps(config))
        environment = {k: v for k, v in os.environ.items() if k not in _PROXY_VARIABLES}
        try:
            if self.dns_server is None:
                self._start_challtestsrv(environment)
            self._spawn("pebble", ["pebble", "-config", str(config_file),
                                   "-dnsserver", self.dns_server or f"127.0.0.1:{self.dns_port}"], {
                **environment,
                "PEBBLE_VA_NOSLEEP": "1",  # no random wait of up to 15 s before each validation
                "PEBBLE_WFE_NONCEREJECT": "0",
                "PEBBLE_AUTHZREUSE": "0",
            })
            self._wait_port(self.address, ACME_PORT)
            self._wait_port(self.address, MANAGEMENT_PORT)
        except BaseException:
            self.stop()
            raise

    def _start_challtestsrv(self, environment: dict[str, str]) -> None:
        self._spawn("challtestsrv", [
            "pebble-challtestsrv", "-management", f"127.0.0.1:{self.challtestsrv_port}",
            "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
            # No default answers: challtestsrv would send AAAA ::1 and Pebble would validate itself.
            "-defaultIPv4", "", "-defaultIPv6", "",
        ], environment)
        self._wait_port("127.0.0.1", self.challtestsrv_port)

    def stop(self) -> None:
        """Stop the processes this object started (by their own handles), then close the logs."""
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def add_a_record(self, domain: str, address: str) -> None:
        """Make the mock DNS answer `domain` with `address` (Pebble validates there)."""
        body = json.dumps({"host": domain.rstrip(".") + ".", "addresses": [address]})
        connection = http.client.HTTPConnection("127.0.0.1", self.challtestsrv_port, timeout=5)
        try:
            connection.request("POST", "/add-a", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, f"challtestsrv /add-a answered {response.status}"
        finally:
            connection.close()

    def root_pem(self) -> str:
        """The root that signs this run's certificates (new on every start)."""
        context = ssl.create_default_context(cafile=str(self.tls_ca))
        connection = http.client.HTTPSConnection(self.address, MANAGEMENT_PORT, timeout=10, context=context)
        try:
            connection.request("GET", "/roots/0")
            response = connection.getresponse()
            text = response.read().decode()
            assert response.status == 200 and "BEGIN CERTIFICATE" in text, f"/roots/0: {response.status} {text[:200]}"
            return text
        finally:
            connection.close()

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("challtestsrv", "pebble"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                out.append(f"--- {name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def _spawn(self, name: str, argv: list[str], environment: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        self._processes.append(subprocess.Popen(argv, cwd=self.workdir, env=environment, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def _wait_port(self, address: str, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited with {process.returncode}\n{self.log_tail()}")
            try:
                with socket.create_connection((address, port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nothing listens on {address}:{port} after {START_TIMEOUT}s\n{self.log_tail()}")
