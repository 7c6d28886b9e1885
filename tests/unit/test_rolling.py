"""Rolling switches: batch sizes (N and P%), and the Rollout's order of drains, switches, re-admissions
and reverts, with every host in its own greenlet as in a real run (the LB is a fake HAProxy)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import gevent
import pytest

from djaploy.batches import batch_size_problem, hosts_per_batch, split_batches
from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult, HostContext
from djaploy.errors import DjaployError
from djaploy.inventory import resolve_targets
from djaploy.rolling import Rollout
from tests.unit.conftest import RecordingPlan

HEADER = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status"


@pytest.mark.parametrize(("size", "hosts", "expected"), [
    (1, 8, 1), ("2", 8, 2), ("25%", 8, 2), ("30%", 8, 3), ("1%", 8, 1), ("100%", 3, 3), (5, 3, 5), ("50%", 1, 1)])
def test_hosts_per_batch(size: int | str, hosts: int, expected: int) -> None:
    assert hosts_per_batch(size, hosts) == expected


def test_split_batches_keeps_the_order_and_the_last_batch_takes_the_rest() -> None:
    names = [f"web{i}" for i in range(1, 8)]
    assert split_batches(names, "3") == [names[:3], names[3:6], names[6:]]
    assert split_batches(names, "50%") == [names[:4], names[4:]]
    assert split_batches(names, None) == [names]
    assert split_batches([], 2) == []


@pytest.mark.parametrize("bad", [0, "0", "-1", "x", "101%", "2.5", "%", True, None, 1.5, "10 %"])
def test_a_bad_batch_size_is_refused(bad: object) -> None:
    assert batch_size_problem(bad)
    if isinstance(bad, (int, str)) and not isinstance(bad, bool):
        with pytest.raises(ValueError):
            hosts_per_batch(bad, 4)


# --- the rollout ---------------------------------------------------------------------------------


@dataclass
class FakeHaproxy(RecordingPlan):
    """An LB host: `set server` commands change the servers' states, `show stat` reports them."""

    log: list[str] = field(default_factory=list)
    servers: dict[str, str] = field(default_factory=dict)

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        for name, state in re.findall(r"set server app/(\S+) state (\w+)", command):
            self.servers[name] = {"ready": "UP", "drain": "DRAIN", "maint": "MAINT"}[state]
            self.log.append(f"{state} {name}")
        return super().run(step, command, as_user=as_user)

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        rows = [f"app,{name},0,0,0,0,,0,0,0,,0,,0,0,0,0,{status}" for name, status in self.servers.items()]
        return CommandResult(True, "\n".join([HEADER, *rows]) + "\n")


@dataclass
class WebPlan(RecordingPlan):
    serves: bool = True  # what the health check says after a failed switch

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        return CommandResult(self.serves, "")


def environment(web_hosts: int, *, lb: bool = True) -> list[Target]:
    config = DjaployConfig(project_name="shop", modules=["djaploy.modules.core", "djaploy.modules.haproxy"],
                           domains=["shop.example.com"])
    hosts = [HostConfig("lb1", ssh_host="203.0.113.2", roles=["lb"])] if lb else []
    hosts += [HostConfig(f"web{i}", ssh_host=f"203.0.113.{10 + i}") for i in range(1, web_hosts + 1)]
    return resolve_targets(config, hosts, "production", environ={}, source_file="infra/inventory/production.py")


def roll(rollout: Rollout, targets: list[Target], *, fail: dict[str, str] = {}, unservable: tuple[str, ...] = ()
         ) -> tuple[list[str], dict[str, BaseException | str | None]]:
    """Run every host's part in its own greenlet; returns the LB's and hosts' log and each outcome."""
    lb_plan = FakeHaproxy(log=[], servers={t.name: "UP" for t in targets if "web" in t.roles})
    log = lb_plan.log
    outcomes: dict[str, BaseException | str | None] = {}

    def host(target: Target) -> None:
        is_lb = "lb" in target.roles
        plan = lb_plan if is_lb else WebPlan(serves=target.name not in unservable)
        ctx = HostContext(env="production", target=target, plan=plan, fleet=tuple(targets))

        def step(what: str) -> str:
            log.append(f"{what} {target.name}")
            if fail.get(target.name) == what:
                raise DjaployError(f"[{target.name}] health check failed")
            return f"{what} done"

        try:
            if is_lb:
                rollout.lb_host(ctx)
                outcomes[target.name] = None
            else:
                outcomes[target.name] = rollout.web_host(ctx, lambda: step("switch"), lambda: step("revert"))
        except DjaployError as error:
            outcomes[target.name] = error

    gevent.joinall([gevent.spawn(host, target) for target in targets], timeout=10, raise_error=True)
    assert len(outcomes) == len(targets), "a host never finished: the rollout deadlocked"
    return log, outcomes


def test_each_batch_is_drained_switched_and_re_admitted_before_the_next() -> None:
    targets = environment(3)
    rollout = Rollout(targets, None)
    assert rollout.batches == [["web1"], ["web2"], ["web3"]]  # an LB makes the default 1
    log, outcomes = roll(rollout, targets)
    assert log == ["drain web1", "switch web1", "ready web1",
                   "drain web2", "switch web2", "ready web2",
                   "drain web3", "switch web3", "ready web3"]
    assert outcomes == {"lb1": None, "web1": "switch done", "web2": "switch done", "web3": "switch done"}


def test_batches_of_a_share_switch_together() -> None:
    targets = environment(4)
    log, _ = roll(Rollout(targets, "50%"), targets)
    assert log[:2] == ["drain web1", "drain web2"]
    assert set(log[2:4]) == {"switch web1", "switch web2"}
    assert log[4:6] == ["ready web1", "ready web2"]


def test_a_failed_canary_stops_the_rollout_and_goes_back_into_rotation_when_it_still_serves() -> None:
    targets = environment(3)
    log, outcomes = roll(Rollout(targets, 1), targets, fail={"web1": "switch"})
    assert log == ["drain web1", "switch web1", "ready web1"]
    assert isinstance(outcomes["web1"], DjaployError)
    for later in ("web2", "web3"):
        assert "not switched: batch 1 (web1) failed" in str(outcomes[later])


def test_a_failed_host_that_cannot_serve_stays_out() -> None:
    targets = environment(2)
    log, _ = roll(Rollout(targets, 1), targets, fail={"web1": "switch"}, unservable=("web1",))
    assert log == ["drain web1", "switch web1", "maint web1"]


def test_a_failed_batch_reverts_the_hosts_already_switched_batch_by_batch() -> None:
    targets = environment(3)
    rollout = Rollout(targets, 1)
    log, outcomes = roll(rollout, targets, fail={"web3": "switch"})
    assert log == ["drain web1", "switch web1", "ready web1",
                   "drain web2", "switch web2", "ready web2",
                   "drain web3", "switch web3", "ready web3",
                   "drain web2", "revert web2", "ready web2",
                   "drain web1", "revert web1", "ready web1"]
    assert outcomes["web1"] == outcomes["web2"] == "reverted: revert done"
    assert any("batch 3 (web3) failed" in note for note in rollout.notes)


def test_no_revert_keeps_the_switched_hosts_on_the_new_release() -> None:
    targets = environment(3)
    rollout = Rollout(targets, 1, revert=False)
    log, outcomes = roll(rollout, targets, fail={"web2": "switch"})
    assert "revert web1" not in log and outcomes["web1"] == "switch done"
    assert "not switched" in str(outcomes["web3"])
    assert any("--no-revert" in note for note in rollout.notes)


def test_a_revert_never_drains_the_last_hosts_that_serve() -> None:
    targets = environment(2)
    rollout = Rollout(targets, 1)
    log, outcomes = roll(rollout, targets, fail={"web2": "switch"}, unservable=("web2",))
    assert "drain web1" not in log[3:] and outcomes["web1"] == "switch done"
    assert any("web1 not reverted" in note for note in rollout.notes)


def test_without_lb_or_batch_size_nothing_is_coordinated() -> None:
    targets = environment(3, lb=False)
    rollout = Rollout(targets, None)
    assert not rollout.active
    log, outcomes = roll(rollout, targets)
    assert sorted(log) == ["switch web1", "switch web2", "switch web3"]
    batched = Rollout(targets, 2)
    assert batched.active and batched.batches == [["web1", "web2"], ["web3"]]
    log, _ = roll(batched, targets, fail={"web1": "switch"})
    assert "switch web3" not in log


def test_one_batch_holding_every_web_host_is_not_drained() -> None:
    targets = environment(2)
    log, _ = roll(Rollout(targets, "100%"), targets)
    assert sorted(log) == ["switch web1", "switch web2"]


def test_a_host_that_cannot_go_back_keeps_serving_and_says_so() -> None:
    targets = environment(2)
    log, outcomes = roll(Rollout(targets, 1), targets, fail={"web1": "revert", "web2": "switch"})
    assert log[-3:] == ["drain web1", "revert web1", "ready web1"]
    assert outcomes["web1"] == "switch done; not reverted: [web1] health check failed"


def test_only_an_lb_host_without_app_roles_gets_no_release() -> None:
    from dataclasses import replace

    targets = environment(1)
    rollout = Rollout(targets, None)
    lb, web = targets
    ctx = lambda target: HostContext(env="production", target=target, plan=RecordingPlan(), fleet=tuple(targets))  # noqa: E731
    assert rollout.runs_no_app(ctx(lb)) and not rollout.runs_no_app(ctx(web))
    assert not rollout.runs_no_app(ctx(replace(lb, roles=("lb", "worker"))))


def test_deploy_refuses_a_bad_batch_size_before_anything_runs() -> None:
    from django.core.management.base import CommandError

    from djaploy.management.commands.deploy import Command

    parser = Command().create_parser("manage.py", "deploy")
    options = parser.parse_args(["--env", "production", "--latest", "--batch-size", "25%", "--no-revert"])
    assert options.batch_size == "25%" and options.revert is False
    assert parser.parse_args(["--env", "production", "--latest"]).revert is True
    with pytest.raises(CommandError, match="'0' is not a batch size"):
        parser.parse_args(["--env", "production", "--latest", "--batch-size", "0"])
