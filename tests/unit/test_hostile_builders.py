"""Module command builders run in a real `sh` with hostile values for every user-controlled
string that reaches them (module options, file names, unit names, domains): no injected command
runs, and each value reaches its program byte for byte (tests/unit/recording_shell.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from djaploy.deploy_files import DeployFile, reload_commands
from djaploy.layout import AppPaths
from djaploy.modules.certs.commands import certonly_command, renew_command
from djaploy.modules.certs.options import CertsOptions
from djaploy.modules.litestream.commands import install_command
from djaploy.modules.litestream.options import Replica, Settings
from djaploy.system_services import retire_units_command
from tests.unit.recording_shell import HOSTILE, RecordingShell

PATHS = AppPaths("shop", "shop")


@pytest.fixture
def rsh(tmp_path: Path) -> RecordingShell:
    return RecordingShell(tmp_path, programs=("systemctl", "nginx", "certbot", "curl", "dpkg", "tar", "sha256sum"))


@pytest.mark.parametrize("value", HOSTILE)
def test_certbot_gets_the_email_server_and_domains_intact(rsh, value: str) -> None:
    options = CertsOptions(server=f"https://acme.example/{value}", email=value, domains=(value, "shop.example.com"),
                           ca_pem=None)
    for command in (certonly_command(PATHS, options), renew_command(PATHS, options, force=True)):
        run = rsh.run(command)
        assert rsh.injected() == [], command
        (argv,) = run.argv_of("certbot")
        assert argv[argv.index("--server") + 1] == options.server
        if argv[0] == "certonly":
            assert argv[argv.index("-m") + 1] == value
            assert [argv[i + 1] for i, word in enumerate(argv) if word == "-d"] == [value, "shop.example.com"]


@pytest.mark.parametrize("value", HOSTILE)
def test_deploy_files_reloads_the_units_it_names_intact(rsh, value: str) -> None:
    changed = [DeployFile(Path("x"), f"/etc/systemd/system/{value}.service", "root", "644", reload=(f"{value}.timer",)),
               DeployFile(Path("y"), "/etc/nginx/conf.d/extra.conf", "root", "644")]
    for _, command in reload_commands(changed):
        rsh.run(command)
        assert rsh.injected() == [], command
    calls = []
    for _, command in reload_commands(changed):
        calls += rsh.run(command).argv_of("systemctl")
    assert ["try-restart", f"{value}.service"] in calls
    assert ["try-reload-or-restart", f"{value}.timer"] in calls
    assert ["reload", "nginx"] in calls


def test_retiring_units_quotes_their_names(rsh, tmp_path: Path) -> None:
    run = rsh.run(retire_units_command(PATHS.all_services()))
    assert run.returncode == 0, run.stderr
    assert rsh.injected() == []
    assert run.argv_of("systemctl") == []  # no unit file exists here: nothing to retire


@pytest.mark.parametrize("value", HOSTILE)
def test_litestream_install_from_a_url_fetches_exactly_that_url(rsh, value: str) -> None:
    settings = Settings(db_name="db.sqlite3", replica=Replica(type="file", path="/backups"),
                        binary_url=f"https://example.com/{value}.tar.gz", sha256="0" * 64)
    command = install_command(settings).replace("/opt/litestream", str(rsh.root / "opt"))
    rsh.answers({"*": [(200, "")]})
    rsh.run(command)
    assert rsh.injected() == []
    urls = [argv[-1] for argv in rsh.run(command).argv_of("curl")]
    assert urls == [settings.binary_url]
