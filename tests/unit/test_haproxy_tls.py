"""HTTPS at the load balancer (djaploy.modules.haproxy.tls): certbot's HTTP-01 answered by its own server
behind HAProxy, the PEM, :443 only once the PEM exists, the renewal hook, and the certs module doing
nothing on the lb host and on the web hosts behind it."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult, HostContext
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from djaploy.modules.certs import Module as Certs
from djaploy.modules.certs.commands import certonly_command
from djaploy.modules.haproxy import Module
from djaploy.modules.haproxy.config import haproxy_config, web_servers
from djaploy.modules.haproxy.runtime import CONFIG_FILE
from djaploy.modules.haproxy.tls import ACME_PORT, DEPLOY_HOOK, https_options, pem_path
from tests.unit.conftest import RecordingPlan

MODULES = ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.certs", "djaploy.modules.haproxy"]
CERTS = {"certs": {"acme_server": "https://10.0.0.1:14000/dir", "email": "ops@shop.example.com"}}


def fleet(certs: dict | None = None, modules: list[str] = MODULES) -> list[Target]:
    config = DjaployConfig(project_name="shop", modules=modules, domains=["shop.example.com"],
                           module_options=CERTS if certs is None else certs)
    hosts = [HostConfig("lb1", ssh_host="203.0.113.2", private_address="10.0.0.2", roles=["lb"]),
             HostConfig("web1", ssh_host="203.0.113.11", private_address="10.0.0.11")]
    return resolve_targets(config, hosts, "production", environ={}, source_file="infra/inventory/production.py")


@dataclass
class TlsLb(RecordingPlan):
    """An lb host whose PEM exists once it was written; `issued` once certbot certonly ran."""

    pem: bool = False
    issued: bool = False
    steps_run: list[str] = field(default_factory=list)

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        self.steps_run.append(step)
        self.issued = self.issued or "certbot certonly" in command
        self.pem = self.pem or ("privkey.pem" in command and ".pem.new" in command)
        return super().run(step, command, as_user=as_user)

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        self.calls.append(("query", command))
        return CommandResult(self.pem if command.startswith("test -s") else True, "")


def lb_context(plan: RecordingPlan, hosts: list[Target] | None = None) -> HostContext:
    hosts = hosts or fleet()
    return HostContext(env="production", target=hosts[0], plan=plan, fleet=tuple(hosts))


def test_certbot_answers_http_01_itself_on_loopback_behind_haproxy() -> None:
    target = fleet()[0]
    options = https_options(target, None)
    assert options is not None and options.authenticator == "standalone"
    words = shlex.split(certonly_command(lb_context(RecordingPlan()).paths, options).split(" ", 2)[2])
    assert words[:7] == ["certbot", "certonly", "--standalone", "--http-01-address", "127.0.0.1",
                         "--http-01-port", str(ACME_PORT)]
    assert "--webroot" not in words
    assert https_options(fleet(certs={}, modules=MODULES[:2] + MODULES[3:])[0], None) is None  # no certs module


def test_dns_01_at_the_load_balancer_is_refused_before_any_connection() -> None:
    dns = {"certs": {"challenge": "dns-01", "dns_plugin": "rfc2136", "acme_server": "https://10.0.0.1:14000/dir"}}
    with pytest.raises(ConfigError, match="HTTP-01"):
        Module().check_target(fleet(certs=dns)[0], None)


def test_the_config_routes_the_challenge_and_binds_443_only_with_the_pem() -> None:
    hosts = fleet()
    lb = hosts[0]
    before = haproxy_config(lb, hosts, web_servers(hosts), env="production", acme_port=ACME_PORT)
    assert "acl acme_challenge path_beg /.well-known/acme-challenge/" in before
    assert "use_backend acme if acme_challenge" in before and f"server certbot 127.0.0.1:{ACME_PORT}" in before
    assert ":443" not in before and "redirect scheme https" not in before  # HTTP keeps working until the PEM exists
    after = haproxy_config(lb, hosts, web_servers(hosts), env="production", acme_port=ACME_PORT,
                           tls_pem="/etc/haproxy/certs/shop.pem")
    assert "bind :443 ssl crt /etc/haproxy/certs/shop.pem alpn http/1.1" in after
    assert "http-request redirect scheme https code 301 if !{ ssl_fc } !acme_challenge" in after
    assert "http-request set-header X-Forwarded-Proto https if { ssl_fc }" in after
    plain = haproxy_config(lb, hosts, web_servers(hosts), env="production")
    assert "acme" not in plain and ":443" not in plain
    with pytest.raises(ValueError):
        haproxy_config(lb, hosts, web_servers(hosts), env="production", tls_pem="/etc/haproxy/a b.pem")


def test_configure_server_issues_writes_the_pem_and_then_serves_https(monkeypatch: pytest.MonkeyPatch) -> None:
    from djaploy.modules.haproxy import tls

    plan = TlsLb()
    ctx = lb_context(plan)
    # certbot's listing as the host would give it: the lineage exists once certonly ran
    monkeypatch.setattr(tls, "project_certificate", lambda ctx: object() if plan.issued else None)
    monkeypatch.setattr(tls, "issue_reason", lambda current, options, now: None if current else "no certificate yet")
    Module().configure_server(ctx)
    steps = plan.steps_run
    issue = steps.index("haproxy: issue certificate for shop.example.com (no certificate yet)")
    assert steps.index("haproxy: check config, save server state, reload") < issue  # the challenge route is live first
    assert steps[issue + 1] == "haproxy: certificate and key into HAProxy's PEM"
    assert ":443 ssl crt " + pem_path(ctx) in plan.files[CONFIG_FILE][0]
    assert steps[-1] == "haproxy: check config, save server state, reload"  # HTTPS on
    hook = plan.files[DEPLOY_HOOK][0]
    assert "RENEWED_LINEAGE" in hook and "/etc/letsencrypt/live/shop" in hook
    assert "umask 077" in hook and "show servers state" in hook and "systemctl reload-or-restart haproxy" in hook
    subprocess.run(["sh", "-n"], input=hook, text=True, check=True)  # it parses
    before = len(steps)
    Module().configure_server(ctx)  # valid certificate, PEM there: nothing reloads
    assert not any("reload" in step or "issue" in step or "PEM" in step for step in steps[before:])


def test_certs_does_nothing_on_the_lb_host_nor_on_the_web_hosts_behind_it() -> None:
    hosts = fleet()
    for target in hosts:
        plan = RecordingPlan()
        ctx = HostContext(env="production", target=target, plan=plan, fleet=tuple(hosts))
        Certs().configure_server(ctx)
        Certs().publish(ctx)
        assert plan.calls == [], target.name
    alone = [t for t in fleet(modules=MODULES[:3]) if t.name == "web1"]  # no load balancer: nginx holds it
    plan = RecordingPlan()
    Certs().configure_server(HostContext(env="production", target=alone[0], plan=plan, fleet=tuple(alone)))
    assert any(step == "certs: install certbot" for step in plan.steps)
