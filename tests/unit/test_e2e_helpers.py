"""The end-to-end suite's own judges, offline: its verdict on a version switch (hand-made
samples: a clean switch passes, each way a switch goes wrong fails) and the HTTPS load's one
retry (scripted connections: the keep-alive race is retried once, nothing else is)."""

from __future__ import annotations

import http.client
import ssl

import pytest

from djaploy.loadgen import LoadReport, Sample
from tests.e2e.conftest import assert_one_clean_switch
from tests.e2e.https_client import answer


def _ok(start: float, body: str, latency: float = 0.1) -> Sample:
    return Sample(start, latency, "200", True, body)


def test_a_clean_switch_passes_even_when_the_backlog_answers_out_of_start_order() -> None:
    # "1" started at 1.05 but answered late, overlapping the first "2": no request flipped back.
    samples = [_ok(0.0, "1"), _ok(1.0, "2", latency=0.2), _ok(1.05, "1", latency=0.3), _ok(1.5, "2")]
    assert LoadReport.from_samples(samples).version_changes == 3  # what start order alone would say
    assert_one_clean_switch(LoadReport.from_samples(samples), "1", "2")


@pytest.mark.parametrize("samples, message", [
    ([_ok(0.0, "1"), _ok(1.0, "2"), _ok(1.5, "1"), _ok(2.0, "2")], "requests saw 1 again after 2 was served"),
    ([_ok(0.0, "1"), _ok(1.0, "3"), _ok(2.0, "2")], "'3'"),
    ([_ok(0.0, "1"), Sample(0.5, 0.1, "502", False, ""), _ok(1.0, "2")], "502"),
    ([_ok(0.0, "2"), _ok(1.0, "1"), _ok(2.0, "2")], "'2', '1', '2'"),
    ([_ok(0.0, "1"), _ok(1.0, "1")], "'1'"),
])
def test_a_switch_that_flips_back_mixes_in_another_version_or_fails_requests_is_refused(
        samples: list[Sample], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_one_clean_switch(LoadReport.from_samples(samples), "1", "2")


class FakeConnection:
    """An http.client connection whose answers are scripted: a response, or an error to raise."""

    def __init__(self, *outcomes: object, reused: bool = True) -> None:
        self.outcomes = list(outcomes)
        self.sock: object | None = object() if reused else None
        self.requests = 0

    def request(self, method: str, path: str) -> None:
        self.requests += 1

    def getresponse(self) -> object:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        self.sock = object()
        return outcome

    def close(self) -> None:
        self.sock = None


def test_the_keep_alive_race_is_retried_once_on_a_new_connection() -> None:
    connection = FakeConnection(http.client.RemoteDisconnected("closed"), "answer")
    assert answer(connection, "/version/") == ("answer", True)  # type: ignore[arg-type]
    assert connection.requests == 2
    assert answer(FakeConnection("answer"), "/version/") == ("answer", False)  # type: ignore[arg-type]


@pytest.mark.parametrize("connection", [
    FakeConnection(ssl.SSLEOFError(), ConnectionResetError("again"), "never reached"),  # the retry fails too
    FakeConnection(ConnectionResetError("fresh"), "never reached", reused=False),  # not a reused connection
    FakeConnection(TimeoutError("slow"), "never reached"),  # not the race
], ids=["retry-fails", "new-connection", "other-error"])
def test_anything_else_is_not_retried_and_fails_the_request(connection: FakeConnection) -> None:
    with pytest.raises(OSError):
        answer(connection, "/version/")  # type: ignore[arg-type]
    assert connection.outcomes == ["never reached"]
