"""The haproxy module: haproxy.cfg for 1..8 web hosts, hostile values refused, runtime API commands,
`show stat` parsed, and the hooks on lb and web hosts."""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult, HostContext
from djaploy.errors import ConfigError, DjaployError
from djaploy.inventory import resolve_targets
from djaploy.modules.haproxy import Module
from djaploy.modules.haproxy.config import config_problem, haproxy_config, web_servers
from djaploy.modules.haproxy.drain import states, wait_idle, wait_up
from djaploy.modules.haproxy.runtime import CONFIG_FILE, ServerStat, backend_members, check_and_reload, parse_stat, set_state
from tests.unit.conftest import RecordingPlan

HAPROXY = "djaploy.modules.haproxy"


def fleet(web_hosts: int, *, domains: tuple[str, ...] = ("shop.example.com",), health: str = "/health/") -> list[Target]:
    config = DjaployConfig(project_name="shop", modules=["djaploy.modules.core", HAPROXY], domains=list(domains),
                           health_check_path=health)
    hosts = [HostConfig("lb1", ssh_host="203.0.113.2", private_address="10.0.0.2", roles=["lb"])]
    hosts += [HostConfig(f"web{i}", ssh_host=f"203.0.113.{10 + i}", private_address=f"10.0.0.{10 + i}")
              for i in range(1, web_hosts + 1)]
    return resolve_targets(config, hosts, "production", environ={}, source_file="infra/inventory/production.py")


def server_lines(config: str) -> list[str]:
    return [line.strip() for line in config.splitlines() if line.strip().startswith("server ")]


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_the_backend_holds_every_web_host_at_its_private_address(count: int) -> None:
    hosts = fleet(count)
    config = haproxy_config(hosts[0], hosts, web_servers(hosts), env="production")
    assert server_lines(config) == [f"server web{i} 10.0.0.{10 + i}:80 check inter 500 fall 2 rise 2"
                                    for i in range(1, count + 1)]
    assert "lb1" not in "\n".join(server_lines(config))


def test_the_config_checks_health_with_the_site_s_host_and_keeps_drains_over_reloads() -> None:
    hosts = fleet(2, domains=("shop.example.com", "*.shop.example.com"), health="/health/?full=1")
    config = haproxy_config(hosts[0], hosts, web_servers(hosts), env="production")
    assert "http-check send meth GET uri /health/?full=1 ver HTTP/1.1 hdr Host shop.example.com" in config
    assert "option httpchk" in config
    assert re.search(r"retry-on conn-failure", config)
    assert "option idle-close-on-response" in config
    assert "stats socket /run/haproxy/admin.sock mode 660 level admin" in config
    assert "server-state-file /var/lib/haproxy/server-state" in config
    assert "load-server-state-from-file global" in config
    assert "-m str shop.example.com\n" in config and "-m end .shop.example.com\n" in config
    assert "http-request deny deny_status 404 unless site_domain" in config


def test_without_domains_the_frontend_answers_every_name() -> None:
    hosts = fleet(1, domains=())
    config = haproxy_config(hosts[0], hosts, web_servers(hosts), env="production")
    assert "deny" not in config and "hdr Host localhost" in config


@pytest.mark.parametrize("path", ["/health/ #x", "/h'x", '/h"x', "/$(touch x)", "/a\\b", "/a\nb"])
def test_a_health_path_haproxy_would_split_or_expand_is_refused(path: str) -> None:
    (lb, web) = fleet(1)
    hostile = replace(lb, health_check_path=path)
    assert config_problem(hostile, [hostile, web])
    with pytest.raises(ValueError):
        haproxy_config(hostile, [hostile, web], web_servers([web]), env="production")


@pytest.mark.parametrize("domain", ["shop.example.com #", "a b", "$(x).com", "x'y.com"])
def test_a_hostile_domain_is_refused(domain: str) -> None:
    (lb, web) = fleet(1)
    hostile = replace(lb, domains=(domain,))
    with pytest.raises(ValueError, match="domain"):
        haproxy_config(hostile, [hostile, web], web_servers([web]), env="production")


@pytest.mark.parametrize("address", ["10.0.0.1;reboot", "$(id)", "a'b"])
def test_a_hostile_private_address_is_refused(address: str) -> None:
    (lb, web) = fleet(1)
    bad = replace(web, private_address=address)
    assert "private_address" in (config_problem(lb, [lb, bad]) or "")


def test_check_target_refuses_a_host_that_is_both_lb_and_web_and_a_bad_path_before_connecting() -> None:
    (lb, _web) = fleet(1)
    with pytest.raises(ConfigError, match="'lb' and 'web'"):
        Module().check_target(replace(lb, roles=("lb", "web")), None)
    with pytest.raises(ConfigError, match="health_check_path"):
        Module().check_target(replace(lb, health_check_path="/x#y"), None)
    Module().check_target(lb, None)


# --- runtime API ---------------------------------------------------------------------------------

STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
web,FRONTEND,,,3,5,262,40,0,0,0,0,0,,,,,OPEN,
app,web1,0,0,2,4,,20,0,0,,0,,0,0,0,0,UP,1
app,web2,0,0,0,3,,18,0,0,,0,,0,0,0,0,DRAIN,1
app,web3,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1
app,web4,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN 1/2,1
app,web5,0,0,1,0,,0,0,0,,0,,0,0,0,0,UP 1/2,1
app,BACKEND,0,0,3,5,,40,0,0,0,0,,0,0,0,0,UP,2
other,web1,0,0,9,0,,0,0,0,,0,,0,0,0,0,DOWN,1
"""


def test_show_stat_is_parsed_per_server_of_the_app_backend() -> None:
    servers = parse_stat(STAT)
    assert list(servers) == ["web1", "web2", "web3", "web4", "web5"]
    assert servers["web1"] == ServerStat("web1", 2, "UP")
    assert {name: s.lb_state for name, s in servers.items()} == {
        "web1": "up", "web2": "drain", "web3": "maint", "web4": "down", "web5": "up"}
    with pytest.raises(ValueError):
        parse_stat("Unknown command\n")


def test_set_state_addresses_the_backend_and_fails_on_any_answer() -> None:
    command = set_state(["web1", "web2"], "drain")
    assert shlex.quote("set server app/web1 state drain") in command
    assert shlex.quote("set server app/web2 state drain") in command
    assert "socat stdio /run/haproxy/admin.sock" in command
    with pytest.raises(ValueError):
        set_state(["web1"], "up")


def test_the_state_file_is_written_right_before_the_reload_after_the_check() -> None:
    command = check_and_reload()
    check, save, reload = (command.index("haproxy -c"), command.index("show servers state"),
                           command.index("systemctl reload-or-restart haproxy"))
    assert check < save < reload


def test_members_probe_quotes_the_host_header_and_url() -> None:
    command = backend_members([("web1", "10.0.0.11")], "shop.example.com", "/health/?a=1&b=2")
    assert shlex.quote("Host: shop.example.com") in command
    assert shlex.quote("http://10.0.0.11:80/health/?a=1&b=2") in command
    assert shlex.quote("app,web1") in command


# --- hooks and the drain driver ------------------------------------------------------------------


class LbPlan(RecordingPlan):
    """The LB host: answers the members probe and `show stat` from scripted outputs."""

    def __init__(self, members: str = "", stats: list[str] | None = None) -> None:
        super().__init__()
        self.members = members
        self.stat_answers = stats or [STAT]

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        self.calls.append(("query", command))
        if "show stat" in command and "present=" in command:
            return CommandResult(True, self.members)
        if "show stat" in command:
            answer = self.stat_answers.pop(0) if len(self.stat_answers) > 1 else self.stat_answers[0]
            return CommandResult(True, answer)
        return CommandResult(True, "")


def lb_ctx(plan: LbPlan, web_hosts: int = 3) -> HostContext:
    hosts = fleet(web_hosts)
    return HostContext(env="production", target=hosts[0], plan=plan, fleet=tuple(hosts))


def test_configure_server_installs_and_reloads_only_when_the_config_changed() -> None:
    plan = LbPlan(members="web1\nweb3\n")
    ctx = lb_ctx(plan)
    Module().configure_server(ctx)
    assert ("packages", "haproxy: install haproxy and socat") in plan.calls
    assert [line.split()[1] for line in server_lines(plan.files[CONFIG_FILE][0])] == ["web1", "web3"]
    assert "haproxy: check config, save server state, reload" in plan.steps
    assert "haproxy: config (backend web1, web3; not serving yet: web2)" in plan.steps
    before = len(plan.steps)
    Module().configure_server(ctx)
    assert "haproxy: check config, save server state, reload" not in plan.steps[before:]


def test_hooks_do_nothing_on_web_hosts() -> None:
    hosts = fleet(2)
    plan = RecordingPlan()
    ctx = HostContext(env="production", target=hosts[1], plan=plan, fleet=tuple(hosts))
    Module().configure_server(ctx)
    Module().publish(ctx)
    assert plan.calls == []


def test_wait_idle_and_up_poll_until_haproxy_says_so() -> None:
    busy = STAT.replace("app,web2,0,0,0,3,,18,0,0,,0,,0,0,0,0,DRAIN", "app,web2,0,0,1,3,,18,0,0,,0,,0,0,0,0,DRAIN")
    plan = LbPlan(stats=[busy, busy, STAT])
    wait_idle(lb_ctx(plan), ["web2"])
    assert sum("show stat" in command for _, command in plan.calls) == 3
    plan = LbPlan(stats=[STAT.replace("app,web2,0,0,0,3,,18,0,0,,0,,0,0,0,0,DRAIN", "app,web2,0,0,0,3,,18,0,0,,0,,0,0,0,0,UP")])
    wait_up(lb_ctx(plan), ["web1", "web2"])
    with pytest.raises(DjaployError, match="web3: MAINT"):
        wait_up(lb_ctx(LbPlan()), ["web3"], timeout=0)
    assert states(lb_ctx(LbPlan()))["web2"] == "drain"


# --- web hosts behind the load balancer ----------------------------------------------------------


def test_nginx_believes_only_the_load_balancer_about_address_and_scheme() -> None:
    from djaploy.modules.nginx import nginx_site

    hosts = fleet(2)
    site = nginx_site(HostContext(env="production", target=hosts[1], plan=RecordingPlan(), fleet=tuple(hosts)))
    assert "set_real_ip_from 10.0.0.2;" in site and "real_ip_header X-Forwarded-For;" in site
    assert "map $realip_remote_addr $shop_app_scheme {" in site
    assert re.search(r"^\s+10\.0\.0\.2 \$http_x_forwarded_proto;$", site, re.M)
    assert re.search(r"^\s+default \$scheme;$", site, re.M)
    assert "proxy_set_header X-Forwarded-Proto $shop_app_scheme;" in site
    alone = nginx_site(HostContext(env="production", target=hosts[1], plan=RecordingPlan(), fleet=(hosts[1],)))
    assert "set_real_ip_from" not in alone and "proxy_set_header X-Forwarded-Proto $scheme;" in alone


def test_nginx_refuses_a_hostile_load_balancer_address() -> None:
    from djaploy.modules.nginx import nginx_site

    lb, web = fleet(1)
    bad = replace(lb, private_address="10.0.0.2; include /etc/passwd")
    with pytest.raises(DjaployError, match="private_address"):
        nginx_site(HostContext(env="production", target=web, plan=RecordingPlan(), fleet=(bad, web)))


def test_nginx_leaves_an_lb_only_host_alone() -> None:
    from djaploy.modules.nginx import Module as Nginx

    lb, _web = fleet(1)
    plan = RecordingPlan()
    ctx = HostContext(env="production", target=lb, plan=plan, fleet=(lb,))
    Nginx().configure_server(ctx)
    Nginx().publish(ctx)
    assert plan.calls == []


def test_status_shows_each_web_host_s_state_at_the_load_balancer() -> None:
    from djaploy.modules.haproxy.status import STATUS_KEY, lb_lines, read_lb_states

    lb_states = read_lb_states(lb_ctx(LbPlan()))
    assert lb_states is not None and lb_states["web3"] == "maint"
    hosts = fleet(1)
    assert read_lb_states(HostContext(env="production", target=hosts[1], plan=LbPlan(), fleet=tuple(hosts))) is None
    statuses = {"lb1": {STATUS_KEY: lb_states}, "web1": {STATUS_KEY: None}, "web2": {STATUS_KEY: None},
                "web9": {STATUS_KEY: None}}
    lines = lb_lines(statuses)
    assert lines == {"web1": ["  load balancer lb1: up"], "web2": ["  load balancer lb1: drain"],
                     "web9": ["  load balancer lb1: not in the backend"]}
