"""Rolling switches: batch sizes (N and P%), the order of drains, switches, re-admissions and reverts
(djaploy.rolling.roll; the LB is a fake HAProxy), and a fleet's deploy and rollback through them
(djaploy.rollout: staging and migration once and first, only the go-live batched)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import json

import pytest

from djaploy.batches import batch_size_problem, hosts_per_batch, split_batches
from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult, HostContext
from djaploy.errors import DjaployError, RemoteError
from djaploy.inventory import resolve_targets
from djaploy.modules.base import load_modules
from djaploy.rolling import Rolled, roll
from djaploy.rollout import HostRun, Stopped, deploy_phases, switch_phases
from djaploy.rollout_plan import plan_rollout
from tests.unit.conftest import MODULE_A, MODULE_B, RecordingPlan, make_ctx
from tests.unit.test_rollout import LOG, FleetHost, sequential

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


# --- the batches (djaploy.rolling.roll) ----------------------------------------------------------


@dataclass
class FakeHaproxy(RecordingPlan):
    """An LB host: `set server` commands change the servers' states, `show stat` reports them, the
    backend's health probe finds every web host it holds."""

    log: list[str] = field(default_factory=list)
    servers: dict[str, str] = field(default_factory=dict)

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        for name, state in re.findall(r"set server app/(\S+) state (\w+)", command):
            self.servers[name] = {"ready": "UP", "drain": "DRAIN", "maint": "MAINT"}[state]
            self.log.append(f"{state} {name}")
        if step.startswith("haproxy: config"):
            self.log.append("backend synced")
        return super().run(step, command, as_user=as_user)

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        if "curl" in command:  # backend_members: the hosts it holds or that answer
            return CommandResult(True, "\n".join(self.servers) + "\n")
        rows = [f"app,{name},0,0,0,0,,0,0,0,,0,,0,0,0,0,{status}" for name, status in self.servers.items()]
        return CommandResult(True, "\n".join([HEADER, *rows]) + "\n")

    def put_text(self, step: str, path: str, content: str, *, owner: str = "root", mode: str = "644") -> bool:
        if path.endswith("haproxy.cfg"):
            self.log.append(f"backend synced: {' '.join(re.findall(r'server (web[0-9]+) ', content))}")
        return super().put_text(step, path, content, owner=owner, mode=mode)


def environment(web_hosts: int, *, lb: bool = True) -> list[Target]:
    config = DjaployConfig(project_name="shop", modules=["djaploy.modules.core", "djaploy.modules.haproxy"],
                           domains=["shop.example.com"])
    hosts = [HostConfig("lb1", ssh_host="203.0.113.2", roles=["lb"])] if lb else []
    hosts += [HostConfig(f"web{i}", ssh_host=f"203.0.113.{10 + i}") for i in range(1, web_hosts + 1)]
    return resolve_targets(config, hosts, "production", environ={}, source_file="infra/inventory/production.py")


def lb_context(targets: list[Target], log: list[str]) -> dict[str, HostContext]:
    """lb1's context over a fake HAProxy holding every web host, UP (empty without an lb host)."""
    lbs = [t for t in targets if "lb" in t.roles]
    servers = {t.name: "UP" for t in targets if "web" in t.roles}
    return {t.name: HostContext(env="production", target=t, plan=FakeHaproxy(log=log, servers=servers),
                                fleet=tuple(targets)) for t in lbs}


def rolling(web_hosts: int, size: int | str | None, *, fail: dict[str, str] | None = None,
            unservable: tuple[str, ...] = (), revert: bool = True, lb: bool = True) -> tuple[list[str], Rolled]:
    """Roll `web_hosts` hosts in batches of `size`; a host in `fail` fails that step ('switch', 'revert');
    returns the log of the LB's and the hosts' steps and what the rollout did."""
    fail = fail or {}
    targets = environment(web_hosts, lb=lb)
    plan = plan_rollout(targets, size)
    log: list[str] = []

    def step(what: str, name: str) -> str:
        log.append(f"{what} {name}")
        if fail.get(name) == what:
            raise DjaployError(f"[{name}] health check failed")
        return f"{what} done"

    rolled = roll(plan.batches, lb_context(targets, log), sequential,
                  lambda batch: sequential(batch, lambda name: step("switch", name)),
                  serves=lambda name: name not in unservable,
                  revert=(lambda name: step("revert", name)) if revert else None)
    return log, rolled


def test_each_batch_is_drained_switched_and_re_admitted_before_the_next() -> None:
    plan = plan_rollout(environment(3))
    assert plan.batches == (("web1",), ("web2",), ("web3",))  # an LB makes the default 1
    assert plan.rolling and plan.load_balancers == ("lb1",)
    log, rolled = rolling(3, None)
    assert log == ["drain web1", "switch web1", "ready web1",
                   "drain web2", "switch web2", "ready web2",
                   "drain web3", "switch web3", "ready web3"]
    assert rolled.complete and rolled.live == ["web1", "web2", "web3"]


def test_batches_of_a_share_switch_together() -> None:
    log, _ = rolling(4, "50%")
    assert log[:2] == ["drain web1", "drain web2"]
    assert set(log[2:4]) == {"switch web1", "switch web2"}
    assert log[4:6] == ["ready web1", "ready web2"]


def test_a_failed_canary_stops_the_rollout_and_goes_back_into_rotation_when_it_still_serves() -> None:
    log, rolled = rolling(3, 1, fail={"web1": "switch"})
    assert log == ["drain web1", "switch web1", "ready web1"]
    assert isinstance(rolled.errors["web1"], DjaployError)
    for later in ("web2", "web3"):
        assert "not switched: batch 1 (web1) failed" in rolled.skipped[later]
    assert any("(the canary)" in note for note in rolled.notes)


def test_a_failed_host_that_cannot_serve_stays_out() -> None:
    log, _ = rolling(2, 1, fail={"web1": "switch"}, unservable=("web1",))
    assert log == ["drain web1", "switch web1", "maint web1"]


def test_a_failed_batch_reverts_the_hosts_already_switched_batch_by_batch() -> None:
    log, rolled = rolling(3, 1, fail={"web3": "switch"})
    assert log == ["drain web1", "switch web1", "ready web1",
                   "drain web2", "switch web2", "ready web2",
                   "drain web3", "switch web3", "ready web3",
                   "drain web2", "revert web2", "ready web2",
                   "drain web1", "revert web1", "ready web1"]
    assert rolled.reverted["web1"].startswith("reverted (revert done)") and "batch 3 (web3) failed" in rolled.reverted["web2"]
    assert rolled.live == []
    assert any("batch 3 (web3) failed" in note for note in rolled.notes)


def test_no_revert_keeps_the_switched_hosts_on_the_new_release() -> None:
    log, rolled = rolling(3, 1, fail={"web2": "switch"}, revert=False)
    assert "revert web1" not in log and rolled.live == ["web1"] and not rolled.reverted
    assert "not switched" in rolled.skipped["web3"]
    assert any("--no-revert" in note for note in rolled.notes)


def test_a_revert_never_drains_the_last_hosts_that_serve() -> None:
    log, rolled = rolling(2, 1, fail={"web2": "switch"}, unservable=("web2",))
    assert "drain web1" not in log[3:] and rolled.live == ["web1"]
    assert any("web1 not reverted" in note for note in rolled.notes)


def test_without_lb_or_batch_size_nothing_is_batched() -> None:
    plan = plan_rollout(environment(3, lb=False))
    assert not plan.rolling and plan.batches == (("web1", "web2", "web3"),)
    batched = plan_rollout(environment(3, lb=False), 2)
    assert batched.rolling and batched.batches == (("web1", "web2"), ("web3",))
    log, _ = rolling(3, 2, fail={"web1": "switch"}, lb=False)
    # no LB: nothing drained; the failed batch stops the rest, and its host that switched goes back
    assert log == ["switch web1", "switch web2", "revert web2"]


def test_one_batch_holding_every_web_host_is_not_drained() -> None:
    log, _ = rolling(2, "100%")
    assert sorted(log) == ["switch web1", "switch web2"]


def test_a_host_that_cannot_go_back_keeps_serving_and_says_so() -> None:
    log, rolled = rolling(2, 1, fail={"web1": "revert", "web2": "switch"})
    assert log[-3:] == ["drain web1", "revert web1", "ready web1"]
    assert rolled.live == ["web1"] and rolled.messages["web1"] == "not reverted: [web1] health check failed"


def test_a_load_balancer_that_fails_draining_stops_before_the_batch_switches() -> None:
    targets = environment(2)
    log: list[str] = []
    balancers = lb_context(targets, log)
    broken = balancers["lb1"].plan
    broken.query = lambda command, as_user=None: CommandResult(False, "", "no socket")  # type: ignore[method-assign]
    switched: list[str] = []
    rolled = roll(plan_rollout(targets).batches, balancers, sequential,
                  lambda batch: sequential(batch, switched.append), serves=lambda name: True)
    assert switched == [] and "cannot read `show stat`" in str(rolled.errors["lb1"])
    assert set(rolled.skipped) == {"web1", "web2"}


def test_only_an_lb_host_without_app_roles_gets_no_release() -> None:
    from dataclasses import replace

    lb, web = environment(1)
    plan = plan_rollout([lb, web])
    assert plan.idle_hosts == ("lb1",) and plan.load_balancers == ("lb1",) and plan.app_hosts == ("web1",)
    assert plan_rollout([replace(lb, roles=("lb", "worker")), web]).app_hosts == ("lb1", "web1")
    assert not plan_rollout([replace(lb, modules=("djaploy.modules.core",)), web]).load_balancers


def test_deploy_refuses_a_bad_batch_size_before_anything_runs() -> None:
    from django.core.management.base import CommandError

    from djaploy.management.commands.deploy import Command

    parser = Command().create_parser("manage.py", "deploy")
    options = parser.parse_args(["--env", "production", "--latest", "--batch-size", "25%", "--no-revert"])
    assert options.batch_size == "25%" and options.revert is False
    assert parser.parse_args(["--env", "production", "--latest"]).revert is True
    with pytest.raises(CommandError, match="'0' is not a batch size"):
        parser.parse_args(["--env", "production", "--latest", "--batch-size", "0"])


# --- a fleet's deploy and rollback through the batches (djaploy.rollout) --------------------------

HAPROXY = "djaploy.modules.haproxy"
STATE_FILE = "/home/shop/apps/shop/.djaploy/state.json"


class ToLog(list):  # type: ignore[type-arg]
    """The fake LB's log, into the fleet's shared LOG (as host lb1), so the order across hosts shows."""

    def append(self, item: str) -> None:
        LOG.append(("lb1", item))


def lb_fleet(web_hosts: int, *, db: bool = True) -> list[Target]:
    config = DjaployConfig(project_name="shop", modules=[MODULE_A, MODULE_B, "djaploy.modules.postgres", HAPROXY],
                           domains=["shop.example.com"], workers={"tasks": "manage.py process_tasks"},
                           deployment_strategy="zero_downtime")
    hosts = [HostConfig("lb1", ssh_host="10.0.0.9", roles=["lb"])]
    hosts += [HostConfig(f"web{i}", ssh_host=f"10.0.0.{i}", roles=["web", "worker"] if i == 1 else ["web"])
              for i in range(1, web_hosts + 1)]
    hosts += [HostConfig("db1", ssh_host="10.0.0.8", roles=["db"])] if db else []
    return resolve_targets(config, hosts, "production", environ={}, source_file="inventory/production.py")


def fleet_runs(targets: list[Target], **plans: FleetHost) -> tuple[dict[str, HostRun], dict[str, HostContext]]:
    LOG.clear()
    plan = plan_rollout(targets)
    runs = {t.name: HostRun(make_ctx(plans.get(t.name) or FleetHost(name=t.name), t), load_modules([MODULE_A, MODULE_B]))
            for t in targets if t.name in plan.app_hosts}
    return runs, lb_context(targets, ToLog())


def order(*kept: str) -> list[tuple[str, str]]:
    return [(host, step) for host, step in LOG if step.startswith(kept)]


def test_a_fleet_stages_and_migrates_once_on_every_host_first_and_only_the_go_live_is_batched() -> None:
    targets = lb_fleet(3)
    runs, balancers = fleet_runs(targets)
    outcome = deploy_phases(runs, plan_rollout(targets), sequential, balancers=balancers)
    assert outcome.errors == {}
    assert order("b.prepare_release", "migrate once", "switch current", "drain", "ready", "workers:", "backend") == [
        ("web1", "b.prepare_release"), ("web2", "b.prepare_release"), ("web3", "b.prepare_release"),
        ("web1", "migrate once for the environment (primary web1)"),
        ("lb1", "drain web1"), ("web1", "switch current to v7"), ("lb1", "ready web1"),  # the canary
        ("lb1", "drain web2"), ("web2", "switch current to v7"), ("lb1", "ready web2"),
        ("lb1", "drain web3"), ("web3", "switch current to v7"), ("lb1", "ready web3"),
        ("lb1", "backend synced: web1 web2 web3"),
        ("web1", "workers: restart shop-worker-tasks.service"),  # after every web batch
    ]
    assert outcome.messages["lb1"].startswith("load balancer: backend web1, web2, web3")


def test_a_failed_batch_stops_the_fleet_discards_the_later_batches_and_reverts_the_switched_hosts() -> None:
    targets = lb_fleet(3)
    previous = {"strategy": "zero_downtime", "current": "v6", "order": ["v6"], "releases": {"v6": {"commit": "a"}}}
    plans = {name: FleetHost(name=name, files={STATE_FILE: (json.dumps(previous), "root", "644")},
                             broken=("health gate",) if name == "web2" else ()) for name in ("web1", "web2", "web3")}
    runs, balancers = fleet_runs(targets, **plans)
    outcome = deploy_phases(runs, plan_rollout(targets), sequential, balancers=balancers)
    assert isinstance(outcome.errors["web2"], RemoteError)
    assert isinstance(outcome.errors["web3"], Stopped) and "not switched: batch 2 (web2) failed" in str(outcome.errors["web3"])
    assert isinstance(outcome.errors["web1"], Stopped) and "reverted (rolled back from v7 to v6)" in str(outcome.errors["web1"])
    assert order("switch current", "drain", "ready", "remove release v7", "workers:") == [
        ("lb1", "drain web1"), ("web1", "switch current to v7"), ("lb1", "ready web1"),
        ("lb1", "drain web2"), ("web2", "switch current to v7"),  # its lane failed the health gate:
        ("web2", "remove release v7"), ("lb1", "ready web2"),  # current back to v6, which still serves
        ("lb1", "drain web1"), ("web1", "switch current to v6"), ("lb1", "ready web1"),
        ("web3", "remove release v7"),  # staged, never switched
    ]  # and no worker restarted onto a release that did not stay
    assert any("(the canary)" not in note and "batch 2 (web2) failed" in note for note in outcome.notes)
    assert json.loads(runs["web1"].ctx.plan.files[STATE_FILE][0])["current"] == "v6"


def test_no_revert_leaves_the_switched_batches_on_the_new_release_with_their_workers() -> None:
    targets = lb_fleet(3)
    runs, balancers = fleet_runs(targets, web2=FleetHost(name="web2", broken=("health gate",)))
    outcome = deploy_phases(runs, plan_rollout(targets), sequential, balancers=balancers, revert=False)
    assert "web1" not in outcome.errors and "release v7 is live" in outcome.messages["web1"]
    assert ("web1", "workers: restart shop-worker-tasks.service") in LOG
    assert set(outcome.errors) == {"web2", "web3"}


def test_without_a_load_balancer_a_fleet_switches_every_host_at_once_as_before() -> None:
    targets = [t for t in lb_fleet(2) if t.name != "lb1"]
    runs, balancers = fleet_runs(targets)
    assert balancers == {} and not plan_rollout(targets).rolling
    outcome = deploy_phases(runs, plan_rollout(targets), sequential)
    assert outcome.errors == {} and outcome.notes == []
    assert order("switch current", "drain", "ready") == [("web1", "switch current to v7"), ("web2", "switch current to v7")]


def test_a_fleet_rollback_goes_through_the_same_batches_without_reverts() -> None:
    targets = lb_fleet(2)
    state = {"strategy": "zero_downtime", "current": "v7", "order": ["v6", "v7"],
             "releases": {"v6": {"commit": "a"}, "v7": {"commit": "b"}}}
    plans = {name: FleetHost(name=name, files={STATE_FILE: (json.dumps(state), "root", "644")}) for name in ("web1", "web2")}
    runs, balancers = fleet_runs(targets, **plans)
    outcome = switch_phases(runs, plan_rollout(targets), sequential, "rollback", balancers=balancers)
    assert outcome.errors == {}
    assert order("switch current", "drain", "ready") == [
        ("lb1", "drain web1"), ("web1", "switch current to v6"), ("lb1", "ready web1"),
        ("lb1", "drain web2"), ("web2", "switch current to v6"), ("lb1", "ready web2")]
