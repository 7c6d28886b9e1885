"""PostgreSQL end to end (djaploy.modules.postgres) on three sandbox hosts of its own:

- web1 (roles web): the app, reaching PostgreSQL over the network with TLS;
- db1 (roles web, db): PostgreSQL, and the app too, through the unix socket (the one-box case);
- outsider: a host of no role in the environment, whose connection PostgreSQL must refuse.

(db1 also serves the app because today's deploy deploys to every host of the inventory, and
both hosts would race at `migrate`: the first deploy goes to db1 alone, environment "solo". A
`db` host that runs nothing but PostgreSQL, and migrations run once, are the fleet deploy's.)

configureserver twice (the second changes nothing anywhere), a deploy of infra_example with
DATABASE_URL, a row written over HTTP through web1 read back in PostgreSQL as postgres and
through db1's app, `remote -- dbshell` from web1, a backup (rclone module, to a folder on each
host: pg_dump -Fc) restored with `restore --backup latest` (refused while the database holds
rows, then with --force once, on db1, every app stopped meanwhile), and a hostile password that
is never in any host's process list (sampled all along), in output or in the run logs.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import (
    SANDBOX_NAME,
    Project,
    fresh_sandbox,
    http_get,
    http_post_json,
    make_project,
)
from tests.e2e.process_sampler import ProcessSampler

ENV = "shop"
PASSWORD = "It's \"q\" $HOME @db/x `id` $(touch /tmp/pwned) %41:+\\z"
PASSWORD_VARIABLE = "LEDGER_DB_PASSWORD"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""))

CONFIG = '''
from djaploy.config import DEFAULT_MODULES, DjaployConfig

config = DjaployConfig(
    project_name="ledger",
    health_check_path="/health/",
    env_vars={"DJANGO_DEBUG": "0"},
    secrets={"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY"},
    modules=[*DEFAULT_MODULES, "djaploy.modules.postgres", "djaploy.modules.rclone"],
    module_options={"postgres": {"password": "env:LEDGER_DB_PASSWORD"},
                    "rclone": {"remote": {"type": "local"}, "path": "/var/backups/ledger-pg", "keep": 3}},
)
'''

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

web, db = sandbox_hosts()[:2]
hosts = [
    HostConfig(name, ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
               domains=[vm.address], env_vars={"DJANGO_ALLOWED_HOSTS": vm.address}, roles=roles)
    for name, vm, roles in (("web1", web, ["web"]), ("db1", db, ["web", "db"]))
]
'''

#: db1 alone: the first deploy migrates once, before both hosts deploy
SOLO_INVENTORY = INVENTORY.replace('("web1", web, ["web"]), ("db1", db, ["web", "db"])', '("db1", db, ["web", "db"]),')


def ssh(host, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    from djaploy.sandbox import Sandbox

    return Sandbox(name=SANDBOX_NAME).run(host, command, timeout=timeout)


def remote(host, command: str) -> str:
    result = ssh(host, command)
    assert result.returncode == 0, f"{command!r} on {host.name}: {result.stdout}{result.stderr}"
    return result.stdout


def as_postgres(host, sql: str, database: str = "postgres") -> str:
    return remote(host, f"runuser -u postgres -- psql -XAt -d {database} -c {shlex.quote(sql)}").strip()


@pytest.fixture(scope="module")
def hosts() -> Iterator[list]:
    """Three fresh hosts of this module's own sandbox: web1, db1, the outsider."""
    with fresh_sandbox(SANDBOX_NAME, 3) as booted:
        yield booted


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, hosts) -> Project:
    project = make_project(tmp_path_factory.mktemp("ledger") / "ledger")
    project.env[PASSWORD_VARIABLE] = PASSWORD
    project.write("infra/config.py", CONFIG)
    project.write(f"infra/inventory/{ENV}.py", INVENTORY)
    project.write("infra/inventory/solo.py", SOLO_INVENTORY)
    requirements = (project.root / "requirements.txt").read_text()
    project.write("requirements.txt", requirements + "psycopg[binary]>=3.1\ndj-database-url>=2\n")
    project.commit("postgres on db1")
    return project


@pytest.fixture(scope="module")
def sampler(hosts) -> Iterator[ProcessSampler]:
    """Samples every host's process list from before the first configureserver to the last test."""
    sampling = ProcessSampler(hosts)
    try:
        yield sampling
    finally:
        sampling.stop()


@pytest.fixture(scope="module")
def sampled(sampler: ProcessSampler) -> dict:
    """Every command's output, for the last test to search."""
    return {"outputs": []}


def run(project: Project, sampled: dict, *args: str) -> subprocess.CompletedProcess:
    result = project.manage(*args)
    sampled["outputs"].append(result.stdout + result.stderr)
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result


def test_configureserver_twice_second_changes_nothing(project: Project, hosts, sampled) -> None:
    web, db, _ = hosts
    first = run(project, sampled, "configureserver", "--env", ENV)
    assert "postgres: install postgresql" in first.stdout, first.stdout
    second = run(project, sampled, "configureserver", "--env", ENV)
    assert "[web1] ok: no changes" in second.stdout and "[db1] ok: no changes" in second.stdout, second.stdout
    # The app role owns its database; the password is stored as a SCRAM verifier.
    assert as_postgres(db, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'ledger'") == "ledger"
    assert as_postgres(db, "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'ledger'") == "SCRAM-SHA-256$"
    assert remote(db, "ss -ltnH 'sport = :5432'").count(db.address) == 1
    assert "psql" in remote(web, "command -v psql")


def test_deploy_uses_postgres_from_both_app_hosts(project: Project, hosts, sampled) -> None:
    web, db, _ = hosts
    run(project, sampled, "deploy", "--env", "solo", "--latest")  # migrations, once
    run(project, sampled, "deploy", "--env", ENV, "--latest")
    text = f"through web1 {uuid.uuid4().hex[:8]}"
    status, body = http_post_json(f"http://{web.address}/api/entries/", {"text": text})
    assert status == 201, body
    assert as_postgres(db, "SELECT text FROM entries_entry", database="ledger").splitlines() == [text]
    status, listed = http_get(f"http://{db.address}/api/entries/")  # db1's app, over the unix socket
    assert status == 200 and text in listed, listed
    # web1's connection is TLS (hostssl), db1's goes through the socket (no client address)
    connections = as_postgres(db, "SELECT coalesce(host(client_addr), 'socket'), ssl FROM pg_stat_activity "
                                  "JOIN pg_stat_ssl USING (pid) WHERE usename = 'ledger'")
    assert f"{web.address}|t" in connections.splitlines() and "socket|f" in connections.splitlines(), connections


def test_remote_dbshell_reaches_the_database(project: Project, hosts, sampled) -> None:
    result = project.manage("remote", "--env", ENV, "--host", "web1", "--", "dbshell", "--", "-XAt", "-c",
                            "SELECT count(*) FROM entries_entry")
    sampled["outputs"].append(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1", result.stdout


def entries(db) -> list[str]:
    return sorted(as_postgres(db, "SELECT text FROM entries_entry", database="ledger").splitlines())


def served(host) -> list[str]:
    status, body = http_get(f"http://{host.address}/api/entries/")
    assert status == 200, body[:500]
    return sorted(entry["text"] for entry in json.loads(body))


def test_backup_restores_postgres(project: Project, hosts, sampled) -> None:
    web, db, _ = hosts
    for text in ("second row", "third row: it's \"quoted\""):
        status, body = http_post_json(f"http://{web.address}/api/entries/", {"text": text})
        assert status == 201, body
    before = entries(db)
    assert len(before) == 3, before
    backup = run(project, sampled, "backup", "--env", ENV, "--now")
    assert "complete backup(s) at local:/var/backups/ledger-pg, one made now" in backup.stdout, backup.stdout
    assert remote(db, "ls /var/backups/ledger-pg/ledger/shop/*/database.pgdump").strip()
    # The rows are lost and replaced by another; PostgreSQL now holds data the restore must not drop silently.
    as_postgres(db, "DELETE FROM entries_entry; INSERT INTO entries_entry (text, created_at) VALUES ('intruder', now())",
                database="ledger")
    assert entries(db) == ["intruder"]

    refused = project.manage("restore", "--env", ENV, "--backup", "latest")
    sampled["outputs"].append(refused.stdout + refused.stderr)
    text = refused.stdout + refused.stderr
    assert refused.returncode != 0, text
    assert "[db1] restore refused: the PostgreSQL database ledger" in text and "--force" in text, text
    assert "entries_entry: 1" in text, text
    assert entries(db) == ["intruder"]  # nothing changed, and the app kept serving
    assert served(web) == ["intruder"]
    assert remote(db, "systemctl is-active ledger.socket").strip() == "active"

    since = {host.name: remote(host, "date +%s").strip() for host in (web, db)}
    restored = run(project, sampled, "restore", "--env", ENV, "--backup", "latest", "--force")
    out = restored.stdout
    assert "[db1] restored PostgreSQL database ledger (from db1) from backup 20" in out, out
    assert "pg_restore --list ok" in out and "[db1]   entries_entry: 3 rows" in out, out
    assert "the app was stopped meanwhile on web1, db1" in out, out
    assert entries(db) == before
    assert served(web) == before and served(db) == before  # both apps serve the restored rows
    kept = out.split("the replaced database was kept as ")[1].split()[0]
    assert remote(db, f"stat -c '%U %a' {shlex.quote(kept)}").split() == ["ledger", "600"]
    listing = remote(db, f"runuser -u ledger -- pg_restore --list {shlex.quote(kept)}")
    assert "TABLE DATA public entries_entry" in listing
    for host in (web, db):  # every app host's app was stopped during the restore, and serves again
        journal = remote(host, f"journalctl --since @{since[host.name]} -u ledger.service -u ledger.socket -o cat --no-pager")
        assert "Stopped" in journal, (host.name, journal)
        assert remote(host, "systemctl is-active ledger.socket").strip() == "active"
    assert not remote(db, "ls -A /home/ledger/apps/ledger/shared/data/.backup-restoring 2>/dev/null || true").strip()


def startup_answer(address: str, user: str = "ledger", database: str = "ledger") -> str:
    """What PostgreSQL answers this machine: SSLRequest, TLS (unverified, like sslmode=require), then a
    protocol 3.0 startup message; the text of the server's first reply."""
    import socket
    import ssl
    import struct

    with socket.create_connection((address, 5432), timeout=10) as raw:
        raw.sendall(struct.pack("!ii", 8, 80877103))
        assert raw.recv(1) == b"S", "the server does not offer TLS"
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with context.wrap_socket(raw) as tls:
            body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
            tls.sendall(struct.pack("!i", len(body) + 4) + body)
            return tls.recv(4096).decode(errors="replace")


def test_outsider_is_refused(project: Project, hosts) -> None:
    _, db, outsider = hosts
    assert "no pg_hba.conf entry" in startup_answer(db.address)  # this machine
    remote(outsider, "apt-get install -y -qq postgresql-client >/dev/null 2>&1 || "
                     "(apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null)")
    result = ssh(outsider, f"psql -w 'host={db.address} dbname=ledger user=ledger sslmode=require' -c 'SELECT 1'")
    assert result.returncode != 0
    assert "no pg_hba.conf entry" in result.stderr, result.stderr


def test_the_password_never_shows(project: Project, hosts, sampler: ProcessSampler, sampled: dict) -> None:
    samples = sampler.stop()
    web, db, _ = hosts
    # The sampler really watched: the app's gunicorn and PostgreSQL's server show in the lists.
    assert any("gunicorn" in line for line in samples[web.name]), sorted(samples[web.name])[:50]
    assert any("postgres" in line for line in samples[db.name]), sorted(samples[db.name])[:50]
    outputs = "\n".join(sampled["outputs"])
    logs = "\n".join(path.read_text(errors="replace") for path in Path(project.root).rglob(".djaploy/logs/*.log"))
    assert "postgres: set the password of role ledger" in logs  # the run logs of these commands
    for secret in SECRETS:
        assert secret not in outputs and secret not in logs
        for host, lines in samples.items():
            assert not [line for line in lines if secret in line], f"the password is in a process's argv on {host}"
