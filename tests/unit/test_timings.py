"""Phase timings: exclusive (an inner phase is not counted twice), in the order phases began, and
written for bench/ only when asked. A hand-wound clock: no test depends on how fast this machine is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from djaploy import timings
from djaploy.modules.core import Module as Core
from djaploy.strategies.common import run_hooks
from tests.unit.conftest import make_ctx


class Clock:
    """time.monotonic stand-in that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_inner_phase_is_subtracted_from_the_outer_one() -> None:
    clock, recorded = Clock(), {}
    with timings.timed_into(recorded, "prepare release", clock=clock):
        clock.advance(0.25)
        with timings.timed_into(recorded, "migrate", clock=clock):
            clock.advance(1.5)
        clock.advance(0.25)
    assert recorded == {"prepare release": 0.5, "migrate": 1.5}
    assert list(recorded) == ["prepare release", "migrate"]  # the order they began


def test_repeated_phase_adds_up_and_earlier_phases_stay() -> None:
    clock, recorded = Clock(), {"upload": 2.0}
    for _ in range(2):
        with timings.timed_into(recorded, "switch", clock=clock):
            clock.advance(0.125)
    assert recorded == {"upload": 2.0, "switch": 0.25}


def test_a_failing_phase_is_still_counted() -> None:
    clock, recorded = Clock(), {}
    with pytest.raises(RuntimeError), timings.timed_into(recorded, "health gate", clock=clock):
        clock.advance(3.0)
        raise RuntimeError("gate failed")
    assert recorded == {"health gate": 3.0}


def test_a_new_command_forgets_the_last_ones_process_phases() -> None:
    timings.PROCESS_PHASES["connect"] = 9.0
    timings.mark_handle_started()
    assert timings.PROCESS_PHASES == {}
    assert len(timings.HANDLE_STARTED) == 1


def test_timings_file_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "timings.json"
    monkeypatch.delenv(timings.TIMINGS_FILE_VARIABLE, raising=False)
    timings.write_timings_file("deploy", 1.5, {"web1": {"upload": 0.25}})
    assert not target.exists()
    monkeypatch.setenv(timings.TIMINGS_FILE_VARIABLE, str(target))
    monkeypatch.setattr(timings, "PROCESS_PHASES", {"connect": 0.125})
    monkeypatch.setattr(timings, "HANDLE_STARTED", [1234.5])
    timings.write_timings_file("deploy", 1.5, {"web1": {"upload": 0.25}})
    assert json.loads(target.read_text()) == {"command": "deploy", "handle_started": 1234.5, "seconds": 1.5,
                                              "process": {"connect": 0.125}, "hosts": {"web1": {"upload": 0.25}}}


def test_a_release_is_prepared_in_named_phases() -> None:
    ctx = make_ctx(code_dir="/home/shop/apps/shop/releases/v7")
    run_hooks(ctx, [Core()], "prepare_release")
    assert list(ctx.timings) == ["prepare release", "install", "migrate", "collectstatic"]


def test_a_fleet_host_that_does_not_migrate_has_no_migrate_phase() -> None:
    ctx = make_ctx(code_dir="/home/shop/apps/shop/releases/v7", runs_migrations=False)
    run_hooks(ctx, [Core()], "prepare_release")
    assert list(ctx.timings) == ["prepare release", "install", "collectstatic"]
