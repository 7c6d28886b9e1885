"""A fleet's deploy in phases (djaploy.rollout), on recording hosts: the order across hosts, migrations
once, a failure before the switch, the environment's lock (all or nothing), and the plan of phases."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult
from djaploy.errors import ConfigError, LockHeld, RemoteError
from djaploy.inventory import resolve_targets
from djaploy.modules.base import load_modules
from djaploy.rollout import HostRun, Stopped, deploy_phases, switch_phases
from djaploy.rollout_plan import plan_rollout
from tests.unit.conftest import MODULE_A, MODULE_B, RecordingPlan, make_ctx

LOG: list[tuple[str, str]] = []  # (host, step) across every host, in the order they ran


@dataclass
class FleetHost(RecordingPlan):
    """A recording host: its lock is free unless `lock_held`; steps starting with `broken` fail."""

    name: str = "web1"
    lock_held: bool = False
    broken: tuple[str, ...] = ()
    shared: list[tuple[str, str]] = field(default_factory=lambda: LOG)

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        super().run(step, command, as_user=as_user)
        self.shared.append((self.name, step))
        if step.startswith(self.broken):
            raise RemoteError(self.name, step, "exit status 1")
        if step == "take the deploy lock":
            return CommandResult(True, 'held\n{"by": "ann@laptop"}' if self.lock_held else "acquired\n")
        return CommandResult(True, "")


def sequential(names: Sequence[str], work: Callable[[str], object]) -> dict[str, BaseException]:
    errors: dict[str, BaseException] = {}
    for name in names:
        try:
            work(name)
        except Exception as error:  # noqa: BLE001 - collected per host like the engine does
            errors[name] = error
    return errors


def fleet(*hosts: HostConfig, strategy: str = "zero_downtime", workers: dict[str, Any] | None = None) -> list[Target]:
    """Hosts of shop in production with the recording modules (and postgres when a host has the db role)."""
    postgres = [POSTGRES] if any("db" in host.roles for host in hosts) else []
    config = DjaployConfig(project_name="shop", modules=[MODULE_A, MODULE_B, *postgres], deployment_strategy=strategy,
                           workers=workers or {})
    return resolve_targets(config, list(hosts), "production", environ={}, source_file="inventory/production.py")


WEB1 = HostConfig("web1", ssh_host="10.0.0.1", domains=["shop.example.com"])
WEB2 = HostConfig("web2", ssh_host="10.0.0.2", roles=["web", "worker"], domains=["shop.example.com"])
LB = HostConfig("lb1", ssh_host="10.0.0.9", roles=["lb"])
DB = HostConfig("db1", ssh_host="10.0.0.8", roles=["db"])
POSTGRES = "djaploy.modules.postgres"


def runs_for(targets: list[Target], **plans: FleetHost) -> dict[str, HostRun]:
    LOG.clear()
    plan = plan_rollout(targets)
    return {t.name: HostRun(make_ctx(plans.get(t.name) or FleetHost(name=t.name), t), load_modules([MODULE_A, MODULE_B]))
            for t in targets if t.name in plan.app_hosts}


def steps_of(host: str) -> list[str]:
    return [step for name, step in LOG if name == host]


def test_the_plan_of_phases_names_app_hosts_primary_and_idle_hosts() -> None:
    plan = plan_rollout(fleet(WEB1, WEB2, DB, LB))
    assert (plan.app_hosts, plan.primary, plan.idle_hosts, plan.migrate_once) == (("web1", "web2"), "web1", ("db1", "lb1"), True)
    assert not plan_rollout(fleet(WEB1, DB)).migrate_once  # one app host: it migrates while staging, as always
    assert not plan_rollout(fleet(WEB1, WEB2)).migrate_once  # no shared database: each migrates its own SQLite


def test_a_bluegreen_worker_without_web_is_refused_before_any_connection() -> None:
    with pytest.raises(ConfigError, match="worker without the 'web' role"):
        plan_rollout(fleet(WEB1, HostConfig("work1", ssh_host="h", roles=["worker"]), strategy="bluegreen"))


def test_hosts_without_a_shared_database_each_migrate_while_staging() -> None:
    targets = fleet(WEB1, WEB2)
    runs = runs_for(targets)
    assert deploy_phases(runs, plan_rollout(targets), sequential).errors == {}
    assert all(run.ctx.runs_migrations for run in runs.values())
    assert not any(step.startswith("migrate once") for _, step in LOG)


def test_in_place_in_a_fleet_prepares_beside_the_live_code_before_the_primary_migrates() -> None:
    targets = fleet(WEB1, WEB2, DB, strategy="in_place")
    runs = runs_for(targets)
    assert deploy_phases(runs, plan_rollout(targets), sequential).errors == {}
    order = [(h, s) for h, s in LOG if s in ("b.prepare_release", "put release in place") or s.startswith("migrate once")]
    assert order == [("web1", "b.prepare_release"), ("web2", "b.prepare_release"),
                     ("web1", "migrate once for the environment (primary web1)"),
                     ("web1", "put release in place"), ("web2", "put release in place")]
    assert steps_of("web1").count("b.prepare_release") == 1


def test_every_host_stages_before_any_switches_and_the_primary_alone_migrates_in_between() -> None:
    targets = fleet(WEB1, WEB2, DB)
    runs = runs_for(targets)
    outcome = deploy_phases(runs, plan_rollout(targets), sequential)
    assert outcome.errors == {}
    order = [(host, step) for host, step in LOG if step in ("b.prepare_release", "switch current to v7") or step.startswith("migrate once")]
    assert order == [("web1", "b.prepare_release"), ("web2", "b.prepare_release"),
                     ("web1", "migrate once for the environment (primary web1)"),
                     ("web1", "switch current to v7"), ("web2", "switch current to v7")]
    assert all(not run.ctx.runs_migrations for run in runs.values())  # core's prepare_release skips migrate
    assert not any(step.startswith("migrate once") for step in steps_of("web2"))
    for host in ("web1", "web2"):
        steps = steps_of(host)
        assert steps[0] == "take the deploy lock" and steps[-1] == "write the audit line and release the deploy lock"
        assert "release v7 is live" in outcome.messages[host]


def test_a_failure_while_staging_on_one_host_switches_no_host_and_discards_the_release_everywhere() -> None:
    targets = fleet(WEB1, WEB2, DB)
    runs = runs_for(targets, web2=FleetHost(name="web2", broken=("b.prepare_release",)))
    outcome = deploy_phases(runs, plan_rollout(targets), sequential)
    assert isinstance(outcome.errors["web2"], RemoteError)
    assert isinstance(outcome.errors["web1"], Stopped) and "web2 failed" in str(outcome.errors["web1"])
    assert not any(step == "switch current" for _, step in LOG)
    assert not any(step.startswith("migrate once") for _, step in LOG)
    assert "remove release v7" in steps_of("web1") and "remove release v7" in steps_of("web2")
    for host in ("web1", "web2"):  # each lock released with its audit line, saying it failed
        assert steps_of(host)[-1] == "write the audit line and release the deploy lock"
        assert '"result": "failed"' in runs[host].ctx.plan.commands[-1]


def test_a_failed_migration_switches_no_host() -> None:
    targets = fleet(WEB1, WEB2, DB)
    runs = runs_for(targets, web1=FleetHost(name="web1", broken=("migrate once",)))
    outcome = deploy_phases(runs, plan_rollout(targets), sequential)
    assert set(outcome.errors) == {"web1", "web2"} and isinstance(outcome.errors["web2"], Stopped)
    assert not any(step == "switch current" for _, step in LOG)
    assert "remove release v7" in steps_of("web1") and "remove release v7" in steps_of("web2")


def test_the_environment_lock_is_all_or_nothing() -> None:
    targets = fleet(WEB1, WEB2)
    runs = runs_for(targets, web2=FleetHost(name="web2", lock_held=True))
    outcome = deploy_phases(runs, plan_rollout(targets), sequential)
    assert isinstance(outcome.errors["web2"], LockHeld) and "ann@laptop" in str(outcome.errors["web2"])
    assert isinstance(outcome.errors["web1"], Stopped)
    assert steps_of("web1") == ["take the deploy lock", "release the deploy lock (another host's is held)"]
    assert steps_of("web2") == ["take the deploy lock"]  # the holder's lock is not touched


def test_rollback_covers_every_app_host_under_the_lock() -> None:
    targets = fleet(WEB1, WEB2)
    state = {"strategy": "zero_downtime", "current": "v7", "order": ["v6", "v7"],
             "releases": {"v6": {"commit": "a"}, "v7": {"commit": "b"}}}
    plans = {}
    for name in ("web1", "web2"):
        plans[name] = FleetHost(name=name, files={"/home/shop/apps/shop/.djaploy/state.json": (json.dumps(state), "root", "644")})
    runs = runs_for(targets, **plans)
    outcome = switch_phases(runs, plan_rollout(targets), sequential, "rollback")
    assert outcome.errors == {}
    assert outcome.messages == {"web1": "rolled back from v7 to v6", "web2": "rolled back from v7 to v6"}
    assert all(steps_of(h)[0] == "take the deploy lock" for h in ("web1", "web2"))


@dataclass
class HostWithPython(FleetHost):
    """A host whose OS carries the configured python3.X (choosing and providing it: test_python)."""

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        super().query(command, as_user=as_user)
        if "apt=yes" in command:
            return CommandResult(True, "apt=yes\n")
        return CommandResult(True, "3.11.2\n" if "sys.version_info" in command else "")


def _configure(host: HostConfig, *modules: str) -> list[str]:
    from dataclasses import replace

    (target,) = [t for t in fleet(WEB1, host) if t.name == host.name]
    target = replace(target, modules=modules, python_provider="system")  # the interpreter is test_python's concern
    ctx = make_ctx(HostWithPython(name=target.name), target)
    for module in load_modules(list(modules)):
        module.configure_server(ctx)
    return ctx.plan.steps


def test_configureserver_gives_a_host_only_what_its_roles_need() -> None:
    web = _configure(HostConfig("web3", ssh_host="10.0.0.3"), "djaploy.modules.core", "djaploy.modules.nginx")
    assert any(step.startswith("core: app user") for step in web) and "nginx: site" in web
    lb = _configure(LB, "djaploy.modules.core", "djaploy.modules.nginx")
    assert lb == ["core: install python and tools"]  # no app user, folders, uv or site
    worker = _configure(HostConfig("work1", ssh_host="10.0.0.4", roles=["worker"]), "djaploy.modules.core",
                        "djaploy.modules.nginx")
    assert any(step.startswith("core: app user") for step in worker) and not any(s.startswith("nginx") for s in worker)


def test_a_worker_host_stages_and_switches_without_gunicorn_or_a_site() -> None:
    targets = fleet(WEB1, HostConfig("work1", ssh_host="10.0.0.4", roles=["worker"]),
                    workers={"tasks": "manage.py process_tasks"})
    runs = runs_for(targets)
    for run in runs.values():
        run.modules = load_modules(["djaploy.modules.systemd", MODULE_A])
    outcome = deploy_phases(runs, plan_rollout(targets), sequential)
    assert outcome.errors == {}
    worker_steps = steps_of("work1")
    assert "switch current to v7" in worker_steps and not any(s.startswith("health gate") for s in worker_steps)
    assert not any("gunicorn" in s or s.startswith("systemd: shop") for s in worker_steps)
    assert any(s.startswith("workers: restart shop-worker-tasks.service") for s in worker_steps)
    assert any(s.startswith("health gate") for s in steps_of("web1"))
    assert "workers restarted: tasks" in outcome.messages["work1"]


def test_after_a_partial_switch_the_summary_says_who_serves_what_and_what_to_run() -> None:
    from djaploy.session import RunResult
    from djaploy.summary import summary_lines

    result = RunResult("deploy", "production", dry_run=False, errors={"web2": RemoteError("web2", "core: health check", "500")},
                       changed={"web1": 9, "web2": 7}, messages={"web1": "release v8 is live"},
                       urls={"web1": ["http://shop.example.com/"], "web2": ["http://shop.example.com/"]},
                       serving={"web2": "release v7"})
    lines = summary_lines(result)
    assert "[web1] ok: 9 step(s) changed; release v8 is live" in lines
    assert "[web2]   now serving: release v7" in lines
    assert any("web1 switched, web2 did not" in line for line in lines)
    assert any("deploy again" in line and "manage.py deploy --env production" in line for line in lines)


def test_a_fleet_rollback_switches_no_host_unless_every_host_can() -> None:
    targets = fleet(WEB1, WEB2)
    state = {"strategy": "zero_downtime", "current": "v7", "order": ["v6", "v7"],
             "releases": {"v6": {"commit": "a"}, "v7": {"commit": "b"}}}
    alone = {**state, "order": ["v7"], "releases": {"v7": {"commit": "b"}}}  # web2 keeps no previous release
    state_file = "/home/shop/apps/shop/.djaploy/state.json"
    runs = runs_for(targets, web1=FleetHost(name="web1", files={state_file: (json.dumps(state), "root", "644")}),
                    web2=FleetHost(name="web2", files={state_file: (json.dumps(alone), "root", "644")}))
    outcome = switch_phases(runs, plan_rollout(targets), sequential, "rollback")
    assert "no previous release" in str(outcome.errors["web2"])
    assert isinstance(outcome.errors["web1"], Stopped) and "web2 cannot" in str(outcome.errors["web1"])
    assert not any(step.startswith("switch current to") for _, step in LOG)
