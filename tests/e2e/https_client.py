"""HTTPS (and plain HTTP) clients for the end-to-end tests: verified requests to a sandbox host
by its address, with SNI and Host for a test domain (no DNS needed), and HTTPS load.

Load: clients keep connections alive like browsers. A graceful nginx reload closes idle
kept-alive connections; a request sent on a reused connection that the server closed before
answering anything (the keep-alive race) is retried once at once on a new connection, which is
what browsers do silently. Those are counted apart (stale retries) from real failures, and both
are printed. Nothing else is retried: an error on a new connection, an error after the answer
began, or a retry that fails again is a failed request.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Self

from djaploy.loadgen import LoadReport, Sample

#: The keep-alive race as the client sees it: the server closed the reused connection before
#: the status line of its answer (a reset, a broken pipe, or the end of the TLS stream).
STALE_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address` with SNI, Host and certificate checks for the domain (no DNS needed)."""

    def __init__(self, domain: str, address: str, context: ssl.SSLContext, timeout: float = 10) -> None:
        super().__init__(domain, 443, context=context, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def https_get(address: str, domain: str, path: str, root: Path) -> tuple[int, str, dict]:
    """(status, body, the server certificate as Python's ssl reads it) after full verification."""
    connection = PinnedHTTPSConnection(domain, address, ssl.create_default_context(cafile=str(root)))
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
        return response.status, body, connection.sock.getpeercert()
    finally:
        connection.close()


def http_get_raw(address: str, domain: str, path: str) -> tuple[int, str | None, str]:
    """Plain HTTP without following redirects: (status, Location, body)."""
    connection = http.client.HTTPConnection(address, 80, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": domain})
        response = connection.getresponse()
        return response.status, response.getheader("Location"), response.read().decode(errors="replace")
    finally:
        connection.close()


def answer(connection: http.client.HTTPConnection, path: str) -> tuple[http.client.HTTPResponse, bool]:
    """GET `path` up to the status line and headers, and whether that took the one retry allowed:
    for the keep-alive race only (STALE_ERRORS on a reused connection), on a new connection."""
    reused = connection.sock is not None
    try:
        connection.request("GET", path)
        return connection.getresponse(), False
    except STALE_ERRORS:
        if not reused:
            raise
    connection.close()  # the request below opens a new connection (http.client auto_open)
    connection.request("GET", path)
    return connection.getresponse(), True


class HttpsLoad:
    """Clients in threads GETting one HTTPS path over kept-alive connections; bounded in time.

    At most one retry per request, and only for the keep-alive race (see the module docstring):
    answered then, it counts as a stale retry; failing again, as a failure.
    """

    def __init__(self, address: str, domain: str, path: str, root: Path, clients: int = 6, max_seconds: float = 240) -> None:
        self.address, self.domain, self.path, self.clients = address, domain, path, clients
        self.context = ssl.create_default_context(cafile=str(root))
        self.deadline = 0.0
        self.max_seconds = max_seconds
        self.stop_event = threading.Event()
        self.samples: list[list[Sample]] = [[] for _ in range(clients)]
        self.stale = [0] * clients
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self) -> Self:
        self.deadline = time.monotonic() + self.max_seconds
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(15)

    @property
    def report(self) -> LoadReport:
        samples = [sample for per_client in self.samples for sample in per_client]
        return LoadReport.from_samples(samples, url=f"https://{self.domain}{self.path}", clients=self.clients,
                                       stale_retries=sum(self.stale))

    def _client(self, index: int) -> None:
        connection = PinnedHTTPSConnection(self.domain, self.address, self.context)
        try:
            while not self.stop_event.is_set() and time.monotonic() < self.deadline:
                start = time.monotonic()
                try:
                    response, retried = answer(connection, self.path)
                    status, body = response.status, response.read().decode(errors="replace").strip()
                    self.stale[index] += retried
                except Exception as exc:  # noqa: BLE001 - every transport error is a failed request
                    self.samples[index].append(Sample(start, time.monotonic() - start, type(exc).__name__, False, ""))
                    connection.close()
                    self.stop_event.wait(0.01)
                    continue
                self.samples[index].append(Sample(start, time.monotonic() - start, str(status), 200 <= status < 300, body[:200]))
        finally:
            connection.close()
