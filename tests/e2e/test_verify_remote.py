"""verify, remote manage.py and service logs against real sandbox hosts.

Two hosts: one over root SSH with bluegreen, one over a sudo user with zero_downtime, so the
live code is found in slots/<active> and in current, and the app user is reached both ways.
Then purpose-made broken projects: verify and `manage.py check` must name each problem and its fix.
"""

from __future__ import annotations

import queue
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    SANDBOX_NAME,
    SECRET_KEY,
    Project,
    http_get,
    http_post_json,
)

ENV = "ops"
UNUSED_PORT = 2999  # nothing listens there on the sandbox hosts (asserted below)

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm1, vm2 = sandbox_hosts()[:2]
hosts = [
    HostConfig("root-host", ssh_host=vm1.address, ssh_user="root", ssh_key=vm1.key_path,
               ssh_known_hosts_file=vm1.known_hosts_path, domains=[vm1.address], deployment_strategy="bluegreen",
               env_vars={"DJANGO_ALLOWED_HOSTS": vm1.address}),
    HostConfig("sudo-host", ssh_host=vm2.address, ssh_user="deployer", ssh_key=vm2.key_path,
               ssh_known_hosts_file=vm2.known_hosts_path, domains=[vm2.address], deployment_strategy="zero_downtime",
               env_vars={"DJANGO_ALLOWED_HOSTS": vm2.address}),
]
'''

ONE_HOST = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[{index}]
hosts = [HostConfig("{name}", ssh_host=vm.address, ssh_port={port}, ssh_user="{user}", ssh_key=vm.key_path,
                    ssh_known_hosts_file=vm.known_hosts_path, domains=[vm.address],
                    env_vars={{"DJANGO_ALLOWED_HOSTS": vm.address}})]
'''


def on_host(host, command: str) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(host, command)
    assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


def no_secret(*results: subprocess.CompletedProcess) -> None:
    for result in results:
        assert SECRET_KEY not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def hosts(project: Project, sandbox_hosts):
    project.write(f"infra/inventory/{ENV}.py", INVENTORY)
    project.write("infra/inventory/unreachable.py", ONE_HOST.format(index=0, name="gone", port=UNUSED_PORT, user="root"))
    project.write("infra/inventory/nosudo.py", ONE_HOST.format(index=1, name="plain", port=22, user="nosudo"))
    project.commit("inventories for verify and remote")
    project.manage("configureserver", "--env", ENV, check=True)
    project.manage("deploy", "--env", ENV, "--latest", "--activate", check=True)
    return sandbox_hosts[:2]


@pytest.fixture(scope="module")
def rows(hosts) -> dict[str, str]:
    """One row per host, written through the web app (each host has its own SQLite database)."""
    written = {}
    for name, vm in zip(("root-host", "sudo-host"), hosts):
        text = f"written on {name} {uuid.uuid4().hex[:8]}"
        status, body = http_post_json(f"http://{vm.address}/api/entries/", {"text": text})
        assert status == 201 and body["text"] == text
        written[name] = text
    return written


# --- remote -------------------------------------------------------------------------------------


def test_remote_migrate_check_exits_zero_in_each_live_release(project: Project, hosts) -> None:
    for host, code_dir in (("root-host", "/ledger/slots/"), ("sudo-host", "/ledger/current")):
        result = project.manage("remote", "--env", ENV, "--host", host, "--", "migrate", "--check")
        assert result.returncode == 0, result.stderr
        assert f"[{host}] manage.py migrate --check in release" in result.stderr and code_dir in result.stderr


def test_remote_shell_prints_a_row_written_through_the_web_app(project: Project, hosts, rows) -> None:
    for host, text in rows.items():
        code = f"from entries.models import Entry; print('row:', Entry.objects.get(text={text!r}).text)"
        result = project.manage("remote", "--env", ENV, "--host", host, "--", "shell", "-c", code)
        assert result.returncode == 0, result.stderr
        assert f"row: {text}" in result.stdout.splitlines()
        no_secret(result)


def test_remote_runs_as_the_app_user_with_the_release_env_and_no_secret_on_any_command_line(project: Project, hosts) -> None:
    code = ("import os, pwd, subprocess; from django.conf import settings; "
            "print('user', pwd.getpwuid(os.getuid()).pw_name); print('env', os.environ['DJAPLOY_ENV']); "
            "print('key-from-env', settings.SECRET_KEY == os.environ['DJANGO_SECRET_KEY'] != ''); "
            "print(subprocess.run(['ps', '-eo', 'args'], capture_output=True, text=True).stdout)")
    for host in ("root-host", "sudo-host"):
        result = project.manage("remote", "--env", ENV, "--host", host, "--", "shell", "-c", code)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert {"user ledger", f"env {ENV}", "key-from-env True"} <= set(lines)
        # Every process's arguments on the host, our own sudo/sh chain included: no secret.
        assert any(line.startswith("sudo -n -H -u ledger -- sh -c") for line in lines), lines
        no_secret(result)


def test_remote_exits_with_the_commands_exit_code(project: Project, hosts) -> None:
    result = project.manage("remote", "--env", ENV, "--host", "sudo-host", "--", "shell", "-c", "import sys; sys.exit(3)")
    assert result.returncode == 3
    unknown = project.manage("remote", "--env", ENV, "--host", "sudo-host", "--", "no-such-command")
    assert unknown.returncode != 0 and "Unknown command: 'no-such-command'" in unknown.stderr
    missing = project.manage("remote", "--env", ENV, "--host", "web9", "--", "check")
    assert missing.returncode != 0 and "no host 'web9'; its hosts: root-host, sudo-host" in missing.stderr


def test_remote_shell_is_interactive_with_a_terminal(project: Project, hosts, rows) -> None:
    """`script` gives the command a terminal, as a person's shell would: ssh -t, a Python prompt."""
    text = rows["root-host"]
    command = f"{sys.executable} manage.py remote --env {ENV} --host root-host -- shell"
    typed = f"from entries.models import Entry\rprint('count', Entry.objects.filter(text={text!r}).count())\rexit()\r"
    # Type once the remote prompt is up, and keep the terminal open until the shell has exited.
    session = f"(sleep 5; printf %s {shlex.quote(typed)}; sleep 5) | script -qec {shlex.quote(command)} /dev/null"
    result = subprocess.run(["bash", "-c", session], cwd=project.root, env=project.env, check=False,
                            capture_output=True, timeout=90)
    screen = result.stdout.decode(errors="replace")
    print(screen)
    assert result.returncode == 0, result.stderr
    assert "(InteractiveConsole)" in screen and "count 1" in screen


# --- logs ---------------------------------------------------------------------------------------


def test_logs_show_the_live_services_gunicorn_lines(project: Project, hosts, rows) -> None:
    result = project.manage("logs", "--env", ENV, "--host", "root-host", "--lines", "300")
    assert result.returncode == 0, result.stderr
    assert "gunicorn" in result.stdout and "Booting worker" in result.stdout
    assert "POST /api/entries/" in result.stdout  # the request went to the live (blue) slot's service
    both = project.manage("logs", "--env", ENV, "--lines", "300")
    assert both.returncode == 0, both.stderr
    for host in ("root-host", "sudo-host"):
        assert any(line.startswith(f"[{host}] ") and "gunicorn" in line for line in both.stdout.splitlines())


def test_logs_follow_prints_new_requests(project: Project, hosts) -> None:
    """A request made while `logs --follow` runs shows up in its output. The command needs a moment
    to read the live service and attach journalctl (`--lines 0` shows nothing older), so the probe
    request is repeated until its line arrives; lines are read in a thread, so a follow that prints
    nothing fails the test at the deadline instead of blocking it."""
    probe = uuid.uuid4().hex
    process = subprocess.Popen([sys.executable, "manage.py", "logs", "--env", ENV, "--host", "sudo-host", "--follow",
                                "--lines", "0"], cwd=project.root, env=project.env, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        seen = False
        while time.monotonic() < deadline and not seen and process.poll() is None:
            status, _ = http_get(f"http://{hosts[1].address}/version/?probe={probe}")
            assert status == 200
            try:
                while not seen:
                    seen = probe in lines.get(timeout=1)
            except queue.Empty:
                pass
        assert seen, f"the request never showed in the followed log (logs exited: {process.poll()})"
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- verify -------------------------------------------------------------------------------------


def test_verify_remote_passes_on_configured_hosts(project: Project, hosts) -> None:
    result = project.manage("verify", "--env", ENV, "--remote")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify: 0 error(s)" in result.stdout
    assert f"[{ENV}/root-host] ssh root@" in result.stdout and "Debian GNU/Linux 12" in result.stdout
    assert f"[{ENV}/sudo-host] ssh deployer@" in result.stdout and "passwordless sudo" in result.stdout
    no_secret(result)


def test_verify_remote_reports_an_unreachable_host(project: Project, hosts) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((hosts[0].address, UNUSED_PORT), timeout=5).close()
    result = project.manage("verify", "--env", "unreachable", "--remote")
    assert result.returncode != 0
    assert f"djaploy.E009 [unreachable/gone] cannot connect to root@{hosts[0].address}:{UNUSED_PORT}" in result.stdout
    assert "fix: check the host is up and its ssh_host, ssh_port" in result.stdout
    # verify writes its report to a run log too, and names it
    log = Path(result.stderr.split("full log: ")[1].split()[0])
    text = (log if log.is_absolute() else project.root / log).read_text()
    assert "djaploy.E009 [unreachable/gone] cannot connect" in text and re.search(r"verify: [1-9]\d* error\(s\)", text)


def test_verify_remote_reports_a_user_without_passwordless_sudo(project: Project, hosts) -> None:
    on_host(hosts[1], "id nosudo >/dev/null 2>&1 || useradd -m -s /bin/bash nosudo; "
                      "install -d -m 700 -o nosudo -g nosudo /home/nosudo/.ssh && "
                      "install -m 600 -o nosudo -g nosudo /root/.ssh/authorized_keys /home/nosudo/.ssh/authorized_keys")
    result = project.manage("verify", "--env", "nosudo", "--remote")
    assert result.returncode != 0
    assert "djaploy.E010 [nosudo/plain] nosudo cannot run sudo without a password" in result.stdout
    assert "NOPASSWD" in result.stdout


def test_manage_py_check_is_clean_and_never_connects(project: Project, hosts) -> None:
    """The unreachable inventory loads fine; system checks have no SSH, so they pass."""
    result = project.manage("check", "--deploy", "--tag", "djaploy")
    assert result.returncode == 0, result.stderr
    assert "djaploy" not in result.stdout + result.stderr
    assert project.manage("verify", "--env", ENV).returncode == 0


def _append(relative: str, text: str):
    return lambda project: project.write(relative, (project.root / relative).read_text() + text)


def _replace(relative: str, old: str, new: str):
    def change(project: Project) -> None:
        content = (project.root / relative).read_text()
        assert old in content
        project.write(relative, content.replace(old, new))

    return change


BROKEN = {
    "debug on when deployed": (_replace("infra/config.py", '{"DJANGO_DEBUG": "0"}', '{"DJANGO_DEBUG": "1"}'),
                               "E007", "DEBUG is on with DJAPLOY_ENV=ops", "turn DEBUG off when deployed"),
    "static root not from djaploy": (_append("ledger/settings.py", '\nSTATIC_ROOT = BASE_DIR / "staticfiles"\n'),
                                     "E005", "/home/ledger/apps/ledger/shared/staticfiles",
                                     "STATIC_ROOT = os.environ.get('DJAPLOY_STATIC_ROOT'"),
    "domain missing from allowed hosts": (_replace(f"infra/inventory/{ENV}.py", '{"DJANGO_ALLOWED_HOSTS": vm1.address}',
                                                   '{"DJANGO_ALLOWED_HOSTS": "other.example"}'),
                                          "E006", "is not covered by ALLOWED_HOSTS ['other.example']",
                                          "env_vars={'DJANGO_ALLOWED_HOSTS'"),
    "hard-coded secret key": (_append("ledger/settings.py", '\nSECRET_KEY = "hard-coded-' + "z" * 40 + '"\n'),
                              "E008", "SECRET_KEY with DJAPLOY_ENV=ops is the same as without it",
                              "secrets={'DJANGO_SECRET_KEY'"),
    "no gunicorn": (lambda project: project.write("requirements.txt", "Django>=4.2,<6\n"),
                    "E003", "gunicorn is not among the dependencies", "add gunicorn to the dependencies"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_verify_and_check_report_each_misconfiguration_with_its_fix(project: Project, hosts, case: str) -> None:
    change, check_id, problem, fix = BROKEN[case]
    change(project)
    try:
        verify = project.manage("verify", "--env", ENV)
        assert verify.returncode != 0
        finding = next((line for line in verify.stdout.splitlines() if f"djaploy.{check_id} " in line), None)
        assert finding is not None and problem in finding, verify.stdout
        fixes = verify.stdout.split(finding, 1)[1].splitlines()
        assert fixes[1].strip().startswith("fix: ") and fix in fixes[1], fixes[:2]
        assert "verify: " in verify.stderr and "error(s)" in verify.stderr
        check = project.manage("check", "--deploy", "--tag", "djaploy")
        assert check.returncode != 0
        assert project.manage("check").returncode == 0  # development commands are never blocked
        assert f"(djaploy.{check_id})" in check.stderr and problem in check.stderr and fix in check.stderr
        no_secret(verify, check)
    finally:
        project.git("checkout", "--", ".")
