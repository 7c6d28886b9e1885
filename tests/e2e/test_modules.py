"""Custom modules and deploy_files on a real host: the example's nightly timer runs the live
release with its environment, hooks run in the documented order, deploy_files land rendered
with the right owner and mode and reload only what changed, and bad modules or templates give
a clear message without touching the host.

One sandbox host (the first one), driven through manage.py like a user would.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import SANDBOX_NAME, Project, http_get, http_post_json

ENV = "mods"
PROBE_DIR = "/var/lib/ledger-probe"

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[0]
hosts = [HostConfig("web", ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=[vm.address], env_vars={"DJANGO_ALLOWED_HOSTS": vm.address, "PROBE_GREETING": "hello"})]
'''

# Two probe modules around the example's own ones: each hook appends "<module>.<hook>" on the host.
PROBE_MODULES = f'''
from djaploy import shell
from djaploy.modules.base import HOOKS, BaseModule

LOG = "{PROBE_DIR}/hooks.log"


class Probe(BaseModule):
    def record(self, ctx, hook):
        ctx.plan.run(f"{{self.name}}: {{hook}}", f"mkdir -p {PROBE_DIR} && echo {{shell.q(self.name + '.' + hook)}} >> {{LOG}}")


for _hook in HOOKS:
    setattr(Probe, _hook, lambda self, ctx, _hook=_hook: self.record(ctx, _hook))


class First(Probe):
    name = "first"


class Last(Probe):
    name = "last"


class Broken(BaseModule):
    name = "broken"

    def prepare_release(self, ctx):
        options = {{"retries": "3"}}
        return int(options["retries"]) / 0
'''

OPTIONS = '''    module_options={"deploy_files": {
        "reload": {"/etc/ledger-probe/*.conf": "ledger-probe.service"},
        "secret_files": ["/etc/ledger-probe/token"],
    }},
)
'''

PROBE_CONF = "greeting={{ env_vars.PROBE_GREETING }}\nhost={{ host }} env={{ env }}\ndomains={{ domains | join(',') }}\ndata={{ paths.data_dir }}\n"
PROBE_UNIT = """[Unit]
Description=deploy_files probe
[Service]
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'echo reload >> /var/lib/ledger-probe/reloads'
"""
DEPLOY_FILES = {
    "etc/ledger-probe/probe.conf.j2": PROBE_CONF,
    "etc/ledger-probe/token": "not-a-real-token\n",
    "etc/systemd/system/ledger-probe.service": PROBE_UNIT,
    "etc/nginx/conf.d/ledger-probe.conf": "# probe v1\n",
    "home/ledger/probe/release.txt.j2": "{{ release }}\n",
}


def remote(host, command: str, check: bool = True) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(host, command)
    if check:
        assert result.returncode == 0, f"{command!r}: {result.stdout}{result.stderr}"
    return result.stdout


def write_deploy_file(project: Project, relative: str, content: str) -> None:
    project.write(f"infra/deploy_files/{ENV}/{relative}", content)


def configure(project: Project) -> None:
    """The example's config with the probes around its modules, and deploy_files options."""
    path = project.root / "infra" / "config.py"
    text = path.read_text()
    for anchor, replacement in [
        ('        "djaploy.modules.core",\n', '        "infra.modules.probe.First",\n        "djaploy.modules.core",\n'),
        ('        "infra.modules.nightly.NightlyReport",\n', '        "infra.modules.nightly.NightlyReport",\n        "infra.modules.probe.Last",\n'),
        (")\n", OPTIONS),
    ]:
        assert text.count(anchor) == 1, anchor
        text = text.replace(anchor, replacement)
    path.write_text(text)
    project.write("infra/modules/probe.py", PROBE_MODULES)
    project.write(f"infra/inventory/{ENV}.py", INVENTORY)
    for relative, content in DEPLOY_FILES.items():
        write_deploy_file(project, relative, content)
    (project.root / "infra" / "deploy_files" / ENV / "usr/local/bin").mkdir(parents=True)
    tool = project.root / "infra" / "deploy_files" / ENV / "usr/local/bin/ledger-probe-tool"
    tool.write_text("#!/bin/sh\necho probe tool\n")
    tool.chmod(0o755)


@pytest.fixture(scope="module")
def host(project: Project, sandbox_hosts):
    vm = sandbox_hosts[0]
    configure(project)
    project.commit("modules inventory and probes")
    project.manage("configureserver", "--env", ENV, check=True)
    project.manage("deploy", "--env", ENV, "--release", "v1", check=True)
    return vm


def hooks_log(host) -> list[str]:
    return remote(host, f"cat {PROBE_DIR}/hooks.log").split()


def test_hooks_run_in_the_documented_order_module_by_module(host) -> None:
    deploy = ["prepare_data", "prepare_release", "publish", "route_traffic", "verify"]
    expected = ["first.configure_server", "last.configure_server"]
    expected += [f"{module}.{hook}" for hook in deploy for module in ("first", "last")]
    assert hooks_log(host)[: len(expected)] == expected


def test_the_example_nightly_timer_runs_the_live_release_with_its_environment(project: Project, host) -> None:
    assert remote(host, "systemctl is-enabled ledger-nightly.timer").strip() == "enabled"
    assert remote(host, "systemctl is-active ledger-nightly.timer").strip() == "active"
    unit = remote(host, "cat /etc/systemd/system/ledger-nightly.service")
    code = "/home/ledger/apps/ledger/code"
    assert f"EnvironmentFile={code}/.djaploy-env" in unit and f"ExecStart={code}/.djaploy-venv/bin/python" in unit
    assert "OnCalendar=*-*-* 03:00:00" in remote(host, "systemctl cat ledger-nightly.timer")

    for text in ("first", "second"):
        status, created = http_post_json(f"http://{host.address}/api/entries/", {"text": text})
        assert status == 201, created
    # The host may hold rows from other tests: count what the app itself reports.
    status, body = http_get(f"http://{host.address}/api/entries/")
    assert status == 200
    rows = len(json.loads(body))
    assert rows >= 2
    remote(host, "systemctl start ledger-nightly.service")  # a oneshot: returns when the job has finished
    assert remote(host, "systemctl show -p Result --value ledger-nightly.service").strip() == "success"
    assert remote(host, "systemctl show -p User --value ledger-nightly.service").strip() == "ledger"
    journal = remote(host, "journalctl -u ledger-nightly.service -o cat --no-pager")
    # The release's own environment: its DJAPLOY_RELEASE, its database in DJAPLOY_DATA_DIR, its secret key.
    assert re.search(rf"ledger report: release v1, {rows} entries, latest \d{{4}}-\d\d-\d\d", journal), journal


def stat(host, path: str) -> str:
    return remote(host, f"stat -c '%U %G %a' {path}").strip()


def test_deploy_files_land_rendered_with_owner_and_mode(host) -> None:
    assert remote(host, "cat /etc/ledger-probe/probe.conf") == (
        f"greeting=hello\nhost=web env={ENV}\ndomains={host.address}\ndata=/home/ledger/apps/ledger/shared/data\n"
    )
    assert stat(host, "/etc/ledger-probe/probe.conf") == "root root 644"
    assert remote(host, "test -e /etc/ledger-probe/probe.conf.j2 || echo absent").strip() == "absent"
    assert stat(host, "/etc/ledger-probe/token") == "root root 600"
    assert stat(host, "/usr/local/bin/ledger-probe-tool") == "root root 755"
    assert remote(host, "/usr/local/bin/ledger-probe-tool").strip() == "probe tool"
    assert remote(host, "cat /home/ledger/probe/release.txt").strip() == "v1"
    assert stat(host, "/home/ledger/probe/release.txt") == "ledger ledger 644"
    assert stat(host, "/home/ledger/probe") == "ledger ledger 755"
    assert stat(host, "/etc/ledger-probe") == "root root 755"


def probe_state(host) -> dict[str, str]:
    """What a reload or restart would change: reload count, probe invocation, nginx workers."""
    return {
        "reloads": remote(host, f"cat {PROBE_DIR}/reloads 2>/dev/null | wc -l").strip(),
        "invocation": remote(host, "systemctl show -p InvocationID --value ledger-probe.service").strip(),
        "nginx_workers": " ".join(sorted(remote(host, "cat /proc/$(cat /run/nginx.pid)/task/*/children").split())),
    }


def test_a_changed_file_reloads_its_service_and_an_unchanged_one_does_not(project: Project, host) -> None:
    remote(host, "systemctl start ledger-probe.service")  # a new unit file is installed, not started
    before = probe_state(host)
    assert before["invocation"] and before["nginx_workers"]

    project.manage("deploy", "--env", ENV, "--latest", check=True)
    assert probe_state(host) == before  # nothing in deploy_files changed (release.txt reloads nothing)

    write_deploy_file(project, "etc/ledger-probe/probe.conf.j2", PROBE_CONF + "threads=4\n")
    result = project.manage("deploy", "--env", ENV, "--latest", check=True)
    assert "deploy_files: reload ledger-probe.service" in result.stdout
    after = probe_state(host)
    assert int(after["reloads"]) == int(before["reloads"]) + 1
    assert (after["invocation"], after["nginx_workers"]) == (before["invocation"], before["nginx_workers"])

    write_deploy_file(project, "etc/systemd/system/ledger-probe.service", PROBE_UNIT + "Environment=PROBE=2\n")
    write_deploy_file(project, "etc/nginx/conf.d/ledger-probe.conf", "# probe v2\n")
    project.manage("deploy", "--env", ENV, "--latest", check=True)
    last = probe_state(host)
    assert last["reloads"] == after["reloads"]  # probe.conf did not change this time
    assert last["invocation"] != after["invocation"]  # daemon-reload + restart of the changed unit
    assert "PROBE=2" in remote(host, "systemctl show -p Environment --value ledger-probe.service")
    assert last["nginx_workers"] != after["nginx_workers"]  # nginx -t, then a graceful reload


def edit_config(project: Project, old: str, new: str) -> str:
    path = project.root / "infra" / "config.py"
    original = path.read_text()
    assert original.count(old) == 1
    path.write_text(original.replace(old, new))
    return original


@pytest.mark.parametrize(
    "module, expected",
    [
        ("infra.modules.nosuch.Nightly", "unknown module 'infra.modules.nosuch.Nightly'"),
        ("entries.models.Entry", "'entries.models.Entry' is not a BaseModule subclass"),
        ("infra.modules.exploding.Module", ("importing 'infra.modules.exploding.Module' failed: RuntimeError: "
                                            "exploding at import (at infra/modules/exploding.py:2)")),
    ],
    ids=["unknown", "not-a-module", "raises-at-import"],
)
def test_a_bad_module_path_names_config_py_and_the_field_and_changes_nothing(project: Project, host, module: str,
                                                                            expected: str) -> None:
    project.write("infra/modules/exploding.py", "import os\nraise RuntimeError('exploding at import')\n")
    before = hooks_log(host)
    original = edit_config(project, '"infra.modules.probe.Last",', f'"infra.modules.probe.Last", "{module}",')
    try:
        result = project.manage("deploy", "--env", ENV, "--latest")
    finally:
        (project.root / "infra" / "config.py").write_text(original)
    assert result.returncode != 0
    assert re.search(r"infra/config\.py:\d+: DjaployConfig\.modules: ", result.stderr), result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "connected to" not in result.stdout
    assert hooks_log(host) == before


def test_a_bug_in_a_hook_names_the_module_and_the_hook(project: Project, host) -> None:
    before = hooks_log(host)
    original = edit_config(project, '"infra.modules.probe.Last",', '"infra.modules.probe.Last", "infra.modules.probe.Broken",')
    try:
        result = project.manage("deploy", "--env", ENV, "--latest", "--dry-run")
    finally:
        (project.root / "infra" / "config.py").write_text(original)
    assert result.returncode != 0
    assert ("[web] module 'broken' (infra.modules.probe.Broken) failed in its prepare_release hook: "
            "ZeroDivisionError: division by zero (at infra/modules/probe.py:") in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert hooks_log(host) == before  # a dry run: the probes' commands did not run


def test_a_bad_template_stops_the_deploy_before_any_connection(project: Project, host) -> None:
    write_deploy_file(project, "etc/ledger-probe/broken.conf.j2", "ok={{ host }}\nport={{ port }}\n")
    try:
        result = project.manage("deploy", "--env", ENV, "--latest")
    finally:
        (project.root / "infra" / "deploy_files" / ENV / "etc/ledger-probe/broken.conf.j2").unlink()
    assert result.returncode != 0
    assert f"infra/deploy_files/{ENV}/etc/ledger-probe/broken.conf.j2:2: UndefinedError: 'port' is undefined" in result.stderr
    assert "connected to" not in result.stdout
    assert remote(host, "test -e /etc/ledger-probe/broken.conf || echo absent").strip() == "absent"
