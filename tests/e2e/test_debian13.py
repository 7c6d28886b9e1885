"""Debian 13 (trixie) smoke set: the suite runs in full on Debian 12; this is what CI runs on the
other release. Its own sandbox (NAME-d13) of trixie hosts, python_version="3.13" (trixie's python3).

Host 1: configureserver twice (the second changes nothing), a zero_downtime deploy under load
with no failed request, a rollback under load. Host 2: nginx and the certs module: certbot gets a
certificate from Pebble (HTTP-01), HTTPS serves it, and a renewal by Debian's certbot.service
reloads nginx through the deploy hook.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from djaploy.loadgen import Load
from tests.conftest import missing_prerequisite
from tests.e2e import pebble as pebble_helper
from tests.e2e.conftest import (
    SANDBOX_NAME,
    Project,
    assert_one_clean_switch,
    fresh_sandbox,
    http_get,
    make_project,
)
from tests.e2e.https_client import http_get_raw, https_get

OS_RELEASE = "debian-13"
PYTHON = "3.13"
NAME = f"{SANDBOX_NAME}-d13"
APP = "/home/ledger/apps/ledger"
ENV = "trixie"
DOMAIN = "ledger.test"

# Appended to the copy's config.py: trixie's Python, and optionally another module list.
CONFIG = '''
import dataclasses as _dataclasses
config = _dataclasses.replace(config, python_version={python!r},
                              modules=[m2 for m in config.modules for m2 in {swap!r}.get(m, [m])])
'''

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[{index}]
hosts = [HostConfig("web", ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=[{domain!r}], deployment_strategy="zero_downtime",
                    env_vars={{"DJANGO_ALLOWED_HOSTS": {domain!r}}}, module_options={options!r})]
'''


def remote(host, command: str) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=NAME).run(host, command, timeout=120)
    assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


def trixie_project(directory: Path, index: int, domain: str, swap: dict | None = None,
                   options: dict | None = None) -> Project:
    project = make_project(directory, sandbox_name=NAME)
    config = project.root / "infra" / "config.py"
    config.write_text(config.read_text() + CONFIG.format(python=PYTHON, swap=swap or {}))
    project.write(f"infra/inventory/{ENV}.py", INVENTORY.format(index=index, domain=domain, options=options or {}))
    project.commit("trixie inventory")
    return project


@pytest.fixture(scope="module")
def sandbox_hosts() -> Iterator[list]:
    """Overrides conftest's: two fresh hosts of this module's own sandbox, on Debian 13."""
    with fresh_sandbox(NAME, count=2, os_release=OS_RELEASE) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sandbox_hosts) -> Project:
    return trixie_project(tmp_path_factory.mktemp("trixie") / "ledger", 0, sandbox_hosts[0].address)


def served_version(host) -> str:
    status, body = http_get(f"http://{host.address}/version/")
    assert status == 200, body
    return body.strip()


def deploy_under_load(project: Project, host, *args: str):
    with Load(f"http://{host.address}/version/", clients=8, max_seconds=300) as load:
        time.sleep(0.5)
        result = project.manage(*args)
        time.sleep(0.5)
    print(load.report.summary())
    assert result.returncode == 0, result.stderr
    return result, load.report


def release(project: Project, version: str) -> None:
    project.set_version(version)
    project.commit(f"version {version}", tag=f"v{version}")


# --- host 1: configureserver, zero_downtime, rollback --------------------------------------------


def test_the_hosts_run_debian_13_with_python_3_13(sandbox_hosts) -> None:
    assert [host.os for host in sandbox_hosts] == [OS_RELEASE, OS_RELEASE]
    for host in sandbox_hosts:
        assert 'VERSION_CODENAME=trixie' in remote(host, "cat /etc/os-release")
        assert remote(host, "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'").strip() == PYTHON


def test_configureserver_twice_the_second_changes_nothing(project: Project, sandbox_hosts) -> None:
    host = sandbox_hosts[0]
    first = project.manage("configureserver", "--env", ENV, check=True)
    assert "[web] ok: " in first.stdout and "changed" in first.stdout
    second = project.manage("configureserver", "--env", ENV, check=True)
    assert "[web] ok: no changes" in second.stdout, second.stdout
    assert remote(host, "systemctl is-active nginx").strip() == "active"
    assert remote(host, f"python{PYTHON} -c 'import venv' && echo yes").strip() == "yes"


def test_zero_downtime_deploy_under_load_drops_nothing(project: Project, sandbox_hosts) -> None:
    host = sandbox_hosts[0]
    release(project, "10")
    project.manage("deploy", "--env", ENV, "--release", "v10", check=True)
    assert served_version(host) == "10"
    release(project, "11")
    _, report = deploy_under_load(project, host, "deploy", "--env", ENV, "--release", "v11")
    assert_one_clean_switch(report, "10", "11")
    assert remote(host, f"readlink {APP}/current").strip() == f"{APP}/releases/v11"
    # The release runs on trixie's own Python 3.13, in a venv made by it.
    venv_python = remote(host, f"{APP}/current/.djaploy-venv/bin/python -c 'import sys; print(sys.version)'")
    assert venv_python.startswith(f"{PYTHON}."), venv_python
    lane = remote(host, f"readlink {APP}/live.sock").split("/")[2]  # /run/ledger-b/ledger.sock: the lane serving
    pid = remote(host, f"systemctl show -p MainPID --value {lane}.service").strip()
    assert remote(host, f"readlink /proc/{pid}/cwd").strip() == f"{APP}/releases/v11"


def test_rollback_under_load_switches_back_cleanly(project: Project, sandbox_hosts) -> None:
    host = sandbox_hosts[0]
    result, report = deploy_under_load(project, host, "rollback", "--env", ENV)
    assert "rolled back from v11 to v10" in result.stdout
    assert_one_clean_switch(report, "11", "10")
    assert remote(host, f"readlink {APP}/current").strip() == f"{APP}/releases/v10"
    assert served_version(host) == "10"


# --- host 2: HTTPS from Pebble through certbot and nginx -----------------------------------------


@pytest.fixture(scope="module")
def pebble(sandbox_hosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[pebble_helper.Pebble]:
    reason = pebble_helper.available()
    if reason:
        missing_prerequisite(reason)
    vm = sandbox_hosts[1]
    server = pebble_helper.Pebble(vm.host_side_address, tmp_path_factory.mktemp("pebble"))
    server.start()
    try:
        server.add_a_record(DOMAIN, vm.address)
        (server.workdir / "root.pem").write_text(server.root_pem())
        yield server
    finally:
        print(server.log_tail(10))
        server.stop()


@pytest.fixture(scope="module")
def https_site(sandbox_hosts, pebble, tmp_path_factory: pytest.TempPathFactory) -> Project:
    options = {"certs": {"acme_server": pebble.directory_url, "ca_bundle": str(pebble.tls_ca), "email": "ops@ledger.test"}}
    swap = {"djaploy.modules.nginx": ["djaploy.modules.nginx", "djaploy.modules.certs"]}
    site = trixie_project(tmp_path_factory.mktemp("https") / "ledger", 1, DOMAIN, swap, options)
    configured = site.manage("configureserver", "--env", ENV, check=True)
    assert f"certs: issue certificate for {DOMAIN} (no certificate yet)" in configured.stdout
    site.manage("deploy", "--env", ENV, "--latest", check=True)
    return site


def certbot_serial(vm) -> int:
    return int(remote(vm, "openssl x509 -in /etc/letsencrypt/live/ledger/cert.pem -noout -serial").strip().split("=")[1], 16)


def served_serial(vm, root: Path) -> int:
    return int(https_get(vm.address, DOMAIN, "/health/", root)[2]["serialNumber"], 16)


def test_https_serves_pebbles_certificate_and_http_redirects(https_site: Project, sandbox_hosts, pebble) -> None:
    vm, root = sandbox_hosts[1], pebble.workdir / "root.pem"
    status, body, cert = https_get(vm.address, DOMAIN, "/version/", root)
    assert (status, body.strip()) == (200, "1")
    assert {name for kind, name in cert["subjectAltName"] if kind == "DNS"} == {DOMAIN}
    assert served_serial(vm, root) == certbot_serial(vm)
    assert http_get_raw(vm.address, DOMAIN, "/version/")[:2] == (301, f"https://{DOMAIN}/version/")
    again = https_site.manage("configureserver", "--env", ENV, check=True)
    assert "[web] ok: no changes" in again.stdout, again.stdout


def test_a_renewal_by_debians_certbot_timer_reloads_nginx(https_site: Project, sandbox_hosts, pebble) -> None:
    vm, root = sandbox_hosts[1], pebble.workdir / "root.pem"
    assert remote(vm, "systemctl is-enabled certbot.timer").strip() == "enabled"
    before = certbot_serial(vm)
    remote(vm, "systemctl start certbot.service")  # Pebble's week-long certificates are always due
    after = certbot_serial(vm)
    assert after != before
    deadline = time.monotonic() + 15  # nginx's reload returns before the new workers serve
    while served_serial(vm, root) != after and time.monotonic() < deadline:
        time.sleep(0.2)
    assert served_serial(vm, root) == after
