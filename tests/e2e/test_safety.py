"""Safety properties a user never sees until they fail: the secrets file is never readable by
others, a dry run changes nothing, and a release that fails after the switch hands traffic back
to the previous one without a failed request.

Host 0 runs zero_downtime for the secrets and dry-run tests; host 1 runs the post-switch tests.
"""

from __future__ import annotations

import shlex
import subprocess
import time

import pytest

from djaploy.loadgen import Load
from tests.e2e.conftest import SANDBOX_NAME, Project, http_get

APP = "/home/ledger/apps/ledger"
SECRET_ENV = "safety"

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[{index}]
hosts = [HostConfig("web", ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=[vm.address], deployment_strategy="{strategy}", keep_releases=3,
                    health_check_path="{health}", env_vars={{"DJANGO_ALLOWED_HOSTS": vm.address}})]
'''

# Polls as root, as fast as Python can, every place the secrets file (or an upload of it) can be.
WATCHER = r'''
import glob, os, sys, time
end = time.time() + float(sys.argv[1])
stop = "/run/djaploy-watch-stop"
patterns = ["/home/ledger/apps/ledger/releases/*/.djaploy-env*", "/tmp/pyinfra-*", "/tmp/tmp.*", "/tmp/tmp.*/*"]
seen = set()
polls = 0
while time.time() < end and not os.path.exists(stop):
    polls += 1
    for pattern in patterns:
        for path in glob.glob(pattern):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            seen.add((path, st.st_mode & 0o777, st.st_uid, os.path.isdir(path)))
for path, mode, uid, is_dir in sorted(seen):
    print(f"{path}\t{mode:o}\t{uid}\t{int(is_dir)}")
print(f"polls\t{polls}", file=sys.stderr)
'''

# A release whose health view fails every other request (each gunicorn worker counts its own).
FLAKY = (
    "def health(request):\n",
    "def health(request):\n    health.calls = getattr(health, 'calls', 0) + 1\n    if health.calls % 2:\n"
    "        return HttpResponse('fails every other request', status=500)\n",
)

# A release whose health view passes in the private gunicorn (no proxy headers) and fails
# behind nginx (which adds X-Forwarded-For): it passes the gate and fails after the switch.
FAILS_BEHIND_NGINX = (
    "def health(request):\n",
    "def health(request):\n    if request.META.get('HTTP_X_FORWARDED_FOR'):\n"
    "        return HttpResponse('broken behind the web server', status=500)\n",
)


def remote(host, command: str) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(host, command, timeout=120)
    assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


def use(project: Project, index: int, strategy: str, health: str = "/health/") -> str:
    env = f"{SECRET_ENV}{index}"
    project.write(f"infra/inventory/{env}.py", INVENTORY.format(index=index, strategy=strategy, health=health))
    project.commit(f"{env} inventory")
    return env


def release(project: Project, version: str) -> None:
    project.set_version(version)
    project.commit(f"version {version}")


def served_version(host) -> str:
    status, body = http_get(f"http://{host.address}/version/")
    assert status == 200, body
    return body.strip()


@pytest.fixture(scope="module")
def zero(project: Project, sandbox_hosts):
    env = use(project, 0, "zero_downtime")
    project.manage("configureserver", "--env", env, check=True)
    project.manage("deploy", "--env", env, "--latest", check=True)
    return env, sandbox_hosts[0]


def test_secrets_file_is_never_readable_by_others_during_a_deploy(project: Project, zero) -> None:
    env, host = zero
    ssh = host.ssh_command("root")
    remote(host, "rm -f /run/djaploy-watch-stop")
    watcher = subprocess.Popen([*ssh, f"python3 -c {shlex.quote(WATCHER)} 300"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        release(project, "watched")
        project.manage("deploy", "--env", env, "--latest", check=True)
    finally:
        remote(host, "touch /run/djaploy-watch-stop")
        out, err = watcher.communicate(timeout=60)
    uid = int(remote(host, "id -u ledger"))
    seen = [line.split("\t") for line in out.splitlines()]
    env_files = [(path, mode, owner) for path, mode, owner, is_dir in seen if path.endswith(".djaploy-env")]
    assert env_files, f"the watcher never saw an env file ({err.strip()})"
    for path, mode, owner in env_files:
        assert int(mode, 8) & 0o077 == 0 and int(owner) == uid, (path, mode, owner)
    assert not [path for path, *_ in seen if path.startswith("/tmp/pyinfra-")]  # no predictable upload name
    private_dirs = {path for path, mode, _, is_dir in seen if is_dir == "1" and int(mode, 8) == 0o700}
    for path, mode, owner, is_dir in seen:
        if not path.startswith("/tmp/tmp."):
            continue
        if is_dir == "1":
            assert path in private_dirs, (path, mode)  # uploads land in a 0700 folder
        elif path.rpartition("/")[0] not in private_dirs:
            assert int(mode, 8) & 0o077 == 0, (path, mode)  # or are private themselves (mktemp)


def snapshot(host) -> str:
    """Everything a dry run could touch: files (with size and mtime), unit states, lock, audit."""
    listing = remote(host, (
        "find /home/ledger /etc/nginx /etc/systemd/system -xdev -printf '%p %m %u %s %T@ %l\\n' 2>/dev/null | sort; "
        "ls /etc/caddy 2>/dev/null; systemctl list-units --all --no-legend --plain 'ledger*' nginx.service; "
        f"ls -la {APP}/.djaploy; cat {APP}/.djaploy/audit.jsonl {APP}/.djaploy/state.json"
    ))
    return listing


def test_dry_runs_change_nothing(project: Project, zero) -> None:
    env, host = zero
    release(project, "dry")
    before = snapshot(host)
    for args in (["deploy", "--env", env, "--latest", "--dry-run"], ["rollback", "--env", env, "--dry-run"],
                 ["configureserver", "--env", env, "--dry-run"]):
        result = project.manage(*args, check=True)
        assert "dry run" in (result.stdout + result.stderr).lower(), result.stdout
    after = snapshot(host)
    assert after == before
    assert served_version(host) != "dry"


@pytest.fixture(scope="module")
def blue_green_host(project: Project, sandbox_hosts):
    return sandbox_hosts[1]


def break_health(project: Project, change: tuple[str, str] = FAILS_BEHIND_NGINX) -> None:
    path = project.root / "entries" / "views.py"
    text = path.read_text()
    assert change[0] in text
    project.write("entries/views.py", text.replace(*change, 1))
    project.commit("health broken")


def unbreak(project: Project, change: tuple[str, str] = FAILS_BEHIND_NGINX) -> None:
    path = project.root / "entries" / "views.py"
    project.write("entries/views.py", path.read_text().replace(change[1], change[0], 1))
    project.commit("health fixed")


def activate(strategy: str) -> list[str]:
    return ["--activate"] if strategy == "bluegreen" else []


@pytest.mark.parametrize("strategy", ["in_place", "zero_downtime", "bluegreen"])
def test_a_release_failing_every_other_health_check_is_refused(project: Project, blue_green_host, strategy: str) -> None:
    host = blue_green_host
    env = use(project, 1, strategy)
    project.manage("configureserver", "--env", env, check=True)
    release(project, f"steady-{strategy}")
    project.manage("deploy", "--env", env, "--latest", *activate(strategy), check=True)
    break_health(project, FLAKY)
    release(project, f"flaky-{strategy}")
    result = project.manage("deploy", "--env", env, "--latest", *activate(strategy))
    unbreak(project, FLAKY)
    assert result.returncode != 0, result.stdout
    assert "HTTP 500" in result.stdout + result.stderr
    if strategy != "in_place":  # in_place has no previous release to keep serving
        assert served_version(host) == f"steady-{strategy}"


def test_a_health_path_that_redirects_on_the_same_host_is_followed(project: Project, blue_green_host) -> None:
    env = use(project, 1, "zero_downtime", health="/health")  # Django's APPEND_SLASH answers 301 to /health/
    release(project, "redirected")
    project.manage("deploy", "--env", env, "--latest", check=True)
    log = max((project.root / ".djaploy" / "logs").glob("*-deploy-*.log"), key=lambda path: path.stat().st_mtime)
    assert "HTTP 200 after 1 redirect(s), at http://" in log.read_text()
    assert served_version(blue_green_host) == "redirected"


@pytest.mark.parametrize("strategy", ["zero_downtime", "bluegreen"])
def test_a_release_failing_after_the_switch_hands_traffic_back(project: Project, blue_green_host, strategy: str) -> None:
    host = blue_green_host
    env = use(project, 1, strategy)
    project.manage("configureserver", "--env", env, check=True)
    release(project, f"good-{strategy}")
    project.manage("deploy", "--env", env, "--latest", *(["--activate"] if strategy == "bluegreen" else []), check=True)
    assert served_version(host) == f"good-{strategy}"

    break_health(project)
    release(project, f"bad-{strategy}")
    with Load(f"http://{host.address}/version/", clients=4, max_seconds=300) as load:
        time.sleep(0.5)
        result = project.manage("deploy", "--env", env, "--latest", *(["--activate"] if strategy == "bluegreen" else []))
        time.sleep(0.5)
    print(load.report.summary())
    unbreak(project)
    assert result.returncode != 0
    assert "HTTP 500" in result.stdout + result.stderr
    assert served_version(host) == f"good-{strategy}"
    assert load.report.failures == 0, load.report.failure_reasons
    assert load.report.bodies_in_order[-1] == f"good-{strategy}"
    status, body = http_get(f"http://{host.address}/health/")
    assert status == 200, body  # the previous release serves its health view again through nginx
