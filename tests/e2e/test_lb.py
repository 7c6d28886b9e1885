"""The load balancer end to end: 1 lb host (HAProxy) in front of 3 web hosts (SQLite each), real SSH.

configureserver twice (the second changes nothing), traffic through the LB reaching every web host
with the visitor's address and scheme passed on, rolling deploys under keep-alive load (0 failed),
a canary failure that never serves the broken release, a drain that survives a reload, and web
hosts leaving and joining the backend with the inventory.
"""

from __future__ import annotations

import time

import pytest

from djaploy.loadgen import Load
from tests.e2e.conftest import SANDBOX_NAME, Project, fresh_sandbox, http_get

ENV = "fleet"
DOMAIN = "shop.test"
APP = "/home/ledger/apps/ledger"
WEB = ("web1", "web2", "web3")

CONFIG = '''
from djaploy.config import DjaployConfig

config = DjaployConfig(
    project_name="ledger",
    health_check_path="/health/",
    secrets={"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY"},
    modules=["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd", "djaploy.modules.haproxy"],
)
'''

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vms = sandbox_hosts()
def host(name, vm, **more):
    return HostConfig(name, ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                      domains=["{domain}"], deployment_strategy="{strategy}", **more)

hosts = [host("lb", vms[0], roles=["lb"])]
hosts += [host(name, vm, env_vars={{"DJANGO_ALLOWED_HOSTS": "{domain}", "E2E_HOST": name}})
          for name, vm in zip({web!r}, vms[1:])]
'''

WHOAMI = '''

@require_GET
def whoami(request):
    """Which web host answered, and what Django learnt about the visitor (e2e only)."""
    import os

    return HttpResponse(f"{os.environ.get('E2E_HOST')} {APP_VERSION} {request.META.get('HTTP_X_FORWARDED_FOR')} "
                        f"{request.scheme}\\n", content_type="text/plain")
'''


@pytest.fixture(scope="module")
def sandbox_hosts():
    """Four hosts: the load balancer, then three web hosts."""
    with fresh_sandbox(SANDBOX_NAME, 4) as booted:
        yield booted


def use(project: Project, strategy: str, web: tuple[str, ...] = WEB) -> None:
    project.write(f"infra/inventory/{ENV}.py", INVENTORY.format(domain=DOMAIN, strategy=strategy, web=web))


def remote(vm, command: str) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(vm, command)
    assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


def lb_states(lb) -> dict[str, str]:
    from djaploy.modules.haproxy.runtime import api, parse_stat

    return {name: stat.status for name, stat in parse_stat(remote(lb, api("show stat"))).items()}


def wait_all_up(lb) -> None:
    """New servers come up after HAProxy's own checks pass (rise 2, every 500 ms)."""
    for _ in range(20):
        if lb_states(lb) == {name: "UP" for name in WEB}:
            return
        time.sleep(0.5)
    assert lb_states(lb) == {name: "UP" for name in WEB}


def release(project: Project, version: str) -> None:
    project.set_version(version)
    project.commit(f"version {version}", tag=f"v{version}")


def through_lb(lb, path: str = "/whoami/") -> str:
    status, body = http_get(f"http://{lb.address}{path}", host=DOMAIN)
    assert status == 200, body
    return body.strip()


def under_load(project: Project, lb, command: str, *args: str):
    with Load(f"http://{lb.address}/version/", clients=6, host_header=DOMAIN, max_seconds=600) as load:
        time.sleep(0.5)
        result = project.manage(command, "--env", ENV, *args)
        time.sleep(0.5)
    print(load.report.summary())
    return result, load.report


def deploy_under_load(project: Project, lb, *args: str):
    return under_load(project, lb, "deploy", *args)


def served_on_each(lb) -> dict[str, str]:
    """web host -> version, asked through the LB until every host answered."""
    seen: dict[str, str] = {}
    for _ in range(40):
        name, version, *_ = through_lb(lb).split()
        seen[name] = version
        if len(seen) == len(WEB):
            break
    return seen


@pytest.fixture(scope="module")
def fleet(project: Project, sandbox_hosts):
    project.write("infra/config.py", CONFIG)
    views = project.root / "entries/views.py"
    views.write_text(views.read_text() + WHOAMI)
    urls = project.root / "ledger/urls.py"
    urls.write_text(urls.read_text().replace('    path("version/"', '    path("whoami/", views.whoami),\n    path("version/"'))
    use(project, "zero_downtime")
    release(project, "10")
    return sandbox_hosts


def test_configureserver_twice_then_traffic_through_the_lb_reaches_every_web_host(project: Project, fleet) -> None:
    lb = fleet[0]
    first = project.manage("configureserver", "--env", ENV, check=True)
    # nothing deployed yet: no web host gets traffic
    assert "haproxy: config (backend no web host; not serving yet: web1, web2, web3)" in first.stdout + first.stderr
    second = project.manage("configureserver", "--env", ENV, check=True)
    for name in ("lb", *WEB):
        assert f"[{name}] ok: no changes" in second.stdout, second.stdout
    assert remote(lb, "systemctl is-active haproxy").strip() == "active"
    assert remote(lb, "systemctl is-active nginx || true").strip() != "active"  # the lb host runs no web server

    result = project.manage("deploy", "--env", ENV, "--release", "v10", check=True)
    assert "rolling: 3 web host(s) in 3 batch(es) (1+1+1) through the load balancer (lb)" in result.stdout
    assert "[lb] ok" in result.stdout and "load balancer: backend web1, web2, web3 (updated and reloaded)" in result.stdout
    wait_all_up(lb)
    assert served_on_each(lb) == {name: "10" for name in WEB}
    _, _, forwarded_for, scheme = through_lb(lb).split()
    assert forwarded_for not in (lb.address, "None") and scheme == "http"  # the visitor's address, not the LB's
    assert remote(lb, "test -d /home/ledger/apps/ledger/releases && echo app || echo none").strip() == "none"
    status = project.manage("status", "--env", ENV, check=True)
    for name in WEB:
        assert f"[{name}]" in status.stdout
    assert status.stdout.count("load balancer lb: up") == 3, status.stdout


def test_rolling_deploy_under_load_drops_nothing(project: Project, fleet) -> None:
    lb = fleet[0]
    release(project, "11")
    result, report = deploy_under_load(project, lb, "--release", "v11")
    assert result.returncode == 0, result.stdout + result.stderr
    assert report.failures == 0, report.failure_reasons
    assert set(report.bodies_in_order) == {"10", "11"} and report.bodies_in_order[-1] == "11"
    assert served_on_each(lb) == {name: "11" for name in WEB}
    assert lb_states(lb) == {name: "UP" for name in WEB}


def test_rollback_goes_through_the_same_batches_under_load(project: Project, fleet) -> None:
    lb = fleet[0]
    result, report = under_load(project, lb, "rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert report.failures == 0, report.failure_reasons
    assert "rolling: 3 web host(s) in 3 batch(es)" in result.stdout
    assert served_on_each(lb) == {name: "10" for name in WEB}
    result, report = deploy_under_load(project, lb, "--release", "v11")
    assert result.returncode == 0 and report.failures == 0, report.failure_reasons
    assert served_on_each(lb) == {name: "11" for name in WEB}


def broken_health(project: Project, lb, version: str):
    """Deploy `version` whose health check answers 500, under load through the LB."""
    views = project.root / "entries/views.py"
    good = views.read_text()
    views.write_text(good.replace("def health(request):\n", "def health(request):\n    return HttpResponse('broken', status=500)\n", 1))
    release(project, version)
    try:
        return deploy_under_load(project, lb, "--release", f"v{version}")
    finally:
        views.write_text(good)
        project.commit("health fixed")


def test_a_failing_canary_stops_the_rollout_and_never_serves(project: Project, fleet) -> None:
    lb = fleet[0]
    result, report = broken_health(project, lb, "12")
    assert result.returncode != 0
    assert report.failures == 0, report.failure_reasons
    assert set(report.bodies_in_order) == {"11"}  # no request reached the release that fails its check
    assert "rolling: batch 1 (web1) failed (the canary); later batches not switched" in result.stdout
    for later in ("web2", "web3"):
        assert f"[{later}] FAILED: [{later}] not switched: batch 1 (web1) failed" in result.stdout
        assert f"[{later}]   now serving: release v11" in result.stdout
    assert served_on_each(lb) == {name: "11" for name in WEB}
    assert lb_states(lb) == {name: "UP" for name in WEB}


def test_a_reload_keeps_a_drain_and_the_backend_follows_the_inventory(project: Project, fleet) -> None:
    from djaploy.modules.haproxy.runtime import api

    lb = fleet[0]
    remote(lb, api("set server app/web1 state drain"))
    use(project, "zero_downtime", web=("web1", "web2"))  # web3 leaves the inventory: the config changes, HAProxy reloads
    project.commit("without web3")
    with Load(f"http://{lb.address}/version/", clients=6, host_header=DOMAIN, max_seconds=300) as load:
        time.sleep(0.5)
        result = project.manage("configureserver", "--env", ENV, check=True)
        time.sleep(0.5)
    assert "haproxy: config (backend web1, web2)" in result.stdout + result.stderr
    assert load.report.failures == 0, load.report.failure_reasons
    assert lb_states(lb) == {"web1": "DRAIN", "web2": "UP"}
    remote(lb, api("set server app/web1 state ready"))
    use(project, "zero_downtime")
    project.commit("web3 back")
    project.manage("configureserver", "--env", ENV, check=True)  # web3 still serves: it joins at once
    wait_all_up(lb)


def test_in_place_hosts_roll_without_a_failed_request(project: Project, fleet) -> None:
    lb = fleet[0]
    use(project, "in_place")
    release(project, "13")
    result, report = deploy_under_load(project, lb, "--release", "v13")
    assert result.returncode == 0, result.stdout + result.stderr
    assert report.failures == 0, report.failure_reasons
    assert served_on_each(lb) == {name: "13" for name in WEB}


def test_an_in_place_canary_that_fails_stays_out_of_rotation(project: Project, fleet) -> None:
    lb = fleet[0]
    result, report = broken_health(project, lb, "14")
    assert result.returncode != 0
    assert report.failures == 0, report.failure_reasons
    assert set(report.bodies_in_order) == {"13"}  # web1 serves 14 now, but the LB sends it nothing
    assert "rolling: batch 1 (web1) failed (the canary)" in result.stdout
    assert lb_states(lb) == {"web1": "MAINT", "web2": "UP", "web3": "UP"}
    for _ in range(10):
        name, version, *_ = through_lb(lb).split()
        assert name != "web1" and version == "13"
    project.manage("deploy", "--env", ENV, "--latest", check=True)  # fixed: web1 is switched and re-admitted
    wait_all_up(lb)
