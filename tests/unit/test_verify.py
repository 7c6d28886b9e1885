"""verify, system checks and remote commands: the pure parts, plus real local subprocesses where
the logic is about what a process sees (settings as deployed, shell quoting, manage.py check)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from djaploy import inventory, remote
from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.errors import DjaployError
from djaploy.inventory import resolve_targets
from djaploy.layout import AppPaths, AppService
from djaploy.verify import WorkingTree
from djaploy.verify.deployed_settings import deployed_environment, probe_findings, probe_settings
from djaploy.verify.findings import Expected, host_allowed, requirement_findings, settings_findings
from djaploy.verify.host_facts import parse_facts, remote_findings

PATHS = AppPaths("ledger", "ledger")
SECRET = "s3cr3t-value-" + "q" * 30


def target(**host: object) -> Target:
    config = DjaployConfig(project_name="ledger", secrets={"DJANGO_SECRET_KEY": "env:LEDGER_KEY"},
                           env_vars={"DJANGO_DEBUG": "0"})
    host.setdefault("domains", ["ledger.example.com"])
    hosts = [HostConfig("web1", ssh_host="203.0.113.10", **host)]
    return resolve_targets(config, hosts, "production", environ={"LEDGER_KEY": SECRET}, source_file="inventory/production.py")[0]


def expected(domains: tuple[str, ...] = ("ledger.example.com",)) -> Expected:
    return Expected("production", PATHS, domains, frozenset({"DJANGO_SECRET_KEY"}), frozenset({"DJANGO_DEBUG"}))


GOOD = {
    "DEBUG": False,
    "ALLOWED_HOSTS": ["ledger.example.com"],
    "STATIC_ROOT": PATHS.static_root,
    "MEDIA_ROOT": PATHS.media_root,
    "SQLITE": [PATHS.data_dir + "/db.sqlite3"],
    "SECRET_KEY_FROM": ["DJANGO_SECRET_KEY"],
}


def ids(findings) -> list[str]:
    return sorted(f.id for f in findings)


# --- ALLOWED_HOSTS coverage: Django's own rules ---------------------------------------------------


@pytest.mark.parametrize(("domain", "allowed", "covered"), [
    ("ledger.example.com", ["ledger.example.com"], True),
    ("LEDGER.example.com", ["ledger.example.com"], True),
    ("ledger.example.com", [".example.com"], True),
    ("example.com", [".example.com"], True),
    ("ledger.example.com", ["*"], True),
    ("10.231.1.2", ["10.231.1.2"], True),
    ("*.example.com", [".example.com"], True),
    ("ledger.example.com", ["example.com"], False),
    ("ledger.example.com", [], False),
    ("*.example.com", ["www.example.com"], False),
    ("evil-example.com", [".example.com"], False),
])
def test_host_allowed_follows_django_validate_host(domain: str, allowed: list[str], covered: bool) -> None:
    assert host_allowed(domain, allowed) is covered


# --- settings findings ----------------------------------------------------------------------------


def test_good_settings_have_no_findings() -> None:
    assert settings_findings(GOOD, expected(), "production/web1", matches_local_key=False) == []


@pytest.mark.parametrize(("change", "finding"), [
    ({"DEBUG": True}, "E007"),
    ({"STATIC_ROOT": "/srv/app/staticfiles"}, "E005"),
    ({"STATIC_ROOT": None}, "E005"),
    ({"ALLOWED_HOSTS": ["other.example.com"]}, "E006"),
    ({"MEDIA_ROOT": "/srv/app/media"}, "W003"),
    ({"SQLITE": ["/home/ledger/apps/ledger/current/db.sqlite3"]}, "W004"),
])
def test_each_misconfiguration_is_one_finding_with_a_fix(change: dict, finding: str) -> None:
    found = settings_findings({**GOOD, **change}, expected(), "production/web1", matches_local_key=False)
    assert ids(found) == [finding]
    assert found[0].where == "production/web1" and found[0].hint


def test_static_root_compares_normalized_paths() -> None:
    values = {**GOOD, "STATIC_ROOT": PATHS.static_root + "/"}
    assert settings_findings(values, expected(), "w", matches_local_key=False) == []


def test_every_uncovered_domain_is_named() -> None:
    found = settings_findings(GOOD, expected(("ledger.example.com", "www.example.com", "api.example.com")), "w",
                              matches_local_key=False)
    assert ids(found) == ["E006", "E006"]
    assert "www.example.com" in found[0].message and "api.example.com" in found[1].message
    assert "'www.example.com'" in found[0].hint


@pytest.mark.parametrize(("sources", "matches_local", "finding"), [
    (["DJANGO_SECRET_KEY"], True, []),  # from secrets: fine even when the dev key is the same value
    (["DJANGO_DEBUG"], False, ["W005"]),  # from env_vars: written in the repository
    ([], True, ["E008"]),  # hard-coded: the same with and without DJAPLOY_ENV
    ([], False, ["W005"]),  # not from any variable, but differs from the dev value
    ([], None, ["W005"]),  # dev value unknown
])
def test_secret_key_must_come_from_the_environment(sources, matches_local, finding) -> None:
    found = settings_findings({**GOOD, "SECRET_KEY_FROM": sources}, expected(), "w", matches_local_key=matches_local)
    assert ids(found) == finding


def test_probe_errors_name_the_failure_and_hint_at_djaploy_on_servers() -> None:
    error = "ModuleNotFoundError: No module named 'djaploy'"
    found = probe_findings({"settings_error": error, "wsgi_error": error}, expected(), "w", None)
    assert ids(found) == ["E004"]  # the same failure once
    assert "find_spec('djaploy')" in found[0].hint and error in found[0].message


def test_requirement_findings() -> None:
    assert requirement_findings({"django", "gunicorn"}, "requirements.txt") == []
    assert ids(requirement_findings({"django"}, "requirements.txt")) == ["E003"]
    assert ids(requirement_findings({"django", "gunicorn", "djaploy"}, "requirements.txt")) == ["W006"]


def test_dependency_names_follow_requirement_includes(tmp_path: Path) -> None:
    from djaploy.project import Project
    from djaploy.verify import dependency_names

    (tmp_path / "requirements.txt").write_text("Django>=4.2  # web\n-r requirements/server.txt\n")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "server.txt").write_text("gunicorn[gevent]==23.0.0\n")
    project = Project(git_root=tmp_path, manage_py="manage.py", wsgi_application="site.wsgi:application")
    names, source = dependency_names(project, DjaployConfig(project_name="ledger"))
    assert {"django", "gunicorn"} <= names and "requirements.txt" in source
    assert WorkingTree(tmp_path).read("missing.txt") is None


# --- settings as deployed: a real fresh process ---------------------------------------------------

SETTINGS = '''
import importlib.util, os
from pathlib import Path
BASE_DIR = Path(__file__).resolve().parent.parent
DEPLOYED = bool(os.environ.get("DJAPLOY_ENV"))
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"] if DEPLOYED else "dev-key-" + "x" * 40
DEBUG = os.environ.get("DJANGO_DEBUG", "0" if DEPLOYED else "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")
INSTALLED_APPS = ["django.contrib.contenttypes"]
{djaploy_app}
ROOT_URLCONF = "site_pkg.urls"
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DJAPLOY_STATIC_ROOT", BASE_DIR / "staticfiles")
MEDIA_ROOT = os.environ.get("DJAPLOY_MEDIA_ROOT", BASE_DIR / "media")
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
                         "NAME": Path(os.environ.get("DJAPLOY_DATA_DIR", BASE_DIR)) / "db.sqlite3"}}}}
'''
GUARDED = 'if importlib.util.find_spec("djaploy"): INSTALLED_APPS.append("djaploy")'


def make_site(root: Path, djaploy_app: str = GUARDED) -> Path:
    package = root / "site_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(SETTINGS.format(djaploy_app=djaploy_app))
    (package / "urls.py").write_text("urlpatterns = []\n")
    (package / "wsgi.py").write_text(
        "import os\nfrom django.core.wsgi import get_wsgi_application\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_pkg.settings')\napplication = get_wsgi_application()\n")
    (root / "manage.py").write_text(
        "import os, sys\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_pkg.settings')\n"
        "from django.core.management import execute_from_command_line\nexecute_from_command_line(sys.argv)\n")
    return root


def test_settings_are_read_with_the_host_environment_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(tmp_path / "site")
    monkeypatch.setenv("DJANGO_DEBUG", "1")  # the deployer's shell: servers do not have it
    host = target(env_vars={"DJANGO_ALLOWED_HOSTS": "ledger.example.com"})
    environment = deployed_environment("production", host)
    assert environment["DJAPLOY_STATIC_ROOT"] == PATHS.static_root and environment["DJANGO_SECRET_KEY"] == SECRET
    probe = probe_settings(site, "site_pkg.wsgi:application", environment, "nonce", hide_djaploy=True)
    assert "settings_error" not in probe and "wsgi_error" not in probe, probe
    values = probe["settings"]
    assert values["DEBUG"] is False and values["ALLOWED_HOSTS"] == ["ledger.example.com"]
    assert values["STATIC_ROOT"] == PATHS.static_root and values["SQLITE"] == [PATHS.data_dir + "/db.sqlite3"]
    assert values["SECRET_KEY_FROM"] == ["DJANGO_SECRET_KEY"]
    assert SECRET not in json.dumps(probe)
    assert probe_findings(probe, expected(), "w", None) == []


def test_settings_that_need_djaploy_on_the_server_fail_to_load(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", djaploy_app='INSTALLED_APPS.append("djaploy")')
    environment = deployed_environment("production", target())
    probe = probe_settings(site, "site_pkg.wsgi:application", environment, "nonce", hide_djaploy=True)
    found = probe_findings(probe, expected(), "w", None)
    assert "E004" in ids(found)
    assert "No module named 'djaploy'" in found[0].message


def test_manage_py_check_says_nothing_without_an_infra_folder(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=site, env=env, check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout and "djaploy" not in result.stdout + result.stderr
    # An explicit DJAPLOY_CONFIG_DIR that does not exist is worth a warning, not a failure.
    settings = site / "site_pkg" / "settings.py"
    settings.write_text(settings.read_text() + "DJAPLOY_CONFIG_DIR = BASE_DIR / 'deploy'\n")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--tag", "djaploy"], cwd=site, env=env, check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "djaploy.W001" in result.stderr + result.stdout


# --- remote facts ---------------------------------------------------------------------------------

DEBIAN = {"uid": "0", "os_id": "debian", "os_like": "", "os_name": "Debian GNU/Linux 12 (bookworm)", "python": "",
          "venv": "no", "python3": "3.11", "python3_apt": "3.11.2-1+b1"}


def test_a_fresh_debian_with_the_configured_python_passes() -> None:
    assert remote_findings(DEBIAN, target(), "w") == []
    installed = {**DEBIAN, "python": "/usr/bin/python3.11", "venv": "yes"}
    assert remote_findings(installed, target(), "w") == []


@pytest.mark.parametrize(("facts", "finding"), [
    ({"uid": "1000"}, "E010"),
    ({"os_id": "centos", "os_like": "rhel fedora", "os_name": "CentOS Stream 9"}, "E011"),
    ({"os_id": "linuxmint", "os_like": "ubuntu debian", "os_name": "Linux Mint 21"}, "W007"),
    ({"python3": "3.12", "python3_apt": "3.12.3-0ubuntu1"}, "E012"),
    ({"python3": "", "python3_apt": ""}, "E012"),
    ({"python": "/usr/local/bin/python3.11", "venv": "no", "python3": "3.12"}, "E012"),
])
def test_host_facts_findings(facts: dict, finding: str) -> None:
    # python_provider="system": only the OS's own package can be missing (the other providers bring theirs)
    assert ids(remote_findings({**DEBIAN, **facts}, target(python_provider="system"), "w")) == [finding]


def test_python_mismatch_says_which_version_to_configure() -> None:
    found = remote_findings({**DEBIAN, "os_id": "ubuntu", "python3": "", "python3_apt": "3.12.3-0ubuntu1"},
                            target(python_provider="system"), "w")
    assert "3.12" in found[0].message and "python_version='3.12'" in found[0].hint


TRIXIE = {**DEBIAN, "os_name": "Debian GNU/Linux 13 (trixie)", "python3": "3.13", "python3_apt": "3.13.5-1"}


def test_debian_13_needs_python_version_3_13_and_says_so() -> None:
    assert remote_findings(TRIXIE, target(), "w") == []  # "auto": Debian 13 has no 3.11, so uv brings it
    found = remote_findings(TRIXIE, replace(target(), python_provider="system"), "w")  # python_version: 3.11
    assert ids(found) == ["E012"]
    assert "python3.11 (python_version) is not on the host and its python3 is 3.13" in found[0].message
    assert "python_version='3.13'" in found[0].hint
    assert remote_findings({**TRIXIE, "python": "/usr/bin/python3.13", "venv": "yes"},
                           replace(target(), python_version="3.13"), "w") == []


def test_parse_facts_keeps_equals_signs_in_values() -> None:
    assert parse_facts("uid=0\nos_name=A=B\nnoise\n") == {"uid": "0", "os_name": "A=B"}


# --- remote commands ------------------------------------------------------------------------------


def test_ssh_argv_uses_the_hosts_connection_settings_and_no_secret(tmp_path: Path) -> None:
    key, known = tmp_path / "id key", tmp_path / "known hosts"
    host = target(ssh_port=2222, ssh_user="deployer", ssh_key=str(key), ssh_known_hosts_file=str(known))
    argv = remote.ssh_argv(host, "echo hi")
    assert argv[0] == "ssh" and argv[-3:] == ["--", "203.0.113.10", "echo hi"]
    assert ["-p", "2222"] == argv[1:3] and ["-l", "deployer"] == argv[3:5]
    assert ["-i", str(key)] == argv[argv.index("-i"):argv.index("-i") + 2]
    assert f'UserKnownHostsFile="{known}"' in argv and "StrictHostKeyChecking=accept-new" in argv
    assert "-T" in argv and "BatchMode=yes" in argv and "-t" not in argv
    interactive = remote.ssh_argv(host, "echo hi", tty=True)
    assert "-t" in interactive and "BatchMode=yes" not in interactive
    assert not any(SECRET in word for word in argv + interactive)


def test_live_code_follows_the_deployed_strategy() -> None:
    in_place = remote.live_from_state(PATHS, {"strategy": "in_place", "current": "v1"}, "w", "e")
    assert in_place.service.code_link == PATHS.code_dir
    live = remote.live_from_state(PATHS, {"strategy": "zero_downtime", "current": "v2"}, "w", "e")
    assert (live.service.code_link, live.release, live.service.service) == (PATHS.current, "v2", "ledger.service")
    state = {"strategy": "bluegreen", "active": "green", "slots": {"green": {"release": "v3"}}}
    live = remote.live_from_state(PATHS, state, "w", "e")
    assert (live.service.code_link, live.release) == (PATHS.slot_dir("green"), "v3")
    assert live.service.service == "ledger-green.service"
    with pytest.raises(DjaployError, match="nothing is deployed"):
        remote.live_from_state(PATHS, {}, "w", "e")
    with pytest.raises(DjaployError, match="manage.py activate --env e"):
        remote.live_from_state(PATHS, {"strategy": "bluegreen", "active": None, "slots": {}}, "w", "e")


def test_manage_command_passes_every_argument_through_unchanged(tmp_path: Path) -> None:
    """Run the exact remote command with a local sh: a fake release prints what manage.py got."""
    code = tmp_path / "code dir"
    (code / "site").mkdir(parents=True)
    (code / ".djaploy-env").write_text('DJAPLOY_ENV="production"\nDJANGO_SECRET_KEY="from $file"\n'.replace("$", "\\$"))
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (code / ".djaploy-venv").symlink_to(venv)
    (code / "site" / "manage.py").write_text(
        "import json, os, sys\nprint(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(), "
        "'env': os.environ.get('DJAPLOY_ENV'), 'key': os.environ.get('DJANGO_SECRET_KEY')}))\n")
    me = target(ssh_user="ledger")  # ssh user == app user: no sudo layer, so it runs here
    live = remote.Live("zero_downtime", AppService("ledger", "/run/ledger/ledger.sock", str(code)), "v1")
    injected = tmp_path / "injected"
    snippet = f"print('a b'); x = \"$HOME\" `id`; echo $(whoami) > {injected}"
    tricky = ["shell", "-c", snippet, "--", "*", "", "ünï", "a;b|c&"]
    command = remote.manage_command(me, live, "site/manage.py", tricky)
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    seen = json.loads(result.stdout)
    assert seen == {"argv": tricky, "cwd": str(code / "site"), "env": "production", "key": "from $file"}
    assert not injected.exists()


def test_app_user_layer_quotes_the_inner_command_as_one_word() -> None:
    inner = "set -a && . '/a b/.djaploy-env' && exec python manage.py shell -c 'print(1)'"
    for ssh_user in ("root", "deployer"):
        wrapped = remote.as_app_user(target(ssh_user=ssh_user), inner)
        assert shlex.split(wrapped) == ["sudo", "-n", "-H", "-u", "ledger", "--", "sh", "-c", inner]
    assert remote.privileged(target(ssh_user="root"), "journalctl -u x") == "journalctl -u x"
    assert shlex.split(remote.privileged(target(ssh_user="deployer"), "cat /a")) == ["sudo", "-n", "sh", "-c", "cat /a"]


def test_journal_command() -> None:
    units = remote.live_from_state(PATHS, {"strategy": "bluegreen", "active": "blue", "slots": {"blue": {}}},
                                   "web1", "production").journal_units
    assert remote.journal_command(target(ssh_user="root"), units, lines=50, follow=False) == \
        "journalctl -u ledger-blue.service --no-pager -n 50"
    followed = remote.journal_command(target(ssh_user="deployer"), units, lines=5, follow=True)
    assert shlex.split(followed)[-1] == "journalctl -u ledger-blue.service --no-pager -n 5 -f"


def test_zero_downtime_journal_reads_both_lanes_and_remote_runs_in_current() -> None:
    """The next deploy serves from the other lane: a followed journal must not go quiet then."""
    live = remote.live_from_state(PATHS, {"strategy": "zero_downtime", "current": "v2", "lane": "b"}, "web1", "production")
    assert live.service.name == "ledger-b" and live.service.code_link.endswith("/apps/ledger/current")
    assert remote.journal_command(target(ssh_user="root"), live.journal_units, lines=5, follow=False) == \
        "journalctl -u ledger-a.service -u ledger-b.service --no-pager -n 5"
    legacy = remote.live_from_state(PATHS, {"strategy": "zero_downtime", "current": "v1"}, "web1", "production")
    assert legacy.journal_units == ("ledger.service",)  # a host last deployed before lanes


def test_pick_hosts() -> None:
    hosts = [target(), target()]
    assert remote.pick_hosts(hosts, "production", None) == hosts
    assert remote.pick_hosts(hosts, "production", "web1") == hosts
    with pytest.raises(DjaployError, match="no host 'web9'; its hosts: web1"):
        remote.pick_hosts(hosts, "production", "web9")


def test_placeholder_environment_lets_commands_load_hosts_without_secrets(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "config.py").write_text(
        "from djaploy.config import DjaployConfig\n"
        "config = DjaployConfig(project_name='ledger', secrets={'K': 'env:DJAPLOY_TEST_SURELY_UNSET'})\n")
    (tmp_path / "inventory" / "prod.py").write_text(
        "from djaploy.config import HostConfig\nhosts = [HostConfig('web1', ssh_host='203.0.113.10')]\n")
    _, targets = inventory.load_targets_without_secrets(tmp_path, "prod")
    assert targets[0].secrets == {"K": inventory._AnyVariable.PLACEHOLDER}


def test_media_on_the_local_disk_is_a_finding_only_with_more_than_one_web_host_on_one_database() -> None:
    from dataclasses import replace

    local = {**GOOD, "MEDIA_STORAGE": "django.core.files.storage.FileSystemStorage",
             "DEFAULT_ENGINE": "django.db.backends.postgresql"}
    assert settings_findings(local, expected(), "production/web1", matches_local_key=False) == []
    fleet = replace(expected(), web_hosts=2)
    found = settings_findings(local, fleet, "production/web1", matches_local_key=False)
    assert ids(found) == ["W009"] and "2 web hosts" in found[0].message and "django-storages" in found[0].hint
    in_a_bucket = {**local, "MEDIA_STORAGE": "storages.backends.s3.S3Storage"}
    assert settings_findings(in_a_bucket, fleet, "production/web1", matches_local_key=False) == []
    copies = {**local, "DEFAULT_ENGINE": "django.db.backends.sqlite3"}  # each host its own SQLite: its own media
    assert settings_findings(copies, fleet, "production/web1", matches_local_key=False) == []
