"""Phase timings: exclusive (an inner phase is not counted twice) and written for bench/ on request."""

from __future__ import annotations

import json
import time

from djaploy import timings


def test_inner_phase_is_subtracted_from_the_outer_one() -> None:
    recorded: dict[str, float] = {}
    with timings.timed_into(recorded, "prepare release"):
        time.sleep(0.02)
        with timings.timed_into(recorded, "migrate"):
            time.sleep(0.05)
    assert recorded["migrate"] >= 0.05
    assert 0.02 <= recorded["prepare release"] < 0.05
    assert set(recorded) == {"prepare release", "migrate"}


def test_repeated_phase_adds_up() -> None:
    recorded: dict[str, float] = {}
    for _ in range(2):
        with timings.timed_into(recorded, "switch"):
            time.sleep(0.01)
    assert recorded["switch"] >= 0.02


def test_timings_file_only_when_asked(tmp_path, monkeypatch) -> None:
    target = tmp_path / "timings.json"
    monkeypatch.delenv(timings.TIMINGS_FILE_VARIABLE, raising=False)
    timings.write_timings_file("deploy", 1.5, {"web1": {"upload": 0.25}})
    assert not target.exists()
    monkeypatch.setenv(timings.TIMINGS_FILE_VARIABLE, str(target))
    monkeypatch.setattr(timings, "PROCESS_PHASES", {"connect": 0.125})
    timings.write_timings_file("deploy", 1.5, {"web1": {"upload": 0.25}})
    data = json.loads(target.read_text())
    assert data["command"] == "deploy"
    assert data["hosts"] == {"web1": {"upload": 0.25}}
    assert data["process"] == {"connect": 0.125}
