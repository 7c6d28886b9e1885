"""status: the environment's table, one row per host, from each host's one-round-trip read."""

from __future__ import annotations

import subprocess

from djaploy.status import format_table, parse_status, status_command
from tests.unit.conftest import make_ctx


def _status(state: str, services: list[str], lock: str = "", roles: tuple[str, ...] = ("web",)) -> dict:
    status = parse_status("\n".join(["==state", state, "==lock", lock, "==audit", "==releases", "==services", *services]))
    status["roles"] = list(roles)
    return status


def test_one_row_per_host_with_roles_release_services_workers_and_lock() -> None:
    live = '{"strategy": "zero_downtime", "current": "v8", "order": ["v8"], "releases": {"v8": {"release": "v8", "version": "1.2.0"}}}'
    lines = format_table({
        "web1": _status(live, ["shop active"]),
        "web2": _status(live, ["shop active", "shop-worker-tasks active"], roles=("web", "worker"),
                        lock='{"by": "ann@laptop", "since": "T", "action": "deploy"}'),
        "db1": _status("", [], roles=("db",)),
    })
    assert lines[0].split() == ["host", "roles", "serving", "services", "and", "workers", "lock"]
    assert lines[1].split() == ["web1", "web", "v8", "(1.2.0)", "shop", "active", "free"]
    assert "web,worker" in lines[2] and "shop-worker-tasks active" in lines[2] and "held by ann@laptop since T (deploy)" in lines[2]
    assert lines[3].split() == ["db1", "db", "-", "-", "free"]
    assert lines[1].index("v8") == lines[2].index("v8")  # columns line up


def test_the_status_read_lists_worker_units_in_the_same_round_trip(tmp_path) -> None:
    command = status_command(make_ctx())
    assert "/etc/systemd/system/shop-worker-*.service" in command
    run = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)  # nothing installed here: empty sections
    assert run.returncode == 0 and parse_status(run.stdout)["services"] == {}


def test_a_zero_downtime_row_names_the_lane_that_serves() -> None:
    from djaploy.status import format_status

    live = '{"strategy": "zero_downtime", "current": "v9", "lane": "b", "order": ["v9"], "releases": {"v9": {"release": "v9"}}}'
    status = _status(live, ["shop-a inactive", "shop-b active"])
    status["configured_strategy"] = "zero_downtime"
    row = format_table({"web1": status})[1]
    assert row.split()[:6] == ["web1", "web", "v9", "[lane", "b]", "shop-a"] and "shop-b active" in row
    assert "  live release: v9 (lane b)" in format_status("web1", status)
