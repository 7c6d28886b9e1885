"""bench/: each djaploy row is compared with the floor measured under the same load; phases add up
to the wall time, the slowest host's count, and the tables show what the rows hold."""

from __future__ import annotations

from bench.measure import phases_of
from bench.table import floor_for, markdown, phase_table


def test_floor_is_matched_by_work_and_load() -> None:
    idle_floor = {"what": "floor", "load": False, "seconds": 2.0, "key": "redeploy"}
    busy_floor = {"what": "floor", "load": True, "seconds": 4.0, "key": "redeploy"}
    row = {"what": "zero_downtime redeploy", "load": True, "seconds": 5.0, "floor": "redeploy"}
    rows = [idle_floor, busy_floor, row]
    assert floor_for(rows, row) is busy_floor
    assert floor_for(rows, {**row, "load": False}) is idle_floor
    assert floor_for(rows, {**row, "floor": "rollback"}) is None
    assert "5.0 / 4.0 = 1.25×" in markdown({"rows": rows})


def test_phases_group_and_the_rest_is_other() -> None:
    data = {"handle_started": 100.5, "process": {"connect": 0.25, "build": 0.125, "import pyinfra": 0.375},
            "hosts": {"a": {"migrate": 1.0, "publish": 0.5, "lock": 0.1}, "b": {"migrate once": 1.5, "verify": 0.25}}}
    phases = phases_of(data, started_wall=100.0, wall=5.0)
    assert phases["start-up"] == 0.5 and phases["migrate"] == 1.5  # the slowest host's
    assert phases["publish"] == 0.5 and "lock" not in phases  # an unnamed phase counts as other
    assert phases["import"] == 0.375 and phases["other"] == 1.5
    assert round(sum(phases.values()), 3) == 5.0


def test_phase_table_has_only_the_columns_measured() -> None:
    rows = [{"what": "deploy", "load": False, "seconds": 3.0, "phases": {"upload": 1.0, "other": 2.0}},
            {"what": "floor", "load": True, "seconds": 1.0}]
    assert phase_table(rows) == ["| what | load | seconds | upload | other |", "|---|---|---:|---:|---:|",
                                 "| deploy | idle | 3.00 | 1.00 | 2.00 |"]
    assert phase_table(rows[1:]) == []


def test_help_line_says_what_djaploy_costs() -> None:
    help_row = {"with": {"wall_s": 0.4, "cpu_s": 0.3}, "without": {"wall_s": 0.35, "cpu_s": 0.26},
                "difference_ms": {"wall_s": 50, "cpu_s": 40}}
    text = markdown({"rows": [], "manage_py_help": help_row})
    assert "djaploy's difference +40 ms CPU, +50 ms wall." in text
    faster = {**help_row, "difference_ms": {"wall_s": -14, "cpu_s": -13}}
    assert "-13 ms CPU, -14 ms wall (below the run-to-run noise" in markdown({"rows": [], "manage_py_help": faster})


def test_the_peer_stands_beside_djaploy_step_by_step() -> None:
    rows = [{"what": "zero_downtime code-only redeploy", "load": True, "seconds": 5.0, "first_new_answer_s": 3.1,
             "failed": 0},
            {"what": "configureserver, fresh host", "load": False, "seconds": 20.0}]
    peer = {"peer": "djaploy 1.6.2", "rows": [
        {"what": "zero_downtime code-only redeploy, under load", "seconds": 10.0, "first_answer_of_new_version_s": 8.0,
         "failed": 2, "ok_status_but_no_version": 1},
        {"what": "configure, fresh host", "seconds": None}]}
    text = markdown({"rows": rows, "peer": peer})
    assert "| code-only redeploy, under load | 5.00 | 10.00 | 0.50× | 3.1 / 8.0 | 0 / 2 + 1 cut-off 200 |" in text
    assert "| configureserver, fresh host | 20.00 | did not serve |  |  |  |" in text
    assert "djaploy 1.6.2" not in markdown({"rows": rows})  # no peer measured: no table


def test_the_poller_times_a_change_of_version() -> None:
    from bench.poller import STEADY_POLLS, Poller

    poller = Poller("http://unused.invalid/")
    poller.samples = [(0.0, "1"), (1.0, "1"), (2.0, "2"), (2.5, "1"), *((3.0 + i, "2") for i in range(STEADY_POLLS))]
    assert poller.change(started=1.5) == ("2", 2.0, 3.0)  # first answered at 2.0, only it from 3.0
    poller.samples = poller.samples[:4]
    assert poller.change(started=1.5) == (None, None, None)  # back on 1: no change
