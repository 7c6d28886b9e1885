"""djaploy.loadgen against a real HTTP server on 127.0.0.1 (ephemeral port), plus the pure report maths.

The server's version, and whether it answers 500 or drops connections, can be switched mid-run:
that is what a deploy looks like from the outside.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from djaploy import loadgen
from djaploy.loadgen import Load, LoadReport, Sample

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServerState:
    versions: tuple[str, ...] = ("1",)  # more than one: answered in turn, i.e. a mixed fleet
    mode: str = "ok"  # ok | 500 | close (no response at all) | drop_keepalive (close after answering)
    requests: int = 0
    connections: int = 0
    hosts: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like nginx/gunicorn
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40ms delayed-ACK stalls
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            version = state.versions[state.requests % len(state.versions)]
            state.requests += 1
            mode = state.mode
            state.hosts.add(self.headers.get("Host", ""))
        if mode == "close":
            self.close_connection = True
            return
        body = f"{version}\n".encode()
        self.send_response(500 if mode == "500" else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if mode == "drop_keepalive":
            self.close_connection = True  # without a Connection: close header: a stale kept-alive socket

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Site:
    url: str
    state: ServerState


@pytest.fixture
def site() -> Iterator[Site]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ServerState()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}/version/", server.state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- live server ---------------------------------------------------------------------------------


def test_constant_version_all_ok_over_persistent_connections(site: Site) -> None:
    with Load(site.url, clients=4, max_seconds=10) as load:
        time.sleep(0.3)
    report = load.report
    assert report.total >= 4, report.summary()
    assert report.ok == report.total and report.failures == 0 and not report.failure_reasons
    assert report.bodies_in_order == ["1"] and report.version_changes == 0
    assert report.mixed_window_seconds == 0 and report.regressions == 0
    assert report.requests_per_second > 0
    assert 0 < report.latency_p50 <= report.latency_p99 <= report.latency_max
    # No wall-clock limit (noisy machines): the longest gap is a part of the run, never all of it.
    assert 0 <= report.max_gap_seconds() < report.duration_seconds
    assert not report.timed_out and not report.limit_reached
    assert report.total == site.state.requests  # every request recorded, none invented
    assert site.state.connections <= 4  # HTTP/1.1 keep-alive: one connection per client
    assert not load.running


def switch_under_load(site: Site, clients: int) -> LoadReport:
    """The site goes from version 1 to 2 once, halfway through a short load."""
    with Load(site.url, clients=clients) as load:
        time.sleep(0.15)
        site.state.versions = ("2",)
        time.sleep(0.15)
    return load.report


def test_single_switch_is_one_change(site: Site) -> None:
    report = switch_under_load(site, clients=1)
    assert report.bodies_in_order == ["1", "2"], report.summary()
    assert report.version_changes == 1
    assert report.mixed_window_seconds == 0 and report.regressions == 0


def test_single_switch_with_many_clients_has_no_regression(site: Site) -> None:
    report = switch_under_load(site, clients=6)
    assert report.failures == 0
    assert report.bodies_in_order[0] == "1" and report.bodies_in_order[-1] == "2", report.summary()
    assert report.regressions == 0  # nothing served "1" after a "2" had been fully delivered


def edge_slack(report: LoadReport) -> float:
    """How far a measured window may be off the switches: a request in flight at each edge (its
    latency, which grows when the machine is busy), plus a little for the test's own thread."""
    return 2 * report.latency_max + 0.05


def test_flip_flop_counts_every_change(site: Site) -> None:
    with Load(site.url, clients=1) as load:
        time.sleep(0.1)
        first_switch = time.monotonic()
        site.state.versions = ("2",)
        time.sleep(0.1)
        site.state.versions = ("1",)
        time.sleep(0.1)
        last_switch = time.monotonic()
        site.state.versions = ("2",)
        time.sleep(0.1)
    report = load.report
    assert report.bodies_in_order == ["1", "2", "1", "2"], report.summary()
    assert report.version_changes == 3
    assert report.regressions > 0
    # from the first "2" to the last "1": about the time between the first and last switch
    assert abs(report.mixed_window_seconds - (last_switch - first_switch)) < edge_slack(report), report.summary()


def test_mixed_fleet_window(site: Site) -> None:
    with Load(site.url, clients=4) as load:
        time.sleep(0.1)
        mixed_from = time.monotonic()
        site.state.versions = ("1", "2")  # old and new workers both answering
        time.sleep(0.2)
        site.state.versions = ("2",)
        mixed_to = time.monotonic()
        time.sleep(0.1)
    report = load.report
    assert report.bodies_in_order[0] == "1" and report.bodies_in_order[-1] == "2"
    assert report.version_changes >= 3 and report.regressions > 0, report.summary()
    assert abs(report.mixed_window_seconds - (mixed_to - mixed_from)) < edge_slack(report), report.summary()


def test_failures_are_counted_by_reason_and_show_as_a_gap(site: Site) -> None:
    with Load(site.url, clients=2) as load:
        time.sleep(0.1)
        bad_from = time.monotonic()
        site.state.mode = "500"
        time.sleep(0.15)
        site.state.mode = "close"
        time.sleep(0.15)
        site.state.mode = "ok"
        bad_to = time.monotonic()
        time.sleep(0.1)
    report = load.report
    assert report.failure_reasons["500"] > 0, report.summary()
    assert report.failure_reasons["RemoteDisconnected"] > 0, report.summary()
    assert set(report.failure_reasons) == {"500", "RemoteDisconnected"}
    assert report.failures == sum(report.failure_reasons.values())
    assert report.total == report.ok + report.failures and report.ok > 0
    assert report.bodies_in_order == ["1"]  # a 500's body is not a version
    outage = bad_to - bad_from
    assert outage - 0.05 < report.max_gap_seconds() < outage + 0.5, report.summary()
    assert "RemoteDisconnected" in report.summary()


def test_refused_port_fails_without_spinning() -> None:
    with Load(f"http://127.0.0.1:{_free_port()}/", clients=2) as load:
        time.sleep(0.2)
    report = load.report
    assert report.ok == 0 and report.failures == report.total > 0
    assert set(report.failure_reasons) == {"ConnectionRefusedError"}
    assert report.total < 2 * 0.3 / loadgen.ERROR_BACKOFF_SECONDS  # backed off, not a busy loop
    assert report.bodies_in_order == [] and report.version_changes == 0
    assert report.max_gap_seconds() == pytest.approx(report.duration_seconds)


def test_stale_keepalive_is_a_failure_unless_retried(site: Site) -> None:
    site.state.mode = "drop_keepalive"
    with Load(site.url, clients=2) as strict:
        time.sleep(0.2)
    stale = {"RemoteDisconnected", "ConnectionResetError", "BrokenPipeError"}
    assert strict.report.failures > 0 and set(strict.report.failure_reasons) <= stale, strict.report.summary()
    assert strict.report.stale_retries == 0

    with Load(site.url, clients=2, retry_stale=True) as lenient:
        time.sleep(0.2)
    assert lenient.report.failures == 0, lenient.report.summary()
    assert lenient.report.stale_retries > 0 and lenient.report.ok > 10


def test_stops_by_itself_at_max_seconds(site: Site) -> None:
    load = Load(site.url, clients=2, max_seconds=0.3).start()
    assert load.running
    assert load.wait(timeout=3)
    assert not load.running
    report = load.stop()
    assert report.timed_out and not report.limit_reached
    assert report.total > 0 and report.duration_seconds < 3  # it stopped by itself, well before wait() gave up
    assert load.stop() is report and load.report is report


def test_stops_by_itself_at_max_requests(site: Site) -> None:
    load = Load(site.url, clients=2, max_requests=10).start()
    assert load.wait(timeout=3)
    report = load.stop()
    assert report.total == 10 and report.limit_reached and not report.timed_out


def test_host_header(site: Site) -> None:
    with Load(site.url, clients=1, host_header="www.example.test", max_requests=3):
        pass
    with Load(site.url, clients=1, max_requests=3) as load:
        load.wait(timeout=3)
    port = site.url.split(":")[2].split("/")[0]
    assert site.state.hosts == {"www.example.test", f"127.0.0.1:{port}"}


def test_usage_errors() -> None:
    with pytest.raises(ValueError, match="http"):
        Load("https://127.0.0.1/")
    with pytest.raises(ValueError):
        Load("http://127.0.0.1/", clients=0)
    load = Load("http://127.0.0.1/")
    with pytest.raises(RuntimeError, match="stop"):
        load.report


def test_cli_prints_summary_and_fails_on_errors(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert loadgen.main([site.url, "--clients", "2", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "versions 1 (0 changes" in out and "stopped at max_seconds" in out

    site.state.mode = "500"
    assert loadgen.main([site.url, "--clients", "1", "--seconds", "0.1", "--host", "x.test"]) == 1
    assert "500: " in capsys.readouterr().out
    assert "x.test" in site.state.hosts


def test_module_runs_without_django(site: Site) -> None:
    # django made unimportable: loadgen must not need it (bench/ runs it from a bare python)
    code = "import sys, runpy; sys.modules['django'] = None; sys.argv[0] = 'loadgen'; runpy.run_module('djaploy.loadgen', run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-c", code, site.url, "--clients", "1", "--seconds", "0.2"],
        cwd=REPO, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert "requests in" in result.stdout and "0 failed" in result.stdout


# --- report maths on hand-made samples ------------------------------------------------------------


def _ok(start: float, body: str, latency: float = 0.01) -> Sample:
    return Sample(start, latency, "200", True, body)


def test_report_orders_samples_from_all_threads_by_start() -> None:
    # as collected: client A's list, then client B's list
    samples = [_ok(0.0, "1"), _ok(0.2, "2"), _ok(0.4, "2"), _ok(0.1, "1"), _ok(0.3, "2")]
    report = LoadReport.from_samples(samples)
    assert report.bodies_in_order == ["1", "2"] and report.version_changes == 1
    assert [s.start for s in report.samples] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert report.first == 0.0 and report.last == pytest.approx(0.41)
    assert report.requests_per_second == pytest.approx(5 / 0.41)


def test_report_flip_flop_and_mixed_window() -> None:
    samples = [_ok(0.0, "1"), _ok(1.0, "2"), _ok(2.0, "1"), _ok(3.0, "2"), _ok(4.0, "2")]
    report = LoadReport.from_samples(samples)
    assert report.bodies_in_order == ["1", "2", "1", "2"] and report.version_changes == 3
    assert report.mixed_window_seconds == pytest.approx(1.0)  # first "2" at 1.0, last "1" at 2.0
    assert report.regressions == 1


def test_report_overlapping_requests_are_not_regressions() -> None:
    # around the switch: a slow request that started first got the new version
    samples = [_ok(0.0, "1"), _ok(1.00, "2", latency=0.05), _ok(1.01, "1", latency=0.01), _ok(2.0, "2")]
    report = LoadReport.from_samples(samples)
    assert report.version_changes == 3  # ordered by start, as specified
    assert report.mixed_window_seconds == pytest.approx(0.01)
    assert report.regressions == 0  # the "1" started before the "2" had completed


def test_report_failures_latency_and_gap() -> None:
    samples = [
        _ok(0.0, "1", latency=0.01),
        Sample(0.1, 0.02, "502", False, "<html>Bad Gateway</html>"),
        Sample(0.2, 0.5, "ConnectionResetError", False, ""),
        _ok(1.0, "1", latency=0.1),
        _ok(1.2, "1", latency=0.03),
    ]
    report = LoadReport.from_samples(samples, clients=2, url="http://x/")
    assert (report.total, report.ok, report.failures) == (5, 3, 2)
    assert report.failure_reasons == {"502": 1, "ConnectionResetError": 1}
    assert report.bodies_in_order == ["1"]
    assert report.latency_p50 == pytest.approx(0.03)
    assert report.latency_p99 == pytest.approx(0.5) and report.latency_max == pytest.approx(0.5)
    assert report.max_gap_seconds() == pytest.approx(1.1 - 0.01)  # ok at 0.01, next ok at 1.1


def test_report_gap_counts_the_edges() -> None:
    samples = [Sample(0.0, 0.01, "502", False, ""), _ok(2.0, "1"), Sample(2.1, 3.0, "TimeoutError", False, "")]
    assert LoadReport.from_samples(samples).max_gap_seconds() == pytest.approx(5.1 - 2.01)
    empty = LoadReport.from_samples([])
    assert (empty.total, empty.requests_per_second, empty.max_gap_seconds()) == (0, 0.0, 0.0)
    assert empty.bodies_in_order == [] and empty.version_changes == 0
    assert "0 requests" in empty.summary()
