"""HTTPS at the load balancer end to end, against Pebble: host 1 is the lb (HAProxy + certbot), host 2
a web host (nginx, no certificate of its own), real SSH.

configureserver gets the certificate through HTTP-01 on the lb host (HAProxy routes the challenge to
certbot's own server); HTTPS through the LB answers with it (checked against Pebble's root, with
SNI), HTTP redirects to it, the web host holds no certificate; a second configureserver changes
nothing; a forced renewal and certbot's timer reload HAProxy under HTTPS load with 0 failed requests.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import missing_prerequisite
from tests.e2e import pebble as pebble_helper
from tests.e2e.conftest import SANDBOX_NAME, Project
from tests.e2e.https_client import HttpsLoad, http_get_raw, https_get

ENV = "edge"
DOMAIN = "ledger.test"

CONFIG = '''
from djaploy.config import DjaployConfig

config = DjaployConfig(
    project_name="ledger",
    health_check_path="/health/",
    secrets={{"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY"}},
    modules=["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.certs", "djaploy.modules.systemd",
             "djaploy.modules.haproxy"],
    module_options={options!r},
)
'''

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

lb, web = sandbox_hosts()[:2]
def host(name, vm, **more):
    return HostConfig(name, ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                      domains=["{domain}"], **more)

hosts = [host("lb", lb, roles=["lb"]), host("web1", web, env_vars={{"DJANGO_ALLOWED_HOSTS": "{domain}"}})]
'''


def remote(vm, command: str) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(vm, command, timeout=120)
    assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def edge(project: Project, sandbox_hosts, tmp_path_factory: pytest.TempPathFactory):
    reason = pebble_helper.available()
    if reason:
        missing_prerequisite(reason)
    lb = sandbox_hosts[0]
    server = pebble_helper.Pebble(lb.host_side_address, tmp_path_factory.mktemp("pebble-lb"))
    server.start()
    try:
        server.add_a_record(DOMAIN, lb.address)
        root = server.workdir / "root.pem"
        root.write_text(server.root_pem())
        options = {"certs": {"acme_server": server.directory_url, "ca_bundle": str(server.tls_ca),
                             "email": "ops@ledger.test"}}
        project.write("infra/config.py", CONFIG.format(options=options))
        project.write(f"infra/inventory/{ENV}.py", INVENTORY.format(domain=DOMAIN))
        project.commit("behind an HTTPS load balancer")
        configured = project.manage("configureserver", "--env", ENV, check=True)
        assert f"haproxy: issue certificate for {DOMAIN} (no certificate yet)" in configured.stdout
        project.manage("deploy", "--env", ENV, "--latest", check=True)
        yield project, lb, sandbox_hosts[1], root
    finally:
        print(server.log_tail(10))
        server.stop()


def lb_serial(lb) -> int:
    return int(remote(lb, "openssl x509 -in /etc/letsencrypt/live/ledger/cert.pem -noout -serial").strip().split("=")[1], 16)


def served_serial(lb, root: Path) -> int:
    return int(https_get(lb.address, DOMAIN, "/health/", root)[2]["serialNumber"], 16)


def wait_for_served_serial(lb, root: Path, wanted: int, seconds: float = 15) -> int:
    deadline = time.monotonic() + seconds
    served = served_serial(lb, root)
    while served != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        served = served_serial(lb, root)
    return served


def test_https_through_the_lb_with_pebbles_certificate_and_http_redirects(edge) -> None:
    _, lb, web, root = edge
    status, body, cert = https_get(lb.address, DOMAIN, "/version/", root)
    assert status == 200 and body.strip(), body
    assert {name for kind, name in cert["subjectAltName"] if kind == "DNS"} == {DOMAIN}
    assert served_serial(lb, root) == lb_serial(lb)
    status, location, _ = http_get_raw(lb.address, DOMAIN, "/version/?a=1")
    assert (status, location) == (301, f"https://{DOMAIN}/version/?a=1")
    # the challenge path is not redirected: HAProxy sends it to certbot (not listening now: 503)
    assert http_get_raw(lb.address, DOMAIN, "/.well-known/acme-challenge/probe")[0] == 503
    assert remote(lb, "stat -c '%a %U' /etc/haproxy/certs/ledger.pem").strip() == "600 root"
    assert remote(lb, "systemctl is-enabled certbot.timer").strip() == "enabled"
    assert remote(web, "test -e /etc/letsencrypt/live/ledger && echo yes || echo no").strip() == "no"


def test_configureserver_again_changes_nothing(edge) -> None:
    project, lb, _, root = edge
    before = lb_serial(lb)
    again = project.manage("configureserver", "--env", ENV, check=True)
    for name in ("lb", "web1"):
        assert f"[{name}] ok: no changes" in again.stdout, again.stdout
    assert lb_serial(lb) == before == served_serial(lb, root)


def test_forced_renewal_reloads_haproxy_under_https_load_without_failed_requests(edge) -> None:
    project, lb, _, root = edge
    before = lb_serial(lb)
    with HttpsLoad(lb.address, DOMAIN, "/version/", root) as load:
        time.sleep(1)
        renewed = project.manage("certs", "--env", ENV, "--renew", "--force")
        time.sleep(2)
    report = load.report
    print(f"forced renewal under HTTPS load: {report.summary()}")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert "certificate renewed; HAProxy reloaded by the deploy hook" in renewed.stdout
    assert "[web1] ok" in renewed.stdout and "HTTPS terminates at the load balancer" in renewed.stdout
    after = lb_serial(lb)
    assert after != before and wait_for_served_serial(lb, root, after) == after
    assert report.ok > 100 and report.failures == 0, report.failure_reasons


def test_certbot_timer_renews_and_the_hook_reloads_haproxy(edge) -> None:
    _, lb, _, root = edge
    before = lb_serial(lb)
    remote(lb, "systemctl start certbot.service")  # Pebble's week-long certificates are always due
    after = lb_serial(lb)
    assert after != before and wait_for_served_serial(lb, root, after) == after
