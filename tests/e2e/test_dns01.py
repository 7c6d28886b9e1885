"""DNS-01 end to end: a wildcard certificate from Pebble, proved through a real authoritative
DNS server (bind9) that certbot's dns-rfc2136 plugin updates from the sandbox host, served by nginx.

One sandbox host. On this machine, bound to the host's link (the only address it reaches): named
for the zone `dns01.test` (a TSIG key may update it) and Pebble, which resolves the TXT records
at that named. configureserver installs certbot and python3-certbot-dns-rfc2136, writes the
TSIG credentials (read from the deployer's environment) to a 0600 file, and issues for
`*.dns01.test` and `dns01.test`; HTTPS for `app.dns01.test` verifies against Pebble's root.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import pytest

from tests.conftest import missing_prerequisite
from tests.e2e import bind
from tests.e2e import pebble as pebble_helper
from tests.e2e.conftest import SANDBOX_NAME, _can_boot_sandbox
from tests.e2e.https_client import https_get
from tests.e2e.test_https import ENV, https_project, remote

ZONE = "dns01.test"
HOST_DOMAINS = (f"app.{ZONE}", ZONE)
CERT_DOMAINS = [f"*.{ZONE}", ZONE]
SECRET_VARIABLE = "DJAPLOY_E2E_TSIG_SECRET"
CREDENTIALS = "/etc/letsencrypt/djaploy/ledger-dns-credentials.ini"


@pytest.fixture(scope="module")
def wildcard_site(tmp_path_factory: pytest.TempPathFactory):
    """configureserver + deploy with DNS-01 on one fresh sandbox host; (project, vm, pebble, named, outputs)."""
    for reason in (_can_boot_sandbox(), pebble_helper.available(), bind.available()):
        if reason:
            missing_prerequisite(reason)
    from djaploy.sandbox import Sandbox

    sandbox = Sandbox(name=SANDBOX_NAME)
    sandbox.down()  # a leftover of an interrupted run must not leak into this module
    with ExitStack() as cleanup:
        if not os.environ.get("DJAPLOY_E2E_KEEP"):
            cleanup.callback(sandbox.down)
        (vm,) = sandbox.up(count=1)
        named = bind.AuthoritativeDns(ZONE, vm.host_side_address, tmp_path_factory.mktemp("named"))
        cleanup.callback(named.stop)
        cleanup.callback(lambda: print(named.log_tail(20)))
        named.start()
        server = pebble_helper.Pebble(vm.host_side_address, tmp_path_factory.mktemp("pebble"), dns_server=named.server)
        cleanup.enter_context(server)
        cleanup.callback(lambda: print(server.log_tail(20)))
        root = server.workdir / "root.pem"
        root.write_text(server.root_pem())
        options = {"certs": {
            "acme_server": server.directory_url, "ca_bundle": str(server.tls_ca), "email": f"ops@{ZONE}",
            "challenge": "dns-01", "dns_plugin": "rfc2136", "domains": CERT_DOMAINS, "dns_propagation_seconds": 1,
            "dns_credentials": {"dns_rfc2136_server": vm.host_side_address, "dns_rfc2136_port": str(named.port),
                                "dns_rfc2136_name": bind.KEY_NAME, "dns_rfc2136_secret": f"env:{SECRET_VARIABLE}",
                                "dns_rfc2136_algorithm": "HMAC-SHA256"},
        }}
        swap = {"djaploy.modules.nginx": ["djaploy.modules.nginx", "djaploy.modules.certs"]}
        project = https_project(tmp_path_factory.mktemp("dns01") / "ledger", 0, swap, "zero_downtime", options,
                                HOST_DOMAINS)
        project.env[SECRET_VARIABLE] = named.secret
        configured = project.manage("configureserver", "--env", ENV, check=True)
        deployed = project.manage("deploy", "--env", ENV, "--latest", check=True)
        yield project, vm, root, named, configured.stdout + configured.stderr + deployed.stdout + deployed.stderr


def served(vm, root) -> dict:
    status, body, cert = https_get(vm.address, f"app.{ZONE}", "/version/", root)
    assert (status, body.strip()) == (200, "1"), body
    return cert


def test_the_wildcard_certificate_from_dns_01_is_served_by_nginx(wildcard_site) -> None:
    _, vm, root, named, output = wildcard_site
    assert f"certs: issue certificate for *.{ZONE}, {ZONE} (no certificate yet)" in output
    assert "certs: install certbot and python3-certbot-dns-rfc2136" in output
    assert "certs: dns-rfc2136 credentials: changed" in output
    cert = served(vm, root)  # verified against Pebble's root, with SNI and host name app.dns01.test
    assert {name for kind, name in cert["subjectAltName"] if kind == "DNS"} == set(CERT_DOMAINS)
    assert "authenticator = dns-rfc2136" in remote(vm, "cat /etc/letsencrypt/renewal/ledger.conf")
    assert named.query("TXT", f"_acme-challenge.{ZONE}") == ""  # certbot removed its records again


def test_the_credentials_are_root_only_on_the_host_and_never_in_output_or_logs(wildcard_site) -> None:
    project, vm, _, named, output = wildcard_site
    assert remote(vm, f"stat -c '%a %U' {CREDENTIALS}").strip() == "600 root"
    assert f'dns_rfc2136_secret = "{named.secret}"' in remote(vm, f"cat {CREDENTIALS}")
    logs = "".join(path.read_text() for path in (project.root / ".djaploy" / "logs").glob("*.log"))
    assert logs and named.secret not in logs and named.secret not in output


def test_configureserver_and_deploy_again_reissue_nothing(wildcard_site) -> None:
    project, vm, root, _, _ = wildcard_site
    before = served(vm, root)["serialNumber"]
    again = project.manage("configureserver", "--env", ENV, check=True).stdout
    again += project.manage("deploy", "--env", ENV, "--latest", check=True).stdout
    assert "issue certificate" not in again and "certs: dns-rfc2136 credentials: changed" not in again
    assert served(vm, root)["serialNumber"] == before


def test_the_certbot_timer_renews_through_dns_01(wildcard_site) -> None:
    """Debian's certbot.service (what the timer runs) finds the plugin and its credentials alone."""
    _, vm, root, _, _ = wildcard_site
    before = served(vm, root)["serialNumber"]
    remote(vm, "systemctl start certbot.service")  # Pebble's week-long certificates are always due
    serial = remote(vm, "openssl x509 -in /etc/letsencrypt/live/ledger/cert.pem -noout -serial").strip().split("=")[1]
    assert int(serial, 16) != int(before, 16)
