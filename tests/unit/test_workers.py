"""config.py's workers: validation, where each runs, its systemd unit, restart and retirement."""

from __future__ import annotations

import pytest

from djaploy.config import DjaployConfig, HostConfig
from djaploy.context import CommandResult
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from djaploy.worker_settings import Worker, WorkerError, parse_workers
from djaploy.workers import placement, update_workers, worker_unit
from tests.unit.conftest import RecordingPlan, make_ctx


def test_a_command_line_and_the_dict_form() -> None:
    workers = parse_workers({"tasks": "manage.py process_tasks --queue=mail",
                             "scheduler": {"command": "manage.py run_scheduler", "singleton": True,
                                           "stop_grace_seconds": 90}})
    assert workers == (Worker("tasks", ("process_tasks", "--queue=mail")),
                       Worker("scheduler", ("run_scheduler",), singleton=True, stop_grace_seconds=90))


@pytest.mark.parametrize("workers, message", [
    ({"tasks": "process_tasks"}, "must be a manage.py command line"),
    ({"tasks": "python manage.py process_tasks"}, "must be a manage.py command line"),
    ({"tasks": "manage.py process_tasks $(touch x)"}, "argument '$(touch' may hold only"),
    ({"Tasks!": "manage.py process_tasks"}, "worker name 'Tasks!'"),
    ({"tasks": {"command": "manage.py x", "singelton": True}}, "unknown key(s) 'singelton'"),
    ({"tasks": {"singleton": True}}, "needs 'command'"),
    ({"tasks": {"command": "manage.py x", "singleton": "yes"}}, "must be True or False"),
    ({"tasks": {"command": "manage.py x", "stop_grace_seconds": 0}}, "whole seconds from 1 to 3600"),
    ({"tasks": 3}, "the command must be a string"),
])
def test_bad_workers_are_refused_with_the_entry_and_the_reason(workers: dict, message: str) -> None:
    with pytest.raises(WorkerError) as info:
        parse_workers(workers)
    assert message in str(info.value)
    with pytest.raises(ConfigError) as config_error:
        DjaployConfig(project_name="shop", workers=workers)
    assert config_error.value.field == "DjaployConfig.workers"


def _targets(*hosts: HostConfig, workers: dict) -> list:
    config = DjaployConfig(project_name="shop", workers=workers)
    return resolve_targets(config, list(hosts), "production", environ={}, source_file="inventory/production.py")


def test_workers_run_on_worker_hosts_and_a_singleton_on_the_first_one_only() -> None:
    targets = _targets(HostConfig("web1", ssh_host="h1"), HostConfig("work1", ssh_host="h2", roles=["worker"]),
                       HostConfig("work2", ssh_host="h3", roles=["web", "worker"]),
                       workers={"tasks": "manage.py process_tasks",
                                "cron": {"command": "manage.py cron", "singleton": True}})
    places = {host: [w.name for w in workers] for host, workers in placement(targets).items()}
    assert places == {"web1": [], "work1": ["tasks", "cron"], "work2": ["tasks"]}


def test_workers_without_a_worker_host_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="need a host with the 'worker' role"):
        _targets(HostConfig("web1", ssh_host="h1"), workers={"tasks": "manage.py process_tasks"})


def test_the_unit_runs_from_the_live_release_and_stops_gracefully() -> None:
    ctx = make_ctx()
    unit = worker_unit(ctx, Worker("tasks", ("process_tasks",), stop_grace_seconds=45), "/home/shop/apps/shop/current")
    assert "ExecStart=/home/shop/apps/shop/current/.djaploy-venv/bin/python manage.py process_tasks\n" in unit
    assert "EnvironmentFile=/home/shop/apps/shop/current/.djaploy-env\n" in unit  # DJAPLOY_RELEASE and the rest
    assert "WorkingDirectory=/home/shop/apps/shop/current\n" in unit
    assert "KillSignal=SIGTERM\n" in unit and "KillMode=mixed\n" in unit and "TimeoutStopSec=45\n" in unit
    assert "User=shop\n" in unit


class Installed(RecordingPlan):
    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        if command.startswith("ls -1 /etc/systemd/system/shop-worker-"):
            return CommandResult(True, "/etc/systemd/system/shop-worker-tasks.service\n"
                                       "/etc/systemd/system/shop-worker-old.service\n")
        return super().query(command, as_user=as_user)


def test_a_deploy_restarts_the_wanted_workers_and_retires_the_removed_one() -> None:
    ctx = make_ctx(Installed(), state={"strategy": "zero_downtime", "current": "v7"})
    line = update_workers(ctx, [Worker("tasks", ("process_tasks",))])
    assert "/etc/systemd/system/shop-worker-tasks.service" in ctx.plan.files
    command = ctx.plan.commands[-1]
    assert "systemctl disable --now shop-worker-old.service; rm -f /etc/systemd/system/shop-worker-old.service" in command
    assert command.endswith("systemctl enable shop-worker-tasks.service && systemctl restart shop-worker-tasks.service")
    assert line == "workers restarted: tasks; retired: shop-worker-old.service"


def test_a_host_without_workers_and_none_installed_changes_nothing() -> None:
    ctx = make_ctx()
    assert update_workers(ctx, []) is None
    assert ctx.plan.steps == []
