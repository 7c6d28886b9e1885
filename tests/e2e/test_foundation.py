"""The first complete path: configureserver, then in_place deploys of a tag, HEAD and the
working tree, to two hosts at once (one over root SSH, one over a sudo user), checked over
HTTP through nginx; data survives redeploys; bad input changes nothing."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import SECRET_KEY, Project, http_get, http_post_json

ENV = "fleet"
ENV_FILE = "/home/ledger/apps/ledger/code/.djaploy-env"

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm1, vm2 = sandbox_hosts()[:2]
hosts = [
    HostConfig("root-host", ssh_host=vm1.address, ssh_user="root", ssh_key=vm1.key_path,
               ssh_known_hosts_file=vm1.known_hosts_path, domains=[vm1.address],
               env_vars={"DJANGO_ALLOWED_HOSTS": vm1.address}),
    HostConfig("sudo-host", ssh_hostname=vm2.address, ssh_user="deployer", ssh_key=vm2.key_path,
               ssh_known_hosts_file=vm2.known_hosts_path, domains=[vm2.address],
               env_vars={"DJANGO_ALLOWED_HOSTS": vm2.address}),
]
'''


@pytest.fixture(scope="module")
def fleet(project: Project, sandbox_hosts):
    project.write(f"infra/inventory/{ENV}.py", INVENTORY)
    project.commit("fleet inventory")
    return sandbox_hosts[:2]


def run_on(host, command: str) -> str:
    from djaploy.sandbox import Sandbox
    from tests.e2e.conftest import SANDBOX_NAME

    result = Sandbox(name=SANDBOX_NAME).run(host, command)
    assert result.returncode == 0, f"{command!r} on {host.name} failed: {result.stdout}{result.stderr}"
    return result.stdout


def page(host) -> str:
    status, body = http_get(f"http://{host.address}/")
    assert status == 200, body[:500]
    return body


def version_on(host) -> str:
    match = re.search(r'<p id="version">version (\S+)</p>', page(host))
    assert match, "version paragraph missing"
    return match.group(1)


def test_configureserver_provisions_and_second_run_changes_nothing(project: Project, fleet) -> None:
    first = project.manage("configureserver", "--env", ENV, check=True)
    assert "changed" in first.stdout
    second = project.manage("configureserver", "--env", ENV, check=True)
    assert "[root-host] ok: no changes" in second.stdout
    assert "[sudo-host] ok: no changes" in second.stdout
    # A day later apt's lists are stale: still nothing to change, so nothing may report a change.
    for host in fleet:
        run_on(host, "touch -d '3 days ago' /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists/* 2>/dev/null; true")
    later = project.manage("configureserver", "--env", ENV, check=True)
    assert "[root-host] ok: no changes" in later.stdout and "[sudo-host] ok: no changes" in later.stdout, later.stdout
    for host in fleet:
        assert run_on(host, "systemctl is-active nginx").strip() == "active"
        assert run_on(host, "id -u ledger").strip().isdigit()
        # The app user has no sudo rights.
        assert "not allowed" in run_on(host, "sudo -l -U ledger || true")
        assert run_on(host, "test -x /usr/bin/python3.11 && python3.11 -c 'import venv' && echo yes").strip() == "yes"


def test_deploy_tag_serves_page_and_css_through_nginx(project: Project, fleet) -> None:
    result = project.manage("deploy", "--env", ENV, "--release", "v1", check=True)
    assert "release v1 is live" in result.stdout
    assert SECRET_KEY not in result.stdout + result.stderr
    # The summary says what happened per host and what to do next, and names the run log.
    for host in fleet:
        assert f"http://{host.address}/" in result.stdout
    assert "phases: upload" in result.stdout and "next:" in result.stdout and "manage.py logs --env fleet" in result.stdout
    log_path = result.stdout.split("full log: ")[1].split()[0]
    log = open(log_path).read()
    assert "[root-host] core: migrate | " in log and "Apply all migrations" in log  # remote output is kept
    assert "DJANGO_SECRET_KEY" not in log and SECRET_KEY not in log
    assert (project.root / ".djaploy" / ".gitignore").exists() and ".djaploy" not in project.git("status", "--porcelain")
    for host in fleet:
        body = page(host)
        assert "<h1>Ledger</h1>" in body and "release v1" in body
        assert version_on(host) == "1"
        status, css = http_get(f"http://{host.address}/static/entries/style.css")
        assert status == 200 and "ledger-css" in css
        assert http_get(f"http://{host.address}/health/") == (200, "ok")
        # gunicorn runs under systemd on a unix socket; nginx is the only listener on port 80.
        assert run_on(host, "systemctl is-active ledger.service").strip() == "active"
        assert run_on(host, "test -S /run/ledger/ledger.sock && echo socket").strip() == "socket"
        # The env file holds the secret, readable only by the app user, and systemd loads it.
        assert run_on(host, f"stat -c '%a %U' {ENV_FILE}").strip() == "600 ledger"
        assert f'DJANGO_SECRET_KEY="{SECRET_KEY}"' in run_on(host, f"cat {ENV_FILE}")
        unit = run_on(host, "systemctl show ledger.service -p EnvironmentFiles")
        assert ENV_FILE in unit
        # The secret is not on any process's command line.
        assert SECRET_KEY not in run_on(host, "ps -eo args")


def test_data_survives_redeploy_of_head_and_local_changes(project: Project, fleet) -> None:
    for host in fleet:
        status, created = http_post_json(f"http://{host.address}/api/entries/", {"text": f"kept on {host.name}"})
        assert status == 201, created

    project.set_version("2")
    project.commit("version 2")
    project.manage("deploy", "--env", ENV, "--latest", check=True)
    for host in fleet:
        assert version_on(host) == "2"
        assert f"kept on {host.name}" in page(host)

    # --local ships uncommitted and untracked-but-not-ignored files, not ignored ones.
    project.set_version("3-uncommitted")
    project.write("entries/static/entries/extra.css", "/* untracked-css */\n")
    project.write(".gitignore", (project.root / ".gitignore").read_text() + "ignored.txt\n" if (project.root / ".gitignore").exists() else "ignored.txt\n")
    project.write("ignored.txt", "must not ship\n")
    result = project.manage("deploy", "--env", ENV, "--local", check=True)
    assert "-local" in result.stdout
    for host in fleet:
        assert version_on(host) == "3-uncommitted"
        assert f"kept on {host.name}" in page(host)
        status, css = http_get(f"http://{host.address}/static/entries/extra.css")
        assert status == 200 and "untracked-css" in css
        assert run_on(host, "test -e /home/ledger/apps/ledger/code/ignored.txt && echo yes || echo no").strip() == "no"
        # The database lives outside the code directory.
        assert run_on(host, "ls /home/ledger/apps/ledger/shared/data/").count("db.sqlite3") >= 1
    project.git("checkout", "--", ".")


def test_dry_run_changes_nothing(project: Project, fleet) -> None:
    before = [run_on(h, f"stat -c %Y {ENV_FILE}") for h in fleet]
    result = project.manage("deploy", "--env", ENV, "--latest", "--dry-run", check=True)
    assert "dry run" in result.stdout and "would change" in result.stdout
    assert [run_on(h, f"stat -c %Y {ENV_FILE}") for h in fleet] == before
    for host in fleet:
        assert version_on(host) == "3-uncommitted"


@pytest.mark.parametrize(
    "args, inventory_patch, expected",
    [
        (["--env", "prod", "--latest"], None, "unknown environment 'prod'"),
        (["--env", ENV, "--release", "v404"], None, "tag 'v404' does not exist"),
        (["--env", ENV, "--latest"], ("ssh_user=\"root\"", "ssh_usr=\"root\""), "did you mean 'ssh_user'"),
        (["--env", ENV, "--latest"], ("ssh_host=vm1.address,", "ssh_host=vm1.address, ssh_port=2,"), "cannot connect"),
    ],
    ids=["unknown-env", "missing-tag", "typo-in-inventory", "unreachable-host"],
)
def test_bad_input_gives_clear_error_and_changes_nothing(project: Project, fleet, args, inventory_patch, expected) -> None:
    inventory = project.root / "infra" / "inventory" / f"{ENV}.py"
    original = inventory.read_text()
    before = [run_on(h, f"stat -c %Y {ENV_FILE}") for h in fleet]
    try:
        if inventory_patch:
            inventory.write_text(original.replace(*inventory_patch, 1))
        result = project.manage("deploy", *args)
    finally:
        inventory.write_text(original)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    if "unknown environment" in expected:
        assert ENV in result.stderr and "sandbox" in result.stderr  # lists the environments there are
    if inventory_patch and "did you mean" in expected:
        assert f"inventory/{ENV}.py" in result.stderr  # names the file
    assert [run_on(h, f"stat -c %Y {ENV_FILE}") for h in fleet] == before
    for host in fleet:
        assert version_on(host) == "3-uncommitted"


def test_host_keys_are_recorded_on_first_use_and_a_changed_key_is_refused(project: Project, fleet, tmp_path) -> None:
    vm = fleet[0]
    known_hosts = tmp_path / "known_hosts"
    inventory = f'''
from djaploy.config import HostConfig
hosts = [HostConfig("tofu", ssh_host="{vm.address}", ssh_key="{vm.key_path}",
                    ssh_known_hosts_file="{known_hosts}", domains=["{vm.address}"])]
'''
    project.write("infra/inventory/tofu.py", inventory)
    first = project.manage("configureserver", "--env", "tofu", "--dry-run")
    assert first.returncode == 0, first.stderr
    recorded = known_hosts.read_text()
    assert vm.address in recorded
    # Replace the recorded key with another host's key of the same type: it must be refused.
    key_type = recorded.split()[1]
    other_key = next(
        line.split(None, 1)[1]
        for line in open(fleet[1].known_hosts_path)
        if line.startswith(f"{fleet[1].address} ") and f" {key_type} " in line
    )
    assert other_key.split()[1] != recorded.split()[2]
    known_hosts.write_text(f"{vm.address} {other_key}")
    second = project.manage("configureserver", "--env", "tofu", "--dry-run")
    assert second.returncode != 0
    assert "cannot connect" in second.stderr and "tofu" in second.stderr
