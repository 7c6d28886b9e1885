"""zero_downtime's two lanes: which one a release starts in, what stops, what a failure puts back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from djaploy.errors import RemoteError
from djaploy.layout import AppPaths
from djaploy.modules.base import BaseModule, load_modules
from djaploy.strategies import zero_downtime
from djaploy.strategies.lanes import lane_of, next_lane, parse_host_now
from tests.unit.conftest import MODULE_A, RecordingPlan, make_ctx

PATHS = AppPaths(app_name="shop", app_user="shop")
STATE_FILE = "/home/shop/apps/shop/.djaploy/state.json"
LIVE = {"strategy": "zero_downtime", "current": "v6", "lane": "a", "order": ["v5", "v6"],
        "releases": {"v5": {"commit": "a"}, "v6": {"commit": "b"}}}


def host(live_link: str, state: dict[str, Any] = LIVE) -> RecordingPlan:
    return RecordingPlan(files={STATE_FILE: (json.dumps(state), "root", "644")}, live_link=live_link)


def command_of(plan: RecordingPlan, step: str) -> str:
    """The command a `run` step sent (service steps record a line too)."""
    steps = [name for method, name in plan.calls if method in ("run", "service")]
    return plan.commands[steps.index(step)]


def test_one_query_reads_state_releases_and_the_live_link(tmp_path) -> None:
    """A deploy and a rollback read all three in one round trip; run here against real files."""
    import subprocess

    from djaploy.strategies.lanes import host_now_command

    home = tmp_path / "home"
    app = home / "shop" / "apps" / "shop"
    (app / ".djaploy").mkdir(parents=True)
    (app / "releases" / "v5").mkdir(parents=True)
    (app / "releases" / "v6").mkdir()
    (app / ".djaploy" / "state.json").write_text(json.dumps(LIVE) + "\n")
    (app / "live.sock").symlink_to("/run/shop-a/shop.sock")
    command = host_now_command(make_ctx()).replace("/home/shop", str(home / "shop"))
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    text, on_disk, live = parse_host_now(output)
    assert json.loads(text) == LIVE and on_disk == ["v5", "v6"] and live == "/run/shop-a/shop.sock"
    (app / "live.sock").unlink()
    (app / ".djaploy" / "state.json").unlink()
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    assert parse_host_now(output) == ("", ["v5", "v6"], "")  # nothing deployed or served yet


@pytest.mark.parametrize("socket, lane, following", [
    ("/run/shop-a/shop.sock", "a", "b"),
    ("/run/shop-b/shop.sock", "b", "a"),
    ("/run/shop/shop.sock", None, "a"),  # djaploy before lanes, or in_place
    ("/run/shop-green/shop.sock", None, "a"),  # bluegreen
    ("", None, "a"),  # nothing serves yet
])
def test_a_release_starts_in_the_lane_that_does_not_serve(socket: str, lane: str | None, following: str) -> None:
    serving = PATHS.service_on(socket)
    assert lane_of(PATHS, serving) == lane
    assert next_lane(PATHS, serving) == following


def test_deploys_alternate_lanes_and_stop_the_old_one_without_waiting_for_it() -> None:
    ctx = make_ctx(host("/run/shop-a/shop.sock"))
    zero_downtime.deploy(ctx, load_modules([MODULE_A]), {})
    plan = ctx.plan
    assert "route traffic to shop-b" in plan.steps
    stop = command_of(plan, "stop shop-a (traffic left it; it finishes its requests)")
    assert stop == "systemctl stop --no-block shop-a.service"
    state = json.loads(plan.files[STATE_FILE][0])
    assert (state["current"], state["lane"]) == ("v7", "b")


def test_the_first_deploy_after_lanes_moves_traffic_off_the_single_service_and_retires_it() -> None:
    ctx = make_ctx(host("/run/shop/shop.sock", {**LIVE, "lane": None}))
    zero_downtime.deploy(ctx, load_modules([MODULE_A]), {})
    plan = ctx.plan
    assert "route traffic to shop-a" in plan.steps
    assert not any(step.startswith("stop shop") for step in plan.steps)  # clean-up retires it (socket included)
    clean_up = command_of(plan, "clean up other strategies, old releases and venvs")
    assert "disable --now shop.service shop.socket" in clean_up
    assert "shop-a.service" not in clean_up and "shop-b.service" not in clean_up


class FailsAfterTheSwitch(BaseModule):
    name = "fails"

    def verify(self, ctx: Any) -> None:
        raise RemoteError(ctx.target.name, "fails: check", "HTTP 500")


def test_a_rollback_that_fails_puts_traffic_current_and_the_lanes_back() -> None:
    ctx = make_ctx(host("/run/shop-a/shop.sock"))
    with pytest.raises(RemoteError):
        zero_downtime.rollback(ctx, [FailsAfterTheSwitch()], {})
    plan = ctx.plan
    assert plan.steps == ["switch current to v5", "health gate / (the release in shop-b, before it gets traffic)",
                          "route traffic to shop-b", "route traffic to shop-a", "put the previous release back"]
    put_back = plan.commands[-1]
    assert "releases/v6" in put_back and "systemctl stop shop-b.service" in put_back
    assert json.loads(plan.files[STATE_FILE][0]) == LIVE  # nothing recorded


def test_a_1x_services_list_naming_the_app_itself_restarts_only_the_others() -> None:
    """djaploy 1.x configs list the app's own service in `services`; the lane is started instead."""
    from tests.unit.conftest import make_target

    ctx = make_ctx(host("/run/shop-a/shop.sock"), make_target(services=["shop", "shop.service", "shop-worker"]))
    zero_downtime.deploy(ctx, load_modules(["djaploy.modules.systemd"]), {})
    restarts = [step for step in ctx.plan.steps if step.startswith("systemd: restart")]
    assert restarts == ["systemd: restart shop-b.service", "systemd: restart shop-worker"]


def test_a_lane_starts_without_being_enabled_and_only_its_socket_starts_at_boot() -> None:
    """After a reboot only the sockets listen: the first request starts the lane the live link
    names, so the idle lane (and its memory) never runs; bluegreen's slots and in_place start at boot."""
    ctx = make_ctx(host("/run/shop-a/shop.sock"))
    zero_downtime.deploy(ctx, load_modules(["djaploy.modules.systemd"]), {})
    assert ctx.plan.enabled == {"shop-b.socket": True, "shop-b.service": False}
    assert "WantedBy=sockets.target" in ctx.plan.files["/etc/systemd/system/shop-b.socket"][0]
    assert PATHS.service_for("bluegreen", "blue").at_boot and PATHS.service_for("in_place").at_boot
