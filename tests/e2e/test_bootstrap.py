"""From a provider's fresh VPS (root with a password only, no key, no other user) to a host
djaploy deploys to: bootstrap creates the deploy user, then only that user gets in, with its key;
only SSH and the web ports answer; a second bootstrap changes nothing and never uses root."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import SANDBOX_NAME, Project, _can_boot_sandbox, http_get, make_project
from tests.conftest import missing_prerequisite

ENV = "fresh"
ROOT_PASSWORD = "fresh vps 'root' pw!"
INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[0]
hosts = [HostConfig("fresh-host", ssh_host=vm.address, ssh_user="deploy", ssh_key=vm.key_path,
                    ssh_known_hosts_file=vm.known_hosts_path, domains=[vm.address], timezone="Europe/Berlin",
                    env_vars={"DJANGO_ALLOWED_HOSTS": vm.address})]
'''
UNLISTED_PORT = 8765


@pytest.fixture(scope="module")
def vps() -> Iterator[object]:
    reason = _can_boot_sandbox()
    if reason:
        missing_prerequisite(reason)
    from djaploy.sandbox import Sandbox

    sandbox = Sandbox(name=SANDBOX_NAME)
    sandbox.down()
    (host,) = sandbox.up(count=1, root_password=ROOT_PASSWORD)
    try:
        yield host
    finally:
        sandbox.down()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, vps) -> Project:
    project = make_project(tmp_path_factory.mktemp("fresh") / "ledger")
    project.write(f"infra/inventory/{ENV}.py", INVENTORY)
    project.commit("fresh inventory", tag="v2")
    project.env["E2E_ROOT_PASSWORD"] = ROOT_PASSWORD
    return project


def as_deploy(vps, command: str) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(vps, command, user="deploy", timeout=60)
    assert result.returncode == 0, f"{command!r} failed: {result.stdout}{result.stderr}"
    return result.stdout


def password_login(vps, user: str, password: str) -> int:
    from djaploy.sandbox.host import ssh_run_password

    return ssh_run_password(vps, "true", user, password, timeout=30).returncode


def test_a_wrong_root_password_is_refused_and_changes_nothing(project: Project, vps) -> None:
    project.env["WRONG_PASSWORD"] = "not the password"
    result = project.manage("bootstrap", "--env", ENV, "--root-password-env", "WRONG_PASSWORD")
    assert result.returncode != 0
    assert "root@" in result.stderr and "refused the password: nothing was changed" in result.stderr
    assert password_login(vps, "root", ROOT_PASSWORD) == 0
    assert ROOT_PASSWORD not in result.stdout + result.stderr
    # No password given and no terminal to ask on: root refuses the deployer's key.
    result = project.manage("bootstrap", "--env", ENV)
    assert result.returncode != 0 and "refused the key" in result.stderr


def test_bootstrap_creates_the_deploy_user_then_closes_root_and_passwords(project: Project, vps) -> None:
    result = project.manage("bootstrap", "--env", ENV, "--root-password-env", "E2E_ROOT_PASSWORD", check=True)
    assert "created deploy; root login and passwords are now off" in result.stdout
    assert ROOT_PASSWORD not in result.stdout + result.stderr
    logs = list((project.root / ".djaploy" / "logs").glob("*-bootstrap-*.log"))
    assert logs and all(ROOT_PASSWORD not in log.read_text() for log in logs)
    assert as_deploy(vps, "sudo -n id -u").strip() == "0"
    assert as_deploy(vps, "cat /etc/timezone").strip() == "Europe/Berlin"
    # Root with its password: refused. Root with a key it now holds: refused too.
    assert password_login(vps, "root", ROOT_PASSWORD) != 0
    as_deploy(vps, "sudo install -d -m 700 /root/.ssh && sudo cp ~/.ssh/authorized_keys /root/.ssh/")
    from djaploy.sandbox import Sandbox

    assert Sandbox(name=SANDBOX_NAME).run(vps, "true", user="root", timeout=30).returncode != 0
    # A user with a password cannot log in with it.
    as_deploy(vps, "echo 'deploy:a-password-1' | sudo chpasswd")
    assert password_login(vps, "deploy", "a-password-1") != 0


def test_only_ssh_and_the_web_ports_are_reachable(project: Project, vps) -> None:
    as_deploy(vps, f"sudo systemd-run --unit=unlisted-port python3 -m http.server {UNLISTED_PORT} "
                   f"--bind {vps.address} --directory /tmp")
    # It listens (the host itself reaches it, not through the sandbox proxy), yet from outside it is dropped.
    as_deploy(vps, f"for i in $(seq 50); do curl -fsS -m 2 --noproxy '*' -o /dev/null http://{vps.address}:{UNLISTED_PORT}/ && exit 0; "
                   "sleep 0.2; done; exit 1")
    with pytest.raises(OSError):
        socket.create_connection((vps.address, UNLISTED_PORT), timeout=3).close()
    socket.create_connection((vps.address, 22), timeout=3).close()


def test_a_second_bootstrap_changes_nothing_and_never_uses_root(project: Project) -> None:
    result = project.manage("bootstrap", "--env", ENV, check=True)
    assert "[fresh-host] ok: no changes; deploy logs in with the key: root was not used" in result.stdout
    assert "creating it as root" not in result.stdout


def test_configureserver_and_deploy_as_the_new_user(project: Project, vps) -> None:
    project.manage("configureserver", "--env", ENV, check=True)
    project.manage("deploy", "--env", ENV, "--release", "v2", check=True)
    status, body = http_get(f"http://{vps.address}/")
    assert status == 200, body[:500]
    status, css = http_get(f"http://{vps.address}/static/entries/style.css")
    assert status == 200 and "ledger-css" in css
