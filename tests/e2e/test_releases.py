"""Releases without downtime: zero_downtime and bluegreen under continuous load, rollback,
broken releases that must never serve, the deploy lock, retention, venv reuse, state, audit.

All on one sandbox host (the second one), driven through manage.py like a user would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from djaploy.loadgen import Load
from tests.e2e.conftest import SANDBOX_NAME, Project, assert_one_clean_switch, http_get

ENV = "live"
APP = "/home/ledger/apps/ledger"

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[1]
hosts = [HostConfig("web", ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=[vm.address], deployment_strategy="{strategy}", keep_releases=3,
                    env_vars={{"DJANGO_ALLOWED_HOSTS": vm.address}})]
'''


def use_strategy(project: Project, strategy: str) -> None:
    project.write(f"infra/inventory/{ENV}.py", INVENTORY.format(strategy=strategy))


def remote(host, command: str, check: bool = True) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(host, command)
    if check:
        assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


def served_version(host) -> str:
    status, body = http_get(f"http://{host.address}/version/")
    assert status == 200, body
    return body.strip()


def state(host) -> dict:
    return json.loads(remote(host, f"cat {APP}/.djaploy/state.json"))


def audit(host) -> list[dict]:
    return [json.loads(line) for line in remote(host, f"cat {APP}/.djaploy/audit.jsonl").splitlines()]


def release(project: Project, version: str, tag: str | None = None) -> None:
    project.set_version(version)
    project.commit(f"version {version}", tag=tag)


def deploy_under_load(project: Project, host, *args: str):
    with Load(f"http://{host.address}/version/", clients=8, max_seconds=300) as load:
        time.sleep(0.5)
        result = project.manage(*args)
        time.sleep(0.5)
    print(load.report.summary())
    return result, load.report


@pytest.fixture(scope="module")
def host(project: Project, sandbox_hosts):
    vm = sandbox_hosts[1]
    use_strategy(project, "zero_downtime")
    project.commit("live inventory")
    project.manage("configureserver", "--env", ENV, check=True)
    return vm


def test_zero_downtime_deploy_under_load_switches_once_and_drops_nothing(project: Project, host) -> None:
    release(project, "10", tag="v10")
    project.manage("deploy", "--env", ENV, "--release", "v10", check=True)
    assert served_version(host) == "10"

    release(project, "11", tag="v11")
    result, report = deploy_under_load(project, host, "deploy", "--env", ENV, "--release", "v11")
    assert result.returncode == 0, result.stderr
    assert_one_clean_switch(report, "10", "11")
    assert remote(host, f"readlink {APP}/current").strip() == f"{APP}/releases/v11"
    current = state(host)
    assert current["strategy"] == "zero_downtime" and current["current"] == "v11"
    assert current["order"][-2:] == ["v10", "v11"]
    assert current["releases"]["v11"]["commit"] == project.git("rev-parse", "v11").strip()
    entry = audit(host)[-1]
    assert (entry["action"], entry["release"], entry["result"], entry["strategy"]) == ("deploy", "v11", "ok", "zero_downtime")
    assert entry["commit"] == current["releases"]["v11"]["commit"] and entry["seconds"] > 0
    # Same dependencies: both releases run in one venv, installed once.
    venvs = remote(host, f"readlink -f {APP}/releases/v10/.djaploy-venv {APP}/releases/v11/.djaploy-venv").split()
    assert venvs[0] == venvs[1]
    assert remote(host, f"test -f {venvs[0]}/.djaploy-complete && echo done").strip() == "done"
    # The release went live in the other lane, where it booted once; the old lane stopped.
    assert current["lane"] == "b" and remote(host, f"readlink {APP}/live.sock").strip() == "/run/ledger-b/ledger.sock"
    pid = remote(host, "systemctl show -p MainPID --value ledger-b.service").strip()
    assert remote(host, f"readlink /proc/{pid}/cwd").strip() == f"{APP}/releases/v11"
    assert remote(host, "systemctl show -p NRestarts --value ledger-b.service").strip() == "0"
    assert wait_inactive(host, "ledger-a.service")
    # only the sockets start at boot: the first request starts the lane the live link names
    enabled = remote(host, "systemctl is-enabled ledger-a.socket ledger-b.socket ledger-a.service ledger-b.service", check=False)
    assert enabled.split() == ["enabled", "enabled", "disabled", "disabled"], enabled


def wait_inactive(host, unit: str, seconds: float = 40) -> bool:
    """The old lane stops in the background (its requests finish first): wait for it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if remote(host, f"systemctl is-active {unit}", check=False).strip() == "inactive":
            return True
        time.sleep(0.5)
    return False


def test_rollback_under_load_is_fast_and_clean(project: Project, host) -> None:
    result, report = deploy_under_load(project, host, "rollback", "--env", ENV)
    assert result.returncode == 0, result.stderr
    assert "rolled back from v11 to v10" in result.stdout
    assert_one_clean_switch(report, "11", "10")
    assert remote(host, f"readlink {APP}/current").strip() == f"{APP}/releases/v10"
    assert state(host)["releases"]["v11"]["rolled_back"] is True
    assert audit(host)[-1]["action"] == "rollback"
    status = project.manage("status", "--env", ENV, check=True).stdout
    assert "live release: v10" in status and "rolled back" in status and "lock: free" in status


BROKEN = {
    "health-500": ("entries/views.py", "def health(request):\n", "def health(request):\n    return HttpResponse('broken', status=500)\n", "HTTP 500"),
    "does-not-import": ("ledger/wsgi.py", "import os\n", "import os\nimport module_that_does_not_exist  # noqa\n", "did not start"),
    "failing-migration": (
        "entries/migrations/0002_broken.py",
        None,
        "from django.db import migrations\n\n\ndef fail(apps, schema_editor):\n    raise RuntimeError('migration exploded')\n\n\n"
        "class Migration(migrations.Migration):\n    dependencies = [('entries', '0001_initial')]\n"
        "    operations = [migrations.RunPython(fail)]\n",
        "migration exploded",
    ),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_release_never_serves(project: Project, host, kind: str) -> None:
    path, anchor, replacement, reason = BROKEN[kind]
    before_state = state(host)
    live = before_state["current"]
    target = project.root / path
    original = target.read_text() if target.exists() else None
    project.write(path, original.replace(anchor, replacement, 1) if anchor else replacement)
    try:
        result, report = deploy_under_load(project, host, "deploy", "--env", ENV, "--local")
    finally:
        if original is None:
            target.unlink()
        else:
            target.write_text(original)
    assert result.returncode != 0
    assert reason in result.stderr and "[web]" in result.stderr
    assert "Traceback" not in result.stderr.split("remote output")[0]
    assert report.failures == 0 and set(report.bodies_in_order) == {"10"}
    assert f"[web]   now serving: release {live}" in result.stdout  # the summary says what still serves
    assert "full log: " in result.stderr
    assert remote(host, f"readlink {APP}/current").strip() == f"{APP}/releases/{live}"
    after = state(host)
    assert after["current"] == live and after["order"] == before_state["order"]
    on_disk = remote(host, f"ls {APP}/releases").split()
    assert not [name for name in on_disk if name.endswith("-local")], on_disk  # failed release removed
    assert audit(host)[-1]["result"] == "failed"


def test_lock_refuses_a_second_deploy_and_survives_a_killed_deployer(project: Project, host) -> None:
    release(project, "12", tag="v12")
    command = [sys.executable, "manage.py", "deploy", "--env", ENV, "--release", "v12"]
    first = subprocess.Popen(command, cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in first.stdout:
        if "extract release" in line:
            break
    # Frozen with its release extracted but not yet live: it holds the lock while the second
    # deploy asks, and is then killed halfway, as `kill -9` would leave it.
    first.send_signal(signal.SIGSTOP)
    second = project.manage("deploy", "--env", ENV, "--latest")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert second.returncode != 0
    assert "lock" in second.stderr and "held" in second.stderr and '"release": "v12"' in second.stderr
    half_finished = set(remote(host, f"ls {APP}/releases").split()) - {"v10", "v11"}
    assert half_finished == {"v12"}, half_finished
    assert "v12" not in state(host)["releases"]

    # The killed deployer left its lock: reported, then broken on purpose.
    third = project.manage("deploy", "--env", ENV, "--release", "v12")
    assert third.returncode != 0 and "manage.py unlock" in third.stderr
    assert "lock: held by" in project.manage("status", "--env", ENV, check=True).stdout
    unlocked = project.manage("unlock", "--env", ENV, check=True)
    assert "lock broken" in unlocked.stdout
    project.manage("deploy", "--env", ENV, "--release", "v12", check=True)
    assert served_version(host) == "12"
    # Releases are immutable: the redeploy got its own folder, and the half-finished one of the
    # killed deploy is never a serving candidate; the next deploy's pruning removed it.
    after = state(host)
    assert after["current"] == "v12-r2" and after["order"] == ["v10", "v11", "v12-r2"], after
    assert set(remote(host, f"ls {APP}/releases").split()) == {"v10", "v11", "v12-r2"}


def test_ctrl_c_releases_the_lock_and_the_live_release_keeps_serving(project: Project, host) -> None:
    live = state(host)["current"]
    release(project, "12b")
    # SIGINT as a terminal sends it (restored to its default: background jobs inherit it ignored).
    command = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])", "manage.py", "deploy", "--env", ENV, "--latest"]
    deploying = subprocess.Popen(command, cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in deploying.stdout:
        if "core: env file" in line:
            break
    deploying.send_signal(signal.SIGINT)
    output = deploying.communicate(timeout=120)[0]
    assert deploying.returncode != 0 and "interrupted" in output
    assert "lock: free" in project.manage("status", "--env", ENV, check=True).stdout
    assert audit(host)[-1]["result"] == "interrupted"
    assert state(host)["current"] == live and served_version(host) == "12"
    project.manage("deploy", "--env", ENV, "--latest", check=True)  # nothing to break by hand
    assert served_version(host) == "12b"


def test_retention_keeps_live_and_rollback_target_and_removes_unused_venvs(project: Project, host) -> None:
    # New dependencies: a new venv; the old one goes when no kept release uses it.
    project.write("requirements.txt", (project.root / "requirements.txt").read_text() + "six\n")
    for version in ("13", "14", "15"):
        release(project, version, tag=f"v{version}")
        project.manage("deploy", "--env", ENV, "--release", f"v{version}", check=True)
    kept = remote(host, f"ls {APP}/releases").split()
    current = state(host)
    # keep_releases=3: the newest three, which hold the live release and its rollback target.
    assert current["current"] == "v15" and current["order"] == ["v13", "v14", "v15"], current
    assert sorted(kept) == ["v13", "v14", "v15"], kept
    venvs = remote(host, f"ls -d {APP}/shared/venv-*").split()
    assert len(venvs) == 1, venvs  # the pre-six venv is used by no kept release
    assert remote(host, f"{APP}/current/.djaploy-venv/bin/python -c 'import six; print(six.__name__)'").strip() == "six"


def test_interrupted_venv_install_is_not_reused(project: Project, host) -> None:
    from djaploy.project import dependency_hash

    requirements = (project.root / "requirements.txt").read_text() + "idna\n"
    full = remote(host, "python3.11 -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])'").strip()
    venv = f"{APP}/shared/venv-{dependency_hash(requirements, '3.11')}-py{full}-system"  # djaploy.python's key
    # A venv whose install never finished: python is there, the marker is not.
    remote(host, f"runuser -u ledger -- python3.11 -m venv {venv}")
    project.write("requirements.txt", requirements)
    release(project, "16", tag="v16")
    project.manage("deploy", "--env", ENV, "--release", "v16", check=True)
    assert remote(host, f"test -f {venv}/.djaploy-complete && {venv}/bin/python -c 'import django, idna' && echo ok").strip() == "ok"
    assert served_version(host) == "16"


def live_lane(host) -> str:
    """The lane the live link points at (a or b): /run/ledger-<lane>/ledger.sock."""
    return remote(host, f"readlink {APP}/live.sock").strip().split("/")[2].removeprefix("ledger-")


def test_a_deployer_killed_after_the_switch_costs_the_next_deploy_no_request(project: Project, host) -> None:
    """A deployer killed after moving the traffic (kill -9, a dropped connection) leaves state.json
    naming the old lane: the next deploy reads the live link, so it starts in the lane without
    traffic instead of restarting the one serving."""
    before = live_lane(host)
    after = "b" if before == "a" else "a"
    release(project, "16b", tag="v16b")
    command = [sys.executable, "manage.py", "deploy", "--env", ENV, "--release", "v16b"]
    first = subprocess.Popen(command, cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert first.stdout is not None
    for line in first.stdout:
        if f"] stop ledger-{before}" in line:  # the traffic is on the other lane; state.json comes after
            break
    first.send_signal(signal.SIGKILL)
    first.wait()
    project.manage("unlock", "--env", ENV, check=True)
    assert live_lane(host) == after and served_version(host) == "16b"
    assert state(host)["lane"] == before  # stale

    release(project, "16c", tag="v16c")
    result, report = deploy_under_load(project, host, "deploy", "--env", ENV, "--release", "v16c")
    assert result.returncode == 0, result.stderr
    assert_one_clean_switch(report, "16b", "16c")
    assert live_lane(host) == before and state(host)["lane"] == before
    assert wait_inactive(host, f"ledger-{after}.service")


def test_bluegreen_stage_activate_rollback_under_load(project: Project, host) -> None:
    use_strategy(project, "bluegreen")
    project.commit("switch to bluegreen")
    # From zero_downtime to bluegreen on a live host: the first slot goes live when checked.
    result, report = deploy_under_load(project, host, "deploy", "--env", ENV, "--release", "v16")
    assert result.returncode == 0, result.stderr
    assert report.failures == 0, report.failure_reasons
    assert state(host)["active"] == "blue"
    lanes = remote(host, "systemctl is-active ledger-a.service ledger-b.service; ls /etc/systemd/system/", check=False)
    assert lanes.split()[:2] == ["inactive", "inactive"] and "ledger-a.service" not in lanes  # retired

    release(project, "17", tag="v17")
    staged = project.manage("deploy", "--env", ENV, "--release", "v17", check=True)
    assert "staged in the green slot" in staged.stdout and "traffic stays on blue" in staged.stdout
    assert served_version(host) == "16"
    assert remote(host, "systemctl is-active ledger-green.service").strip() == "active"

    result, report = deploy_under_load(project, host, "activate", "--env", ENV)
    assert result.returncode == 0, result.stderr
    assert_one_clean_switch(report, "16", "17")
    current = state(host)
    assert (current["active"], current["previous"]) == ("green", "blue")
    assert current["slots"]["green"]["release"] == "v17" and current["slots"]["green"]["state"] == "active"
    assert current["slots"]["blue"]["state"] == "previous"

    result, report = deploy_under_load(project, host, "rollback", "--env", ENV)
    assert result.returncode == 0, result.stderr
    assert_one_clean_switch(report, "17", "16")
    assert state(host)["active"] == "blue"
    status = project.manage("status", "--env", ENV, check=True).stdout
    assert "active slot: blue" in status and "green: previous release v17" in status


def test_bluegreen_never_activates_a_failing_slot(project: Project, host) -> None:
    path, anchor, replacement, reason = BROKEN["health-500"]
    original = (project.root / path).read_text()
    project.write(path, original.replace(anchor, replacement, 1))
    try:
        staged = project.manage("deploy", "--env", ENV, "--local")
    finally:
        project.write(path, original)
    assert staged.returncode != 0 and "500" in staged.stderr
    activate = project.manage("activate", "--env", ENV)
    assert activate.returncode != 0 and "failed" in activate.stderr
    assert served_version(host) == "16" and state(host)["active"] == "blue"


def test_in_place_refuses_rollback(project: Project, host) -> None:
    use_strategy(project, "in_place")
    result = project.manage("rollback", "--env", ENV)
    assert result.returncode != 0
    assert "not available with deployment_strategy='in_place'" in result.stderr
    use_strategy(project, "bluegreen")
