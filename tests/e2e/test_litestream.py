"""Litestream end to end: rows written through the web app reach each replica type (a folder on
the host, S3 on a real S3-compatible server, SFTP to the second sandbox VPS); the database is
deleted and `restore` brings every row back; a database with data is never replaced without
--force, nor sent to a destination that holds another backup; a rebuilt host restores before
it migrates.

The app runs on the first sandbox host. moto_server (the S3 server Litestream's own tests use)
listens on this machine at the host end of that VPS's link.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from djaploy.layout import AppPaths
from djaploy.modules.litestream.commands import litestream_command
from djaploy.modules.litestream.files import LitestreamPaths
from tests.e2e.conftest import SANDBOX_NAME, Project, http_get, http_post_json
from tests.e2e.moto import moto_server
from tests.e2e.moto import s3_client as moto_s3_client

ENV = "replicated"
PATHS = LitestreamPaths(AppPaths(app_name="ledger", app_user="ledger"), "db.sqlite3")
DB = PATHS.db
FILE_REPLICA = "/var/backups/ledger-litestream"
SFTP_REPLICA = "/var/backups/ledger-sftp-replica"
BUCKET, S3_PREFIX = "ledger-backups", "ledger/db"
S3_KEY_ID, S3_SECRET = "AKIAE2ELITESTREAM000", "e2e-s3-secret-" + "x" * 26
MOTO_PORT = 5000

CONFIG = '''
import json
from pathlib import Path

from djaploy.config import DEFAULT_MODULES, DjaployConfig

config = DjaployConfig(
    project_name="ledger",
    health_check_path="/health/",
    deployment_strategy="zero_downtime",
    env_vars={"DJANGO_DEBUG": "0"},
    secrets={"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY", "S3_KEY_ID": "env:E2E_S3_KEY_ID",
             "S3_SECRET": "env:E2E_S3_SECRET"},
    modules=[*DEFAULT_MODULES, "djaploy.modules.litestream"],
    module_options={"litestream": {"replica": json.loads((Path(__file__).parent / "replica.json").read_text())}},
)
'''

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[0]
hosts = [HostConfig("app", ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=[vm.address], env_vars={"DJANGO_ALLOWED_HOSTS": vm.address})]
'''


# --- helpers --------------------------------------------------------------------------------------


def ssh(host, command: str) -> subprocess.CompletedProcess[str]:
    from djaploy.sandbox import Sandbox

    return Sandbox(name=SANDBOX_NAME).run(host, command, timeout=120)


def remote(host, command: str, check: bool = True) -> str:
    result = ssh(host, command)
    if check:
        assert result.returncode == 0, f"{command!r} on {host.name}: {result.stdout}{result.stderr}"
    return result.stdout


def use_replica(project: Project, replica: dict) -> None:
    project.write("infra/replica.json", json.dumps(replica))


def add_entries(host, texts: list[str]) -> None:
    for text in texts:
        status, body = http_post_json(f"http://{host.address}/api/entries/", {"text": text})
        assert status == 201, body


def served_texts(host) -> list[str]:
    status, body = http_get(f"http://{host.address}/api/entries/")
    assert status == 200, body[:500]
    return sorted(entry["text"] for entry in json.loads(body))


class ReplicaUnreadable(AssertionError):
    """The replica could not be restored or read: that says nothing about which rows it holds."""


def replica_texts(host) -> list[str]:
    """Restore the replica the host's config points at into a scratch file and read its rows;
    ReplicaUnreadable, with Litestream's or SQLite's message, when either step fails."""
    check = "/home/ledger/.replica-check.sqlite3"
    restore = litestream_command(PATHS, "restore", "-config", PATHS.config, "-o", check, DB)
    read = f"import json, sqlite3; print(json.dumps([r[0] for r in sqlite3.connect({check!r}).execute('SELECT text FROM entries_entry')]))"
    script = f"rm -f {check}*; {restore} >&2 && python3 -c {shlex.quote(read)}; status=$?; rm -f {check}*; exit $status"
    result = ssh(host, f"runuser -u ledger -- sh -c {shlex.quote(script)}")
    if result.returncode != 0:
        raise ReplicaUnreadable(f"cannot read the replica from {host.name} (exit {result.returncode}): {result.stderr.strip()[-1500:]}")
    return sorted(json.loads(result.stdout))


def wait_replicated(host, texts: list[str], seconds: int = 30) -> None:
    """Replication is asynchronous: poll until the replica holds `texts` (a destination that has
    no backup yet cannot be read at first)."""
    got: list[str] = []
    unreadable: ReplicaUnreadable | None = None
    for _ in range(seconds):
        try:
            got, unreadable = replica_texts(host), None
        except ReplicaUnreadable as error:
            unreadable = error
        else:
            if set(texts) <= set(got):
                return
        time.sleep(1)
    if unreadable:
        raise AssertionError(f"after {seconds}s: {unreadable}")
    raise AssertionError(f"rows missing from the replica after {seconds}s: {sorted(set(texts) - set(got))}")


def lose_database(host) -> None:
    """What a lost disk looks like to the app: everything stopped, the database gone."""
    remote(host, f"systemctl stop 'ledger-[ab].socket' 'ledger-[ab].service' {PATHS.service} && rm -f {DB} {DB}-wal {DB}-shm")
    assert remote(host, f"test -e {DB} && echo present || echo gone").strip() == "gone"


def restore_all(project: Project, host, expected: list[str], *args: str) -> str:
    result = project.manage("restore", "--env", ENV, *args, check=True)
    assert "integrity ok" in result.stdout
    assert f"entries_entry: {len(expected)} rows" in result.stdout
    assert served_texts(host) == sorted(expected)
    assert remote(host, f"stat -c %U {DB}").strip() == "ledger"  # the app can write it
    assert remote(host, f"systemctl is-active {PATHS.service}").strip() == "active"
    return result.stdout


def litestream_user(host) -> str:
    pid = remote(host, f"systemctl show -p MainPID --value {PATHS.service}").strip()
    return remote(host, f"ps -o user= -p {pid}").strip()


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_host(project: Project, sandbox_hosts):
    project.write("infra/config.py", CONFIG)
    project.write(f"infra/inventory/{ENV}.py", INVENTORY)
    use_replica(project, {"type": "file", "path": FILE_REPLICA})
    project.commit("replicated environment")
    project.env.update(E2E_S3_KEY_ID=S3_KEY_ID, E2E_S3_SECRET=S3_SECRET)
    return sandbox_hosts[0]


@pytest.fixture(scope="module")
def moto(app_host) -> Iterator[str]:
    """A real S3-compatible server, reachable from the app host at the host end of its link."""
    with moto_server(app_host.host_side_address, MOTO_PORT, bucket=BUCKET, key_id=S3_KEY_ID, secret=S3_SECRET) as endpoint:
        yield endpoint


def s3_client(endpoint: str):
    return moto_s3_client(endpoint, S3_KEY_ID, S3_SECRET)


# --- file replica ---------------------------------------------------------------------------------


FIRST = [f"first-{i}" for i in range(5)]


def test_file_replica_gets_rows_written_through_the_app(project: Project, app_host) -> None:
    project.manage("configureserver", "--env", ENV, check=True)
    assert remote(app_host, f"systemctl is-active {PATHS.service}").strip() == "active"
    assert litestream_user(app_host) == "ledger"
    assert remote(app_host, f"stat -c '%U %a' {PATHS.env_file}").strip() == "ledger 600"
    again = project.manage("configureserver", "--env", ENV, check=True)
    assert "[app] ok: no changes" in again.stdout

    project.manage("deploy", "--env", ENV, "--latest", check=True)
    journal = f"python3 -c \"import sqlite3; print(sqlite3.connect('{DB}').execute('PRAGMA journal_mode').fetchone()[0])\""
    assert remote(app_host, f"runuser -u ledger -- {journal}").strip() == "wal"
    add_entries(app_host, FIRST)
    wait_replicated(app_host, FIRST)
    assert remote(app_host, f"find {FILE_REPLICA} -name '*.ltx' | wc -l").strip() != "0"


def test_deleted_database_comes_back_with_every_row(project: Project, app_host) -> None:
    lose_database(app_host)
    output = restore_all(project, app_host, FIRST)
    assert "restored /home/ledger/apps/ledger/shared/data/db.sqlite3 from file /var/backups/ledger-litestream (latest)" in output
    # The restored database keeps replicating.
    add_entries(app_host, ["after-restore"])
    wait_replicated(app_host, [*FIRST, "after-restore"])


def test_restore_refuses_a_database_with_data_unless_forced(project: Project, app_host) -> None:
    result = project.manage("restore", "--env", ENV)
    assert result.returncode != 0
    assert "restore refused" in result.stderr and "entries_entry: 6 rows" in result.stderr and "--force" in result.stderr
    assert served_texts(app_host) == sorted([*FIRST, "after-restore"])
    assert not [name for name in remote(app_host, f"ls {PATHS.app.data_dir}").split() if "before-restore" in name]


def test_restore_to_a_moment_drops_later_rows_and_the_timeline_goes_on(project: Project, app_host) -> None:
    kept = [*FIRST, "after-restore"]
    time.sleep(2)
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(2)
    add_entries(app_host, ["too-late-1", "too-late-2"])
    wait_replicated(app_host, ["too-late-1", "too-late-2"])

    output = restore_all(project, app_host, kept, "--timestamp", moment, "--force")
    assert f"(as of {moment})" in output and "the replaced database was kept as" in output
    kept_file = remote(app_host, f"ls {PATHS.app.data_dir} | grep before-restore | grep -v -- -wal | grep -v -- -shm").split()
    assert len(kept_file) == 1
    # After a point-in-time restore, new writes continue from the restored state.
    add_entries(app_host, ["after-timestamp"])
    wait_replicated(app_host, [*kept, "after-timestamp"])
    replicated = replica_texts(app_host)  # read fine (ReplicaUnreadable otherwise), so an absent row is absent
    assert "after-timestamp" in replicated and "too-late-1" not in replicated, replicated


# --- S3 (moto) ------------------------------------------------------------------------------------


def current_rows(host) -> list[str]:
    return served_texts(host)


def test_s3_replica_after_a_destination_change(project: Project, app_host, moto: str) -> None:
    before = current_rows(app_host)
    use_replica(project, {"type": "s3", "bucket": BUCKET, "path": S3_PREFIX, "endpoint": moto, "region": "us-east-1",
                          "force_path_style": True, "access_key_id": "S3_KEY_ID", "secret_access_key": "S3_SECRET"})
    result = project.manage("deploy", "--env", ENV, "--latest", check=True)
    assert "reset local state for the new destination s3://ledger-backups/ledger/db" in result.stdout
    log = Path(result.stdout.split("full log: ")[1].split()[0]).read_text()
    for secret in (S3_SECRET, S3_KEY_ID):
        assert secret not in result.stdout + result.stderr + log
    assert S3_SECRET not in remote(app_host, f"cat {PATHS.config}")
    assert remote(app_host, f"stat -c '%U %a' {PATHS.env_file}").strip() == "ledger 600"
    add_entries(app_host, ["s3-1", "s3-2"])
    wait_replicated(app_host, [*before, "s3-1", "s3-2"])
    keys = [item["Key"] for item in s3_client(moto).list_objects_v2(Bucket=BUCKET, Prefix=S3_PREFIX).get("Contents", [])]
    assert any(key.endswith(".ltx") for key in keys), keys

    lose_database(app_host)
    restore_all(project, app_host, [*before, "s3-1", "s3-2"])


# --- SFTP to the second VPS -----------------------------------------------------------------------


def test_sftp_replica_on_the_second_host(project: Project, app_host, sandbox_hosts) -> None:
    from djaploy.sandbox import Sandbox

    sftp_host = sandbox_hosts[1]
    Sandbox(name=SANDBOX_NAME).connect_hosts(app_host, sftp_host)
    assert remote(app_host, f"timeout 5 bash -c '</dev/tcp/{sftp_host.address}/22' && echo open").strip() == "open"
    host_key = " ".join(remote(sftp_host, "cat /etc/ssh/ssh_host_ecdsa_key.pub").split()[:2])
    before = current_rows(app_host)
    use_replica(project, {"type": "sftp", "host": sftp_host.address, "user": "root", "key_path": app_host.key_path,
                          "host_key": host_key, "path": SFTP_REPLICA})
    project.manage("deploy", "--env", ENV, "--latest", check=True)
    assert remote(app_host, f"stat -c '%U %a' {PATHS.sftp_key}").strip() == "ledger 600"
    add_entries(app_host, ["sftp-1"])
    wait_replicated(app_host, [*before, "sftp-1"])
    assert remote(sftp_host, f"find {SFTP_REPLICA} -name '*.ltx' | wc -l").strip() != "0"

    lose_database(app_host)
    restore_all(project, app_host, [*before, "sftp-1"])


# --- safety -----------------------------------------------------------------------------------------


def test_a_destination_holding_another_backup_is_refused(project: Project, app_host) -> None:
    rows = current_rows(app_host)
    config_before = remote(app_host, f"cat {PATHS.config}")
    use_replica(project, {"type": "file", "path": FILE_REPLICA})  # holds the older history
    planned = project.manage("deploy", "--env", ENV, "--latest", "--dry-run", check=True)
    assert "litestream: config (replica file /var/backups/ledger-litestream): would change" in planned.stdout
    assert remote(app_host, f"cat {PATHS.config}") == config_before
    result = project.manage("deploy", "--env", ENV, "--latest")
    assert result.returncode != 0
    assert "refusing to replicate" in result.stderr and "already holds a backup" in result.stderr
    assert remote(app_host, f"cat {PATHS.config}") == config_before
    assert remote(app_host, "ls /etc | grep -c 'litestream-ledger.*new' || true").strip() == "0"
    assert remote(app_host, f"systemctl is-active {PATHS.service}").strip() == "active"
    assert current_rows(app_host) == rows


def test_bad_options_stop_before_litestream_changes_anything(project: Project, app_host) -> None:
    config_before = remote(app_host, f"cat {PATHS.config}")
    use_replica(project, {"type": "s3", "bucket": BUCKET, "path": S3_PREFIX, "access_key_id": "NO_SUCH_SECRET",
                          "secret_access_key": "S3_SECRET"})
    result = project.manage("configureserver", "--env", ENV)
    assert result.returncode != 0
    assert "inventory/replicated.py" in result.stderr
    assert "module_options['litestream']['replica']['access_key_id']" in result.stderr
    assert "'NO_SUCH_SECRET'" in result.stderr
    restore = project.manage("restore", "--env", ENV)
    assert restore.returncode != 0 and "connected to" not in restore.stdout  # refused before connecting
    assert remote(app_host, f"cat {PATHS.config}") == config_before


def test_rebuilt_host_restores_before_it_migrates(project: Project, app_host, sandbox_hosts) -> None:
    sftp_host = sandbox_hosts[1]
    host_key = " ".join(remote(sftp_host, "cat /etc/ssh/ssh_host_ecdsa_key.pub").split()[:2])
    use_replica(project, {"type": "sftp", "host": sftp_host.address, "user": "root", "key_path": app_host.key_path,
                          "host_key": host_key, "path": SFTP_REPLICA})
    rows = current_rows(app_host)
    lose_database(app_host)
    remote(app_host, f"rm -rf {PATHS.meta_dir}")
    result = project.manage("deploy", "--env", ENV, "--latest", check=True)
    assert "(this host has no data; the replica has)" in result.stdout
    assert result.stdout.index("this host has no data") < result.stdout.index("migrate")
    assert current_rows(app_host) == rows
