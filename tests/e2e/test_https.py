"""HTTPS end to end against Pebble (Let's Encrypt's ACME test server), on real sandbox hosts.

Host 1: nginx + the certs module. certbot gets the certificate through HTTP-01 on nginx during
configureserver; HTTPS answers with it (checked against Pebble's issuing root, with SNI for the
test domain); HTTP redirects except the ACME path; a forced renewal and the certbot timer reload
nginx while HTTPS load runs. Host 2: Caddy's automatic HTTPS against Pebble, a bluegreen switch
and a Caddy reload under HTTPS load.

HTTPS load and its one retry rule: tests/e2e/https_client.py.
"""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path

import pytest

from djaploy.loadgen import LoadReport
from tests.conftest import missing_prerequisite
from tests.e2e import pebble as pebble_helper
from tests.e2e.conftest import SANDBOX_NAME, Project, assert_one_clean_switch, make_project
from tests.e2e.https_client import HttpsLoad, http_get_raw, https_get

DOMAINS = ("ledger.test", "www.ledger.test")
ENV = "tls"
APP = "/home/ledger/apps/ledger"

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[{index}]
hosts = [HostConfig("web", ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains={domains!r}, deployment_strategy={strategy!r},
                    env_vars={{"DJANGO_ALLOWED_HOSTS": {allowed!r}}},
                    module_options={options!r})]
'''

# Appended to the copy's config.py: the same config with another web server module list.
MODULES = '''
import dataclasses as _dataclasses
config = _dataclasses.replace(config, modules=[m2 for m in config.modules for m2 in {swap!r}.get(m, [m])])
'''


# --- fixtures -----------------------------------------------------------------------------------


def remote(host, command: str, check: bool = True) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(host, command, timeout=120)
    if check:
        assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def pebbles(sandbox_hosts, tmp_path_factory: pytest.TempPathFactory):
    """A fresh Pebble per sandbox host (each host reaches only its own link), A records for the
    test domains pointing at that host."""
    reason = pebble_helper.available()
    if reason:
        missing_prerequisite(reason)
    started = []
    try:
        for index, vm in enumerate(sandbox_hosts):
            server = pebble_helper.Pebble(vm.host_side_address, tmp_path_factory.mktemp(f"pebble{index}"))
            server.start()
            started.append(server)
            for domain in DOMAINS:
                server.add_a_record(domain, vm.address)
            (server.workdir / "root.pem").write_text(server.root_pem())
        yield started
    finally:
        for server in started:
            print(server.log_tail(10))
            server.stop()


def https_project(directory: Path, index: int, swap: dict[str, list[str]], strategy: str, options: dict,
                  domains: tuple[str, ...] = DOMAINS) -> Project:
    project = make_project(directory)
    config = project.root / "infra" / "config.py"
    config.write_text(config.read_text() + MODULES.format(swap=swap))
    use_inventory(project, index, strategy, options, domains)
    project.commit("https inventory")
    return project


def use_inventory(project: Project, index: int, strategy: str, options: dict, domains: tuple[str, ...] = DOMAINS) -> None:
    project.write(f"infra/inventory/{ENV}.py", INVENTORY.format(
        index=index, domains=list(domains), strategy=strategy, allowed=",".join(domains), options=options))


def root_of(server: pebble_helper.Pebble) -> Path:
    return server.workdir / "root.pem"


def served_serial(address: str, domain: str, root: Path) -> int:
    return int(https_get(address, domain, "/health/", root)[2]["serialNumber"], 16)


# --- nginx + certbot ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_site(sandbox_hosts, pebbles, tmp_path_factory: pytest.TempPathFactory):
    vm, server = sandbox_hosts[0], pebbles[0]
    options = {"certs": {"acme_server": server.directory_url, "ca_bundle": str(server.tls_ca), "email": "ops@ledger.test"}}
    swap = {"djaploy.modules.nginx": ["djaploy.modules.nginx", "djaploy.modules.certs"]}
    project = https_project(tmp_path_factory.mktemp("nginx") / "ledger", 0, swap, "zero_downtime", options)
    configured = project.manage("configureserver", "--env", ENV, check=True)
    assert "certs: issue certificate for ledger.test, www.ledger.test (no certificate yet)" in configured.stdout
    project.manage("deploy", "--env", ENV, "--latest", check=True)
    return project, vm, server, options


def manage_under_https_load(project: Project, vm, server: pebble_helper.Pebble, what: str, *args: str,
                            settle: float = 1) -> tuple[subprocess.CompletedProcess, LoadReport]:
    """`manage.py *args` (which must succeed) while HTTPS load runs on the host: (result, report)."""
    with HttpsLoad(vm.address, DOMAINS[0], "/version/", root_of(server)) as load:
        time.sleep(1)
        result = project.manage(*args)
        time.sleep(settle)
    report = load.report
    print(f"{what} under HTTPS load: {report.summary()}")  # stale keep-alive retries included when any
    assert result.returncode == 0, result.stderr
    return result, report


def certbot_serial(vm) -> int:
    return int(remote(vm, "openssl x509 -in /etc/letsencrypt/live/ledger/cert.pem -noout -serial").strip().split("=")[1], 16)


def wait_for_served_serial(vm, root: Path, wanted: int, seconds: float = 15) -> int:
    """nginx's reload returns before new workers serve: poll new connections for the new cert."""
    deadline = time.monotonic() + seconds
    served = served_serial(vm.address, DOMAINS[0], root)
    while served != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        served = served_serial(vm.address, DOMAINS[0], root)
    return served


def test_certbot_certificate_is_served_over_https_and_verified_with_pebbles_root(nginx_site) -> None:
    _, vm, server, _ = nginx_site
    for domain in DOMAINS:
        status, body, cert = https_get(vm.address, domain, "/version/", root_of(server))
        assert status == 200 and body.strip() == "1", body
        assert {name for kind, name in cert["subjectAltName"] if kind == "DNS"} == set(DOMAINS)
    assert served_serial(vm.address, DOMAINS[0], root_of(server)) == certbot_serial(vm)
    # Another root does not verify it: the check above really used Pebble's chain.
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(vm.address, DOMAINS[0], "/version/", server.tls_ca)
    # Static files through HTTPS too.
    status, body, _ = https_get(vm.address, DOMAINS[0], "/static/entries/style.css", root_of(server))
    assert status == 200 and "{" in body


def test_http_redirects_to_https_except_the_acme_challenge_path(nginx_site) -> None:
    _, vm, _, _ = nginx_site
    status, location, _ = http_get_raw(vm.address, DOMAINS[1], "/version/?a=1")
    assert (status, location) == (301, "https://www.ledger.test/version/?a=1")
    remote(vm, "d=/var/www/djaploy-acme/ledger/.well-known/acme-challenge && mkdir -p $d && echo probe-token > $d/probe")
    try:
        assert http_get_raw(vm.address, DOMAINS[0], "/.well-known/acme-challenge/probe")[::2] == (200, "probe-token\n")
    finally:
        remote(vm, "rm -f /var/www/djaploy-acme/ledger/.well-known/acme-challenge/probe")


def test_keys_stay_on_the_host_root_only(nginx_site) -> None:
    _, vm, _, _ = nginx_site
    mode = remote(vm, "stat -L -c '%a %U' /etc/letsencrypt/live/ledger/privkey.pem").strip()
    assert mode == "600 root"
    hook = remote(vm, "stat -c '%a' /etc/letsencrypt/renewal-hooks/deploy/djaploy-reload-nginx").strip()
    assert hook == "755"
    assert remote(vm, "systemctl is-enabled certbot.timer").strip() == "enabled"


def test_configureserver_and_deploy_do_not_reissue_a_valid_certificate(nginx_site) -> None:
    project, vm, server, _ = nginx_site
    before = certbot_serial(vm)
    again = project.manage("configureserver", "--env", ENV, check=True)
    assert "issue certificate" not in again.stdout and "nginx: check config and reload" not in again.stdout
    project.manage("deploy", "--env", ENV, "--latest", check=True)
    assert certbot_serial(vm) == before == served_serial(vm.address, DOMAINS[0], root_of(server))


def test_certs_command_lists_domains_and_expiry(nginx_site) -> None:
    project, _, _, _ = nginx_site
    listed = project.manage("certs", "--env", ENV, check=True).stdout
    assert "[web] ledger (certbot): ledger.test, www.ledger.test; expires " in listed
    assert "(in 7 days)" in listed or "(in 6 days)" in listed  # Pebble issues for a week
    assert "valid certificate kept" in listed
    assert "BEGIN" not in listed and "PRIVATE" not in listed


def test_forced_renewal_reloads_nginx_under_https_load_without_failed_requests(nginx_site) -> None:
    project, vm, server, _ = nginx_site
    before = certbot_serial(vm)
    renewed, report = manage_under_https_load(project, vm, server, "forced renewal", "certs", "--env", ENV, "--renew", "--force",
                                              settle=2)
    assert "certificate renewed; nginx reloaded by the deploy hook" in renewed.stdout
    after = certbot_serial(vm)
    assert after != before
    assert wait_for_served_serial(vm, root_of(server), after) == after  # the deploy hook reloaded nginx
    assert report.ok > 100 and report.failures == 0, report.failure_reasons


def test_certbot_timer_renews_and_the_hook_reloads_nginx(nginx_site) -> None:
    """Debian's certbot.service is what the timer runs: no proxy, no environment, system CAs."""
    _, vm, server, _ = nginx_site
    before = certbot_serial(vm)
    remote(vm, "systemctl start certbot.service")  # Pebble's week-long certificates are always due
    after = certbot_serial(vm)
    assert after != before
    assert wait_for_served_serial(vm, root_of(server), after) == after


def test_certificate_survives_a_strategy_change(nginx_site) -> None:
    project, vm, server, options = nginx_site
    key = remote(vm, "readlink -f /etc/letsencrypt/live/ledger/privkey.pem").strip()
    serial = certbot_serial(vm)
    use_inventory(project, 0, "bluegreen", options)
    project.commit("bluegreen")
    deployed = project.manage("deploy", "--env", ENV, "--latest", check=True)
    assert "issue certificate" not in deployed.stdout
    assert remote(vm, "readlink -f /etc/letsencrypt/live/ledger/privkey.pem").strip() == key
    assert certbot_serial(vm) == serial == served_serial(vm.address, DOMAINS[0], root_of(server))
    status, body, _ = https_get(vm.address, DOMAINS[0], "/version/", root_of(server))
    assert (status, body.strip()) == (200, "1")


def test_a_domain_change_reissues_on_deploy(nginx_site) -> None:
    project, vm, server, options = nginx_site
    use_inventory(project, 0, "bluegreen", options, domains=DOMAINS[:1])
    project.commit("one domain")
    deployed = project.manage("deploy", "--env", ENV, "--latest", check=True)
    assert "certs: issue certificate for ledger.test (domains changed" in deployed.stdout
    cert = https_get(vm.address, DOMAINS[0], "/version/", root_of(server))[2]
    assert [name for kind, name in cert["subjectAltName"] if kind == "DNS"] == ["ledger.test"]


def test_a_failed_issuance_says_why_and_keeps_serving_the_old_certificate(nginx_site) -> None:
    project, vm, server, options = nginx_site
    serial = certbot_serial(vm)
    use_inventory(project, 0, "bluegreen", options, domains=("ledger.test", "nowhere.test"))  # no DNS record
    try:
        result = project.manage("certs", "--env", ENV)
    finally:
        use_inventory(project, 0, "bluegreen", options, domains=DOMAINS[:1])
    assert result.returncode != 0
    assert "certs: issue certificate for ledger.test, nowhere.test" in result.stderr
    assert "Check that DNS for ledger.test, nowhere.test points at this host" in result.stderr
    assert certbot_serial(vm) == serial == served_serial(vm.address, DOMAINS[0], root_of(server))
    assert "lock: free" in project.manage("status", "--env", ENV, check=True).stdout


def test_bad_certs_options_stop_before_any_connection(nginx_site) -> None:
    project, _, _, options = nginx_site
    broken = {"certs": {**options["certs"], "ca_bundle": "no-such-ca.pem"}}
    use_inventory(project, 0, "bluegreen", broken)
    try:
        result = project.manage("certs", "--env", ENV)
    finally:
        use_inventory(project, 0, "bluegreen", options)
    assert result.returncode != 0
    assert "module_options['certs']['ca_bundle']" in result.stderr and "no-such-ca.pem" in result.stderr
    assert "connected to" not in result.stdout


# --- Caddy ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def caddy_site(sandbox_hosts, pebbles, tmp_path_factory: pytest.TempPathFactory):
    vm, server = sandbox_hosts[1], pebbles[1]
    options = {"caddy": {"acme_ca": server.directory_url, "acme_ca_root": str(server.tls_ca), "email": "ops@ledger.test"}}
    swap = {"djaploy.modules.nginx": ["djaploy.modules.caddy"]}
    project = https_project(tmp_path_factory.mktemp("caddy") / "ledger", 1, swap, "bluegreen", options)
    project.manage("configureserver", "--env", ENV, check=True)
    project.manage("deploy", "--env", ENV, "--latest", check=True)  # the first bluegreen deploy goes live
    return project, vm, server, options


def test_caddy_obtains_a_certificate_from_pebble_and_serves_https(caddy_site) -> None:
    _, vm, server, _ = caddy_site
    for domain in DOMAINS:
        status, body, cert = https_get(vm.address, domain, "/version/", root_of(server))
        assert status == 200 and body.strip() == "1", body
        assert domain in {name for kind, name in cert["subjectAltName"] if kind == "DNS"}
    status, body, _ = https_get(vm.address, DOMAINS[0], "/static/entries/style.css", root_of(server))
    assert status == 200 and "{" in body
    status, location, _ = http_get_raw(vm.address, DOMAINS[0], "/version/")
    assert status in (301, 308) and location == "https://ledger.test/version/"
    assert remote(vm, "systemctl is-active caddy").strip() == "active"
    assert remote(vm, "systemctl is-active nginx", check=False).strip() in ("inactive", "failed")  # read, and not running


def test_certs_command_lists_caddys_certificates(caddy_site) -> None:
    project, _, _, _ = caddy_site
    listed = project.manage("certs", "--env", ENV, check=True).stdout
    assert "Caddy obtains and renews its certificates itself" in listed
    for domain in DOMAINS:
        assert f"{domain} (caddy): {domain}; expires " in listed


def test_bluegreen_switch_behind_caddy_under_https_load(caddy_site) -> None:
    project, vm, server, _ = caddy_site
    project.set_version("2")
    project.commit("version 2")
    project.manage("deploy", "--env", ENV, "--latest", check=True)  # staged in green
    pid = remote(vm, "systemctl show -p MainPID --value caddy").strip()
    site = remote(vm, "md5sum /etc/caddy/djaploy/ledger.caddy")
    _, report = manage_under_https_load(project, vm, server, "bluegreen activate behind Caddy", "activate", "--env", ENV)
    assert_one_clean_switch(report, "1", "2")
    # The switch is a link swap: Caddy kept running with the same config.
    assert remote(vm, "systemctl show -p MainPID --value caddy").strip() == pid
    assert remote(vm, "md5sum /etc/caddy/djaploy/ledger.caddy") == site


def test_caddy_reloads_a_changed_site_under_https_load(caddy_site) -> None:
    project, vm, server, options = caddy_site
    changed = {"caddy": {**options["caddy"], "email": "admin@ledger.test"}}
    use_inventory(project, 1, "bluegreen", changed)
    project.commit("another ACME contact")
    configured, report = manage_under_https_load(project, vm, server, "Caddy reload", "configureserver", "--env", ENV)
    assert "caddy: validate config and reload: changed" in configured.stdout
    assert "admin@ledger.test" in remote(vm, "cat /etc/caddy/djaploy/ledger.caddy")
    assert report.ok > 100 and report.failures == 0, report.failure_reasons
