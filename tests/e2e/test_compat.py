"""Coming from djaploy 1.x (issue 12): an infra/ folder written as that README's examples deploys,
and two apps with different app_name share one sandbox host without touching each other.

One module fixture: two copies of infra_example on the first sandbox host, both zero_downtime and
under the same app user, "myapp" with infra/ as the README writes it (config, inventory with
ssh_hostname and app_name, prepare.py with run_command, a custom module calling pyinfra
operations, deploy_files with a unit) and "otherapp". Where the README cannot work here as
written, the difference is the smallest possible and said where it is made.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from djaploy.loadgen import Load
from tests.e2e.conftest import SANDBOX_NAME, SECRET_KEY, Project, http_get, make_project

ENV = "production"

CONFIG = '''from djaploy.config import DjaployConfig
from pathlib import Path

config = DjaployConfig(
    project_name="myapp",
    djaploy_dir=Path(__file__).parent,
    manage_py_path=Path("manage.py"),
    python_version="3.11",
    app_user="app",
    ssh_user="root",  # the README's "deploy": the sandbox's user is root
    modules=[
        "djaploy.modules.core",
        "djaploy.modules.nginx",
        "djaploy.modules.systemd",
        "infra.modules.custom",  # the README: "myproject.infra.modules.custom" (its one BaseModule subclass)
    ],
    services={services},
    secrets={{"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY"}},  # the example app needs its key
)
'''

INVENTORY = '''from djaploy import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[0]
hosts = [
    HostConfig(
        "web-1",
        ssh_hostname=vm.address,
        ssh_user="root",
        app_name="{app}",
        app_user="app",
        env="production",
        services={services},
        deployment_strategy="zero_downtime",
        ssh_key=vm.key_path,  # the sandbox's key and host key
        ssh_known_hosts_file=vm.known_hosts_path,
        domains=["{app}.test"],
        env_vars={{"DJANGO_ALLOWED_HOSTS": "{app}.test"}},
    ),
]
'''

PREPARE = '''from djaploy.prepare import run_command


def prepare():
    run_command("echo npm run build: front end built")  # no npm here: the same call, a command that exists
'''

MODULE = '''import io

from djaploy.modules.base import BaseModule
from pyinfra.operations import files, server


class MyModule(BaseModule):
    def configure_server(self, host):
        files.put(src=io.StringIO("configured\\n"), dest=f"/etc/{host.target.app_name}-custom")

    def deploy(self, host, artifact_path):
        server.shell(name="record the release", commands=[f"ls {artifact_path}/manage.py > /etc/{host.target.app_name}-deployed"])

'''

WORKER_UNIT = '''[Unit]
Description={app} worker

[Service]
User=app
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
'''

README_UNIT = '''[Unit]
Description=My Django App
After=network.target
[Service]
Type=simple
User=app
WorkingDirectory=/home/app/apps/myapp
ExecStart=/home/app/.local/bin/poetry run gunicorn config.wsgi
Restart=on-failure
[Install]
WantedBy=multi-user.target
'''


def readme_project(directory: Path, app: str, services: list[str]) -> Project:
    project = make_project(directory)
    shutil.rmtree(project.root / "infra")
    project.write("infra/config.py", CONFIG.format(services=services))
    project.write(f"infra/inventory/{ENV}.py", INVENTORY.format(app=app, services=services))
    project.write("infra/prepare.py", PREPARE)
    project.write("infra/modules/__init__.py", "")
    project.write("infra/modules/custom.py", MODULE)
    project.write(f"infra/deploy_files/{ENV}/etc/systemd/system/app.service", README_UNIT)
    project.write(f"infra/deploy_files/{ENV}/etc/systemd/system/{app}-worker.service", WORKER_UNIT.format(app=app))
    project.env["LEDGER_SECRET_KEY"] = SECRET_KEY
    project.commit("infra as the 1.x README writes it")
    return project


def remote(host, command: str) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(host, command)
    assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


def version(vm, app: str) -> str:
    status, body = http_get(f"http://{vm.address}/version/", host=f"{app}.test")
    assert status == 200, body
    return body.strip()


def release(project: Project, number: str) -> None:
    project.set_version(number)
    project.commit(f"version {number}", tag=f"r{number}")


def pids(vm, app: str) -> str:
    """What a restart or reload of the app's units would change: main PIDs and activation times."""
    return remote(vm, f"systemctl show -p MainPID -p ExecMainStartTimestamp -p ActiveEnterTimestamp {app}.service "
                      f"{app}.socket {app}-worker.service")


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, sandbox_hosts):
    vm = sandbox_hosts[0]
    myapp = readme_project(tmp_path_factory.mktemp("myapp") / "myapp", "myapp", ["myapp", "myapp-worker"])
    other = readme_project(tmp_path_factory.mktemp("other") / "other", "otherapp", ["otherapp-worker"])
    for project, number in ((myapp, "1"), (other, "101")):
        project.manage("djaploy", "configureserver", "--env", ENV, check=True)
        release(project, number)
        deployed = project.manage("djaploy", "deploy", "--env", ENV, "--latest", check=True)
        assert "prepare | npm run build: front end built" in deployed.stdout
        assert "MyModule: record the release: changed" in deployed.stdout
    return vm, myapp, other


def test_the_1x_readme_project_deploys_and_answers(apps) -> None:
    vm, myapp, _ = apps
    assert version(vm, "myapp") == "1"
    assert remote(vm, "cat /etc/myapp-custom") == "configured\n"
    assert remote(vm, "cat /etc/myapp-deployed").startswith("/home/app/apps/myapp/releases/")
    assert remote(vm, "readlink /home/app/apps/myapp/current").startswith("/home/app/apps/myapp/releases/")
    assert remote(vm, "systemctl is-active myapp-a.service myapp-worker.service").split() == ["active", "active"]
    assert "poetry run gunicorn" in remote(vm, "cat /etc/systemd/system/app.service")  # installed, as written


def test_djaploy_status_and_rollback(apps) -> None:
    vm, myapp, _ = apps
    release(myapp, "2")
    myapp.manage("djaploy", "deploy", "--env", ENV, "--latest", check=True)
    assert version(vm, "myapp") == "2"
    status = myapp.manage("djaploy", "status", "--env", ENV, check=True).stdout
    assert "zero_downtime" in status and "live release:" in status
    rolled = myapp.manage("djaploy", "rollback", "--env", ENV, check=True)
    assert "rolled back" in rolled.stdout
    assert version(vm, "myapp") == "1"


@pytest.mark.parametrize(("deployed", "watched"), [("myapp", "otherapp"), ("otherapp", "myapp")])
def test_deploying_one_app_never_touches_the_other(apps, deployed: str, watched: str) -> None:
    vm, myapp, other = apps
    project = myapp if deployed == "myapp" else other
    before, served = pids(vm, watched), version(vm, watched)
    release(project, str(int(version(vm, deployed)) + 10))
    with Load(f"http://{vm.address}/version/", clients=4, host_header=f"{watched}.test", max_seconds=300) as load:
        time.sleep(0.5)
        project.manage("djaploy", "deploy", "--env", ENV, "--latest", check=True)
        time.sleep(0.5)
    print(load.report.summary())
    assert load.report.failures == 0, load.report.failure_reasons
    assert set(load.report.bodies_in_order) == {served}
    assert pids(vm, watched) == before  # not restarted, not reloaded
    assert version(vm, deployed) != served
