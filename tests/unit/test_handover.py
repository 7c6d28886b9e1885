"""zero_downtime's handover: the warm gunicorn carries the traffic while the service restarts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from djaploy.context import CommandResult, HostContext
from djaploy.errors import RemoteError
from djaploy.modules.base import BaseModule, load_modules
from djaploy.strategies import zero_downtime
from djaploy.strategies.handover import drain_command, hand_back_command, handover_service, start_command
from tests.unit.conftest import MODULE_A, MODULE_B, RecordingPlan, make_ctx, make_target

STATE_FILE = "/home/shop/apps/shop/.djaploy/state.json"


def test_deploy_moves_traffic_to_the_handover_before_publish_and_back_after_it() -> None:
    ctx = make_ctx()
    zero_downtime.deploy(ctx, load_modules([MODULE_A, MODULE_B]), {})
    steps = ctx.plan.steps
    back = next(step for step in steps if step.startswith("route traffic back to shop"))
    assert steps.index("switch current") < steps.index("a.publish") < steps.index(back) < steps.index("a.route_traffic")
    switch = next(c for c in ctx.plan.commands if "/live.sock" in c and "current.djaploy-tmp" in c)
    socket = re.search(r"/run/shop-handover-([0-9a-f]{8})/shop\.sock", switch)
    assert socket and "systemctl stop --no-block shop.service" in switch
    hand_back = next(c for c in ctx.plan.commands if f"systemctl stop --no-block shop-handover@{socket[1]}.service" in c)
    # checked through its own socket first, then the link, then the drain, then the stop
    positions = [hand_back.index(part) for part in ("--socket /run/shop/shop.sock", "/live.sock", "ss -Hxl", "stop --no-block")]
    assert positions == sorted(positions)


def test_rollback_is_one_switch_round_trip_after_the_gate() -> None:
    state: dict[str, Any] = {"strategy": "zero_downtime", "current": "v7", "order": ["v6", "v7"],
                             "releases": {"v6": {"commit": "a"}, "v7": {"commit": "b"}}}
    plan = RecordingPlan(files={STATE_FILE: (json.dumps(state), "root", "644")})
    ctx = make_ctx(plan)
    zero_downtime.rollback(ctx, load_modules([MODULE_A, MODULE_B]), {})
    gate = next(i for i, step in enumerate(plan.steps) if step.startswith("health gate"))
    switch = plan.steps.index("switch to v6 through shop-handover")
    assert gate < switch < plan.steps.index("a.verify")
    command = next(c for c in plan.commands if "systemctl restart shop.service" in c)
    instance = re.search(r"/run/shop-handover-([0-9a-f]{8})/shop\.sock", command)[1]
    assert f"--unit=shop-handover@{instance}" in plan.commands[gate]  # the unit the gate started
    order = [command.index(part) for part in (f"/run/shop-handover-{instance}/shop.sock", "releases/v6",
                                              "systemctl restart shop.service", "--socket /run/shop/shop.sock",
                                              f"stop --no-block shop-handover@{instance}.service")]
    assert order == sorted(order)


def test_handover_runs_the_release_with_its_env_file_and_never_puts_values_on_argv() -> None:
    ctx = make_ctx(target=make_target(secrets={"DJANGO_SECRET_KEY": "s3cr3t-value"}))
    assert ctx.target.secrets == {"DJANGO_SECRET_KEY": "s3cr3t-value"}
    service = ctx.paths.service_for("zero_downtime")
    command = start_command(ctx, handover_service(service), service=service, project_dir="/srv/r 1", env_file="/srv/r 1/.djaploy-env",
                            venv="/srv/r 1/.djaploy-venv")
    assert "systemd-run" in command and "'--property=EnvironmentFile=/srv/r 1/.djaploy-env'" in command
    assert "'--property=WorkingDirectory=/srv/r 1'" in command and "--property=User=shop" in command
    assert "--pid \"$pid\"" in command  # a release that exits is reported as not started
    assert "s3cr3t-value" not in command


def test_drain_waits_for_the_accept_queue_of_that_socket_only() -> None:
    helper = handover_service(make_ctx().paths.service_for("zero_downtime"), "abc")
    assert "ss -Hxl src /run/shop-handover-abc/shop.sock" in drain_command(helper)
    assert drain_command(helper) in hand_back_command(make_ctx(), make_ctx().paths.service_for("zero_downtime"), helper)


class FailingVerify(BaseModule):
    name = "failing"

    def verify(self, ctx: HostContext) -> None:
        raise RemoteError(ctx.target.name, "failing: health", "HTTP 500")


@dataclass
class LiveV6(RecordingPlan):
    """A host serving release v6 (its folder on disk)."""

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        if command.startswith("ls -1 "):
            return CommandResult(True, "v6\n")
        return super().query(command, as_user=as_user)


V6_LIVE = {"strategy": "zero_downtime", "current": "v6", "order": ["v6"], "releases": {"v6": {"commit": "a"}}}


def test_a_failure_after_the_switch_puts_the_previous_release_back_on_the_service_in_one_step() -> None:
    plan = LiveV6(files={STATE_FILE: (json.dumps(V6_LIVE), "root", "644")})
    ctx = make_ctx(plan)
    with pytest.raises(RemoteError):
        zero_downtime.deploy(ctx, [FailingVerify()], {})
    assert plan.steps[-1] == "restore release v6"
    undo = plan.commands[-1]
    order = [undo.index(part) for part in ("releases/v6", "systemctl restart shop.service", "/live.sock",
                                           "stop 'shop-handover@*.service'", "rm -rf /home/shop/apps/shop/releases/v7")]
    assert order == sorted(order)


@pytest.mark.parametrize("operation", ["deploy", "rollback"])
def test_a_worker_host_moves_only_current_and_runs_no_handover(operation: str) -> None:
    state = {"strategy": "zero_downtime", "current": "v7", "order": ["v6", "v7"],
             "releases": {"v6": {"commit": "a"}, "v7": {"commit": "b"}}}
    plan = LiveV6(files={STATE_FILE: (json.dumps(V6_LIVE if operation == "deploy" else state), "root", "644")})
    ctx = make_ctx(plan, target=replace(make_target(), roles=("worker",)))  # one host of a fleet
    getattr(zero_downtime, operation)(ctx, load_modules([MODULE_A, MODULE_B]), {})
    assert not any("handover" in command for command in plan.commands)
    assert not any(step.startswith("health gate") for step in plan.steps)
    release = "v7" if operation == "deploy" else "v6"
    switch = next(c for c in plan.commands if "current.djaploy-tmp" in c)
    assert f"releases/{release}" in switch and "systemctl" not in switch


def test_each_handover_has_a_name_of_its_own_and_the_next_stops_every_earlier_one_first() -> None:
    """systemd unloads a stopped transient unit when it gets round to it, and systemd-run refuses a
    name still loaded: a rolling deploy right after a hand-back failed with 'already loaded'."""
    ctx = make_ctx()
    service = ctx.paths.service_for("zero_downtime")
    first, second = handover_service(service), handover_service(service)
    assert first.name != second.name and first.socket_path != second.socket_path
    assert re.fullmatch(r"shop-handover@[0-9a-f]{8}", first.name)
    assert re.fullmatch(r"/run/shop-handover-[0-9a-f]{8}/shop\.sock", first.socket_path)
    command = start_command(ctx, second, service=service, project_dir="/p", env_file="/e", venv="/v")
    stop = "systemctl stop 'shop-handover@*.service'"
    assert stop in command and command.index(stop) < command.index("systemd-run")
    assert f"--unit={second.name}" in command and f"--property=RuntimeDirectory={second.socket_path.split('/')[2]}" in command
    assert first.name not in command

@pytest.mark.parametrize(("serving", "back"), [("/run/shop-handover-0badc0de/shop.sock", True),
                                                 ("/run/shop-blue/shop.sock", False),
                                                 ("/run/shop/shop.sock", False),
                                                 (None, False)])
def test_a_handover_left_serving_gives_the_traffic_back_before_the_next_one_stops_it(
        tmp_path, serving: str | None, back: bool) -> None:
    """A deployer killed between the switch and the hand-back leaves the live link on the handover:
    the next deploy (or rollback) must not stop that handover while it still carries the traffic
    (another strategy's socket, a bluegreen slot, is left alone: the switch moves it later), unless
    the service has no socket yet (a first deploy killed before it existed): nothing to go back to."""
    import socket
    import subprocess

    from djaploy.strategies.handover import reclaim_command

    ctx = make_ctx()
    helper = handover_service(ctx.paths.service_for("zero_downtime"))
    (tmp_path / "run").mkdir()
    service = replace(ctx.paths.service_for("zero_downtime"), socket_path=str(tmp_path / "run" / "shop.sock"))
    live = tmp_path / "app 'x' $(touch MARKER)" / "live.sock"
    live.parent.mkdir()

    def reclaim(service_listens: bool) -> str | None:
        if live.is_symlink():
            live.unlink()
        if serving:
            live.symlink_to(serving)
        listening = socket.socket(socket.AF_UNIX)
        if service_listens:
            listening.bind(service.socket_path)
        run = subprocess.run(["sh", "-c", reclaim_command(str(live), service)], capture_output=True, text=True,
                             cwd=tmp_path)
        listening.close()
        Path(service.socket_path).unlink(missing_ok=True)
        assert run.returncode == 0, run.stderr
        return str(live.readlink()) if live.is_symlink() else None

    assert reclaim(service_listens=True) == (service.socket_path if back else serving)
    assert reclaim(service_listens=False) == serving
    assert not (tmp_path / "MARKER").exists()
    start = start_command(ctx, helper, service=ctx.paths.service_for("zero_downtime"), project_dir="/p",
                          env_file="/e", venv="/v")
    assert start.startswith(reclaim_command(ctx.paths.live_link, ctx.paths.service_for("zero_downtime")) + " && ")
    assert start.index("/live.sock") < start.index("ss -Hxl") < start.index("systemctl stop 'shop-handover@*.service'")
