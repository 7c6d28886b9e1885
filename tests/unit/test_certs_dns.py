"""certs with DNS-01: option checks, the plugin's credentials file (0600, values never on argv
or in a repr), certbot's command run in a real sh with hostile values, the authenticator read
back from certbot's renewal configuration, and what configureserver asks of the host."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from djaploy.layout import AppPaths
from djaploy.modules import certs
from djaploy.modules.certs.certificates import (
    certbot_listing,
    issue_reason,
    parse_certificates,
)
from djaploy.modules.certs.commands import (
    certonly_command,
    credentials_file,
    renew_command,
)
from djaploy.modules.certs.options import CertsOptions, DnsChallenge, certs_options
from djaploy.session import site_urls
from tests.unit.conftest import RecordingPlan
from tests.unit.recording_shell import HOSTILE, RecordingShell

MODULES = ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.certs", "djaploy.modules.systemd"]
TSIG = "XGVBfMeRUtr3/GS7vUdMkHpVl4TZxrF85JzBnwGt9rw="
RFC2136 = {
    "challenge": "dns-01",
    "dns_plugin": "rfc2136",
    "dns_credentials": {"dns_rfc2136_server": "10.0.0.1", "dns_rfc2136_name": "djaploy-e2e",
                        "dns_rfc2136_secret": "env:TSIG_SECRET", "dns_rfc2136_algorithm": "HMAC-SHA256"},
    "dns_propagation_seconds": 5,
    "domains": ["*.shop.example.com", "shop.example.com"],
}
PATHS = AppPaths("shop", "shop")
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def target(options: dict[str, Any], domains: tuple[str, ...] = ("shop.example.com", "app.shop.example.com")) -> Target:
    config = DjaployConfig(project_name="shop", modules=MODULES)
    host = HostConfig("web1", ssh_host="192.0.2.10", domains=list(domains), module_options={"certs": options})
    return resolve_targets(config, [host], "production", environ={}, source_file="inventory/production.py")[0]


def refusal(options: dict[str, Any], environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        certs_options(target(options), Path("/infra"), environ)
    return info.value


# --- options --------------------------------------------------------------------------------------


def test_http_01_stays_the_default_and_refuses_wildcards_naming_the_file_and_field() -> None:
    options = certs_options(target({}), None, {})
    assert options.dns is None and options.authenticator == "webroot"
    error = refusal({"domains": ["*.shop.example.com"]})
    assert "wildcard certificates need a DNS-01 challenge" in str(error) and "'challenge': 'dns-01'" in str(error)
    assert error.file == "/infra/config.py" and error.field == "module_options['certs']['domains']"


def test_dns_01_reads_env_credentials_and_allows_wildcards() -> None:
    options = certs_options(target(RFC2136), None, {"TSIG_SECRET": TSIG})
    assert options.domains == ("*.shop.example.com", "shop.example.com")
    assert options.authenticator == "dns-rfc2136"
    assert options.dns == DnsChallenge("rfc2136", "python3-certbot-dns-rfc2136", (
        ("dns_rfc2136_server", "10.0.0.1"), ("dns_rfc2136_name", "djaploy-e2e"),
        ("dns_rfc2136_secret", TSIG), ("dns_rfc2136_algorithm", "HMAC-SHA256")), 5)
    assert TSIG not in repr(options)  # a traceback or a test failure never shows a credential
    other = certs_options(target({**RFC2136, "dns_package": "my-certbot-dns-rfc2136"}), None, {"TSIG_SECRET": TSIG})
    assert other.dns is not None and other.dns.package == "my-certbot-dns-rfc2136"


def test_dns_credentials_are_hidden_in_output_and_logs_where_the_deployer_set_them(monkeypatch) -> None:
    monkeypatch.setenv("TSIG_SECRET", TSIG)
    hidden = certs.Module().secret_values(target(RFC2136), None)
    assert hidden == [TSIG]  # literal values (the server's address) are in the repository: readable
    monkeypatch.delenv("TSIG_SECRET")
    assert TSIG not in certs.Module().secret_values(target(RFC2136), None)  # status without the variable
    assert certs.Module().secret_values(target({}), None) == []  # HTTP-01: nothing secret


def test_check_target_checks_the_form_only_so_status_works_without_the_secret_variable(monkeypatch) -> None:
    monkeypatch.delenv("TSIG_SECRET", raising=False)
    certs.Module().check_target(target(RFC2136), None)  # no error: "env:TSIG_SECRET" is well formed
    kept = certs_options(target(RFC2136), None, None)
    assert kept.dns is not None and ("dns_rfc2136_secret", "env:TSIG_SECRET") in kept.dns.credentials
    error = refusal(RFC2136, {})
    assert "dns_rfc2136_secret reads $TSIG_SECRET, which is not set in your environment" in str(error)
    assert error.field == "module_options['certs']['dns_credentials']"


@pytest.mark.parametrize(("options", "expected"), [
    ({"challenge": "dns"}, "expected one of 'http-01', 'dns-01'"),
    ({"dns_plugin": "rfc2136"}, "applies to DNS-01 only"),
    ({"challenge": "dns-01"}, "DNS-01 needs certbot's DNS plugin name"),
    ({"challenge": "dns-01", "dns_plugin": "dns-rfc2136"}, "without 'dns-': 'rfc2136'"),
    ({"challenge": "dns-01", "dns_plugin": "rfc2136; touch x"}, "DNS-01 needs certbot's DNS plugin name"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_package": "a b"}, "expected a Debian package name"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_propagation_seconds": True}, "expected whole seconds"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_propagation_seconds": -1}, "expected whole seconds"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_credentials": "token"}, "expected a dict"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_credentials": {"a = b": "v"}}, "is not a credential key"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_credentials": {"k": ""}}, "expected a non-empty string"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_credentials": {"k": "a\nb = c"}}, "contains a newline"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_credentials": {"k": "it's \"x\""}}, "both quote characters"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_credentials": {"k": "env:1X"}}, "followed by a variable name"),
    ({"challenge": "dns-01", "dns_plugin": "x", "dns_propagation": 5}, "did you mean 'dns_propagation_seconds'"),
])
def test_dns_options_are_checked(options: dict[str, Any], expected: str) -> None:
    error = refusal(options, {})
    assert expected in str(error), str(error)
    assert error.file == "/infra/config.py" and error.field.startswith("module_options['certs']")


def test_a_secret_read_from_the_environment_is_checked_too_and_never_shown() -> None:
    error = refusal(RFC2136, {"TSIG_SECRET": "sec\"ret'\n"})
    assert "dns_rfc2136_secret" in str(error) and "sec" not in str(error).replace("secret", "")


# --- the credentials file and certbot's command ---------------------------------------------------


def test_credentials_file_quotes_every_value_as_certbots_parser_reads_it() -> None:
    dns = DnsChallenge("x", "p", (("dns_x_token", "a,b # c"), ("dns_x_quoted", 'say "hi"'), ("dns_x_plain", "v")))
    lines = credentials_file(dns).splitlines()
    assert lines[0].startswith("# Written by djaploy")
    assert lines[1:] == ['dns_x_token = "a,b # c"', "dns_x_quoted = 'say \"hi\"'", 'dns_x_plain = "v"']


@pytest.mark.parametrize("value", HOSTILE)
def test_dns_01_certonly_gets_every_value_intact_and_no_secret_on_argv(tmp_path: Path, value: str) -> None:
    rsh = RecordingShell(tmp_path, programs=("certbot",))
    dns = DnsChallenge("rfc2136", "python3-certbot-dns-rfc2136", (("dns_rfc2136_secret", TSIG),), 7)
    options = CertsOptions(f"https://acme.example/{value}", value, (f"*.{value}", value), None, dns)
    command = certonly_command(PATHS, options)
    run = rsh.run(command)
    assert rsh.injected() == [], command
    (argv,) = run.argv_of("certbot")
    assert argv[:7] == ["certonly", "--authenticator", "dns-rfc2136",
                        "--dns-rfc2136-credentials", "/etc/letsencrypt/djaploy/shop-dns-credentials.ini",
                        "--dns-rfc2136-propagation-seconds", "7"]
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "-d"] == [f"*.{value}", value]
    assert argv[argv.index("--server") + 1] == options.server and argv[argv.index("-m") + 1] == value
    assert "--webroot" not in argv and TSIG not in command
    renew = rsh.run(renew_command(PATHS, options, force=False))
    assert renew.argv_of("certbot")[0][:3] == ["renew", "--cert-name", "shop"]  # the renewal config names the plugin


def test_a_plugin_without_credentials_or_propagation_gets_neither_option() -> None:
    options = CertsOptions("https://acme.example/dir", None, ("shop.example.com",), None, DnsChallenge("route53", "p"))
    command = certonly_command(PATHS, options)
    assert "--authenticator dns-route53 --cert-name shop" in command and "credentials" not in command


# --- what the host holds --------------------------------------------------------------------------


def test_the_listing_reads_the_authenticator_from_certbots_renewal_config(tmp_path: Path) -> None:
    live = tmp_path / "live" / "shop"
    live.mkdir(parents=True)
    (tmp_path / "renewal").mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(live / "cert.pem"), "-days", "3",
                    "-subj", "/CN=shop.example.com", "-addext", "subjectAltName=DNS:*.shop.example.com,DNS:shop.example.com"],
                   check=True, capture_output=True)
    (tmp_path / "renewal" / "shop.conf").write_text(
        "version = 2.1.0\n[renewalparams]\nauthenticator = dns-rfc2136\nserver = https://acme.example/dir\n"
        "dns_rfc2136_credentials = /etc/letsencrypt/djaploy/shop-dns-credentials.ini\n")
    listing = certbot_listing(PATHS).replace("/etc/letsencrypt", str(tmp_path))
    output = subprocess.run(["sh", "-c", listing], capture_output=True, text=True, check=True).stdout
    (found,) = parse_certificates(output, "certbot")
    assert found.domains == ("*.shop.example.com", "shop.example.com")
    assert (found.server, found.authenticator) == ("https://acme.example/dir", "dns-rfc2136")
    assert "credentials" not in output


def test_a_changed_challenge_reissues() -> None:
    listing = "@@cert shop\nnotAfter=Jan 17 04:18:39 2099 GMT\n    DNS:shop.example.com\n@@authenticator webroot\n"
    (current,) = parse_certificates(listing, "certbot")
    http = CertsOptions("https://acme.example/dir", None, ("shop.example.com",), None)
    assert issue_reason(current, http, NOW) is None
    dns = CertsOptions(http.server, None, http.domains, None, DnsChallenge("rfc2136", "p"))
    assert issue_reason(current, dns, NOW) == "the challenge changed: certbot renews it with webroot"


# --- the module on a host -------------------------------------------------------------------------


def test_configureserver_installs_the_plugin_and_writes_credentials_only_root_reads(monkeypatch) -> None:
    monkeypatch.setenv("TSIG_SECRET", TSIG)
    plan = RecordingPlan()
    ctx = HostContext(env="production", target=target(RFC2136), plan=plan)
    certs.Module().configure_server(ctx)
    assert ("packages", "certs: install certbot and python3-certbot-dns-rfc2136") in plan.calls
    content, owner, mode = plan.files["/etc/letsencrypt/djaploy/shop-dns-credentials.ini"]
    assert (owner, mode) == ("root", "600")
    assert f'dns_rfc2136_secret = "{TSIG}"' in content and 'dns_rfc2136_server = "10.0.0.1"' in content
    (issue,) = [command for command in plan.commands if "certbot certonly" in command]
    assert "--authenticator dns-rfc2136" in issue and TSIG not in issue
    written = [step for _, step in plan.calls].index("certs: dns-rfc2136 credentials")
    assert written < [step for _, step in plan.calls].index(next(s for _, s in plan.calls if s.startswith("certs: issue")))


def test_http_01_leaves_no_credentials_file_behind() -> None:
    plan = RecordingPlan()
    certs.ensure_certificate(HostContext(env="production", target=target({}), plan=plan), certs_options(target({}), None))
    assert ("absent", "certs: no DNS credentials") in plan.calls
    assert not any(path.endswith(".ini") for path in plan.files)


def test_site_urls_are_https_for_names_a_wildcard_covers() -> None:
    urls = site_urls(target(RFC2136, ("shop.example.com", "app.shop.example.com", "a.b.shop.example.com")))
    assert urls == ["https://shop.example.com/", "https://app.shop.example.com/", "http://a.b.shop.example.com/"]
