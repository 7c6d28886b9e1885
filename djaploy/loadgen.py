"""Continuous HTTP load for proving zero-downtime deploys (end-to-end tests and bench/).

Stdlib only (threading + http.client) so it runs anywhere the tests run, without root and without
Django. Every request is recorded; the report is computed afterwards from the samples, sorted by
request start time across all client threads, so a version flip-flop (1, 2, 1, 2) is counted as
three changes instead of being hidden by per-thread ordering.

    with Load(url="http://10.231.1.2/version/", clients=8) as load:
        deploy()
    report = load.report
    assert report.failures == 0 and report.version_changes == 1

Concurrent requests whose lifetimes overlap can be answered in either order, so near a switch
`version_changes` (ordered by start) can show a spurious flip with many clients. `regressions`
counts only real ones: a request that saw an older body although a request that saw a newer body
had fully completed before it started.
"""

from __future__ import annotations

import argparse
import http.client
import math
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

MAX_BODY_CHARS = 200
# After a transport error, pause briefly so a refused port does not turn into a busy loop that
# records millions of identical failures.
ERROR_BACKOFF_SECONDS = 0.01
# Errors that mean "the server closed this kept-alive connection before answering": what browsers
# and urllib3 silently retry for GET. Only retried when Load(retry_stale=True).
_STALE_ERRORS: tuple[type[BaseException], ...] = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Sample(NamedTuple):
    """One request. A NamedTuple keeps a million of them cheap in memory."""

    start: float  # time.monotonic() when the request was started
    latency: float  # seconds until the full response was read or the error was raised
    status: str  # "200", "502", ... or the exception class name, e.g. "ConnectionRefusedError"
    ok: bool  # 2xx
    body: str  # stripped, at most MAX_BODY_CHARS; "" for transport errors

    @property
    def end(self) -> float:
        return self.start + self.latency


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: always a latency that was actually measured."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _collapse(bodies: list[str]) -> list[str]:
    collapsed: list[str] = []
    for body in bodies:
        if not collapsed or collapsed[-1] != body:
            collapsed.append(body)
    return collapsed


def _regressions(ok_by_start: list[Sample]) -> int:
    """Requests that saw an older body after a request with a newer body had completed.

    "Older/newer" is the order in which bodies first appeared. Overlapping requests are never
    counted: the server may legitimately answer concurrent requests in either order.
    """
    rank: dict[str, int] = {}
    for sample in ok_by_start:
        rank.setdefault(sample.body, len(rank))
    by_end = sorted(ok_by_start, key=lambda s: s.end)
    newest_completed = -1
    j = 0
    count = 0
    for sample in ok_by_start:
        while j < len(by_end) and by_end[j].end < sample.start:
            newest_completed = max(newest_completed, rank[by_end[j].body])
            j += 1
        if rank[sample.body] < newest_completed:
            count += 1
    return count


@dataclass
class LoadReport:
    """What the clients saw. Times are time.monotonic() seconds; latencies are seconds."""

    url: str
    clients: int
    total: int
    ok: int
    failures: int
    failure_reasons: Counter[str]
    requests_per_second: float
    latency_p50: float
    latency_p99: float
    latency_max: float
    bodies_in_order: list[str]
    version_changes: int
    mixed_window_seconds: float
    regressions: int
    first: float  # start of the first request
    last: float  # end of the last request
    duration_seconds: float
    timed_out: bool  # stopped by itself at max_seconds rather than by stop()
    limit_reached: bool  # stopped by itself at max_requests
    stale_retries: int  # requests answered only after a retry because the server had closed the kept-alive connection
    samples: list[Sample] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_samples(
        cls,
        samples: list[Sample],
        *,
        url: str = "",
        clients: int = 0,
        timed_out: bool = False,
        limit_reached: bool = False,
        stale_retries: int = 0,
    ) -> LoadReport:
        """Compute the report; pure, so the arithmetic is unit-tested on hand-made samples."""
        ordered = sorted(samples, key=lambda s: s.start)
        ok_samples = [s for s in ordered if s.ok]
        failures = [s for s in ordered if not s.ok]
        latencies = sorted(s.latency for s in ordered)
        first = ordered[0].start if ordered else 0.0
        last = max((s.end for s in ordered), default=0.0)
        duration = max(0.0, last - first)
        bodies = _collapse([s.body for s in ok_samples])
        mixed = 0.0
        if len(bodies) > 1:
            new = bodies[-1]
            first_new = min(s.start for s in ok_samples if s.body == new)
            last_old = max(s.start for s in ok_samples if s.body != new)
            mixed = max(0.0, last_old - first_new)
        return cls(
            url=url,
            clients=clients,
            total=len(ordered),
            ok=len(ok_samples),
            failures=len(failures),
            failure_reasons=Counter(s.status for s in failures),
            requests_per_second=len(ordered) / duration if duration > 0 else 0.0,
            latency_p50=_percentile(latencies, 0.50),
            latency_p99=_percentile(latencies, 0.99),
            latency_max=latencies[-1] if latencies else 0.0,
            bodies_in_order=bodies,
            version_changes=max(0, len(bodies) - 1),
            mixed_window_seconds=mixed,
            regressions=_regressions(ok_samples),
            first=first,
            last=last,
            duration_seconds=duration,
            timed_out=timed_out,
            limit_reached=limit_reached,
            stale_retries=stale_retries,
            samples=ordered,
        )

    def max_gap_seconds(self) -> float:
        """Longest time in which no request completed successfully: shows a restart stall.

        Measured from the first request's start to the last request's end, so an outage at the
        very beginning or end of the run counts too.
        """
        if not self.samples:
            return 0.0
        points = [self.first, *sorted(s.end for s in self.samples if s.ok), self.last]
        return max(b - a for a, b in zip(points, points[1:]))

    def summary(self) -> str:
        """One line for logs, assertion messages and bench/ output."""
        reasons = ", ".join(f"{reason}: {count}" for reason, count in self.failure_reasons.most_common())
        failed = f"{self.failures} failed" + (f" ({reasons})" if reasons else "")
        versions = " -> ".join(self.bodies_in_order[:6]) or "-"
        if len(self.bodies_in_order) > 6:
            versions += f" -> ... ({len(self.bodies_in_order)} in all)"
        parts = [
            f"{self.total} requests in {self.duration_seconds:.2f}s ({self.requests_per_second:.0f}/s, {self.clients} clients)",
            f"{self.ok} ok, {failed}",
            f"latency p50 {self.latency_p50 * 1000:.1f}ms p99 {self.latency_p99 * 1000:.1f}ms max {self.latency_max * 1000:.1f}ms",
            f"versions {versions} ({self.version_changes} changes, {self.regressions} regressions, mixed {self.mixed_window_seconds:.3f}s)",
            f"max gap {self.max_gap_seconds():.3f}s",
        ]
        if self.stale_retries:
            parts.append(f"{self.stale_retries} stale keep-alive retries")
        if self.timed_out:
            parts.append("stopped at max_seconds")
        if self.limit_reached:
            parts.append("stopped at max_requests")
        return "; ".join(parts)


class Load:
    """Clients in threads, each GETting one URL in a loop over a persistent HTTP/1.1 connection.

    Bounded by design: it stops at stop(), at max_seconds, or after max_requests in total,
    whichever comes first. A request can outlast the deadline by at most `timeout`.
    """

    def __init__(
        self,
        url: str,
        clients: int = 8,
        host_header: str | None = None,
        timeout: float = 10.0,
        max_seconds: float = 600,
        max_requests: int = 1_000_000,
        retry_stale: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Load only speaks plain http://host[:port]/path, got {url!r}")
        if clients < 1 or max_requests < 1:
            raise ValueError("clients and max_requests must be at least 1")
        if timeout <= 0 or max_seconds <= 0:
            raise ValueError("timeout and max_seconds must be positive")
        self.url = url
        self.clients = clients
        self.host_header = host_header
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.retry_stale = retry_stale
        self._host = parts.hostname
        self._port = parts.port or 80
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Host": host_header} if host_header else {}
        self._per_client_cap = math.ceil(max_requests / clients)
        self._stop = threading.Event()
        self._timed_out = threading.Event()
        self._limit_reached = threading.Event()
        self._threads: list[threading.Thread] = []
        self._samples: list[list[Sample]] = []
        self._stale_retries: list[int] = []
        self._report: LoadReport | None = None
        self._deadline = 0.0

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def report(self) -> LoadReport:
        if self._report is None:
            raise RuntimeError("no report yet: call stop() (or leave the with-block) first")
        return self._report

    def start(self) -> Load:
        if self._threads:
            raise RuntimeError("a Load can only be started once")
        self._deadline = time.monotonic() + self.max_seconds
        self._samples = [[] for _ in range(self.clients)]
        self._stale_retries = [0] * self.clients
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), name=f"loadgen-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the clients stopped by themselves (max_seconds/max_requests); True if they did."""
        limit = time.monotonic() + (timeout if timeout is not None else self.max_seconds + self.timeout + 1)
        for thread in self._threads:
            thread.join(max(0.0, limit - time.monotonic()))
        return not self.running

    def stop(self) -> LoadReport:
        """Stop the clients, wait for in-flight requests (at most `timeout`), and build the report."""
        if self._report is not None:
            return self._report
        self._stop.set()
        limit = time.monotonic() + self.timeout + 1
        for thread in self._threads:
            thread.join(max(0.0, limit - time.monotonic()))
        samples = [sample for per_client in self._samples for sample in list(per_client)]
        self._report = LoadReport.from_samples(
            samples,
            url=self.url,
            clients=self.clients,
            timed_out=self._timed_out.is_set(),
            limit_reached=self._limit_reached.is_set(),
            stale_retries=sum(self._stale_retries),
        )
        return self._report

    def _fetch(self, conn: http.client.HTTPConnection, retry_stale: bool) -> tuple[int, bytes, bool]:
        """GET once; with retry_stale, once more on a fresh connection if the server closed the
        kept-alive one before answering (never after a status line arrived)."""
        retried = False
        try:
            conn.request("GET", self._path, headers=self._headers)
            response = conn.getresponse()
        except _STALE_ERRORS:
            if not retry_stale:
                raise
            conn.close()
            retried = True
            conn.request("GET", self._path, headers=self._headers)
            response = conn.getresponse()
        return response.status, response.read(), retried

    def _client(self, index: int) -> None:
        out = self._samples[index]
        bodies: dict[str, str] = {}  # one str object per distinct body, not one per request
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            while True:
                if self._stop.is_set():
                    return
                if time.monotonic() >= self._deadline:
                    self._timed_out.set()
                    return
                if len(out) >= self._per_client_cap:
                    self._limit_reached.set()
                    return
                reused = conn.sock is not None
                start = time.monotonic()
                try:
                    status, raw, retried = self._fetch(conn, self.retry_stale and reused)
                except Exception as exc:  # noqa: BLE001 - every transport error is a failed request
                    out.append(Sample(start, time.monotonic() - start, type(exc).__name__, False, ""))
                    conn.close()  # the next request reconnects (http.client auto_open)
                    self._stop.wait(ERROR_BACKOFF_SECONDS)
                    continue
                self._stale_retries[index] += retried
                text = raw.decode("utf-8", "replace").strip()[:MAX_BODY_CHARS]
                body = bodies.setdefault(text, text)
                out.append(Sample(start, time.monotonic() - start, str(status), 200 <= status < 300, body))
        finally:
            conn.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m djaploy.loadgen URL`: load a URL for a while and print the summary."""
    parser = argparse.ArgumentParser(prog="python -m djaploy.loadgen", description=main.__doc__)
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--host", default=None, help="Host header to send (e.g. the site's domain)")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    load = Load(args.url, clients=args.clients, host_header=args.host, timeout=args.timeout, max_seconds=args.seconds)
    load.start()
    try:
        load.wait()
    except KeyboardInterrupt:
        pass
    report = load.stop()
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
