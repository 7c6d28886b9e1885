"""Rules for the whole suite: a missing prerequisite fails under CI instead of skipping, and
every skip is written down so `.ci/run` can refuse the ones nobody expected.

A skipped test proves nothing: on a developer's laptop without root a skip says "not run here";
in CI (`CI` set) the machine is meant to have everything, so the same gap is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

#: Where the skip hooks write one line per skipped test, `<node id>\t<reason>` (set by .ci/run).
SKIP_LOG_VARIABLE = "DJAPLOY_SKIP_LOG"

_skips: list[tuple[str, str]] = []


def missing_prerequisite(reason: str) -> NoReturn:
    """Skip a test whose prerequisite is missing here; under CI, fail with the same reason."""
    __tracebackhide__ = True  # report the test that needs it, not this line
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI must run this test, but: {reason}", pytrace=False)
    pytest.skip(reason)


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}"
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _record(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped:
        _skips.append((report.nodeid, " ".join(_skip_reason(report).split())))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: its reports reach the controller, which writes the whole log
    path = os.environ.get(SKIP_LOG_VARIABLE)
    if path:
        Path(path).write_text("".join(f"{nodeid}\t{reason}\n" for nodeid, reason in _skips))
