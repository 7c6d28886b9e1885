"""`restore --backup` of PostgreSQL (djaploy.modules.rclone.postgres_plan, postgres_restore and the
backup program's pg-* actions): which host restores, the refusal, the phases' order and what a
failure leaves, and the program run for real against recording client programs (the password by
environment only, never in an argv)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult, HostContext
from djaploy.errors import DjaployError, RemoteError
from djaploy.inventory import resolve_targets
from djaploy.modules.base import load_modules
from djaploy.modules.postgres.options import settings_for as postgres_settings
from djaploy.modules.postgres.server_config import database_url as postgres_url
from djaploy.modules.rclone.backup_script import parse_rows, parse_toc, postgres_environment, restore_arguments
from djaploy.modules.rclone.commands import script_command
from djaploy.modules.rclone.files import BACKUP_SCRIPT, backup_settings, database_url, paths_for
from djaploy.modules.rclone.options import settings_for
from djaploy.modules.rclone.postgres_plan import (
    PostgresRestore,
    holds_data,
    kept_dump_path,
    postgres_refusal,
    restoring_host,
    stopped_hosts,
)
from djaploy.modules.rclone.postgres_restore import PostgresRun
from tests.unit.recording_shell import HOSTILE
from tests.unit.test_rollout import sequential

PASSWORD = "It's \"q\" $HOME @db/x `id` $(touch /tmp/pwned) %41:+\\z"
MODULES = ["djaploy.modules.core", "djaploy.modules.postgres", "djaploy.modules.rclone"]
OPTIONS = {"postgres": {"password": "env:SHOP_DB_PASSWORD"},
           "rclone": {"remote": {"type": "local"}, "path": "/var/backups/shop"}}


@pytest.fixture(autouse=True)
def deployer_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """The postgres module reads its password from the deployer's environment."""
    monkeypatch.setenv("SHOP_DB_PASSWORD", PASSWORD)


def fleet(*hosts: tuple[str, list[str]]) -> list[Target]:
    config = DjaployConfig(project_name="shop", modules=MODULES, module_options=OPTIONS)
    return resolve_targets(config, [HostConfig(name, ssh_host=f"203.0.113.{i + 10}", roles=roles)
                                    for i, (name, roles) in enumerate(hosts)], "production",
                           environ={"SHOP_DB_PASSWORD": PASSWORD}, source_file="/infra/inventory/production.py")


# --- pure: which host, when to refuse, where the old database goes ---------------------------------------


def test_the_db_host_restores_else_the_first_app_host() -> None:
    targets = fleet(("web1", ["web"]), ("worker1", ["worker"]), ("db1", ["db"]), ("lb1", ["lb"]))
    assert restoring_host(targets).name == "db1"
    assert stopped_hosts(targets) == ["web1", "worker1"]  # every host whose app writes; not the db or lb host
    # a DATABASE_URL of the hosts' own (a managed PostgreSQL): no db host
    lb, worker, web = (replace(target, roles=roles) for target, roles in
                       zip(targets, (("lb",), ("worker",), ("web",)), strict=False))
    assert restoring_host([lb, worker, web]).name == "worker1"
    assert stopped_hosts(fleet(("web1", ["web", "db"]), ("web2", ["web"]))) == ["web1", "web2"]


def test_any_row_is_data_and_the_refusal_says_where_how_much_and_what_to_do() -> None:
    assert not holds_data({}) and not holds_data({"entries_entry": 0})
    assert holds_data({"entries_entry": 0, "django_migrations": 1})
    message = str(postgres_refusal("db1", "shop", {"entries_entry": 3, "django_migrations": 20, "empty": 0}))
    assert message.startswith("[db1] restore refused: the PostgreSQL database shop")
    assert "23 rows in 2 tables: django_migrations: 20, entries_entry: 3" in message
    assert "Pass --force" in message and "Nothing was changed" in message
    assert kept_dump_path("/home/shop/apps/shop/shared/data", "shop", "2026-01-31T03:00:00Z") == \
        "/home/shop/apps/shop/shared/data/shop.before-restore-20260131T030000Z.pgdump"


def test_the_report_names_the_tables_the_stopped_hosts_and_the_kept_database() -> None:
    report = PostgresRestore("shop", "db1", "local:/b", "20260131T030000Z", 40, ["entries_entry"],
                             {"entries_entry": 3}, "/data/shop.before.pgdump", ["web1", "web2"])
    lines = report.lines()
    assert lines[0].startswith("restored PostgreSQL database shop (from db1) from backup 20260131T030000Z at local:/b: "
                               "pg_restore --list ok (40 entries, data of 1 tables)")
    assert "  entries_entry: 3 rows" in lines and "  the app was stopped meanwhile on web1, web2" in lines
    assert "  the replaced database was kept as /data/shop.before.pgdump on db1" in lines


def test_the_postgres_modules_url_reaches_the_backup_settings_and_libpq_by_environment() -> None:
    web, db = fleet(("web1", ["web"]), ("db1", ["web", "db"]))
    modules = load_modules(db.modules, file="config.py")
    ctx = HostContext(env="production", target=db, plan=None, fleet=(web, db), modules=tuple(modules))  # type: ignore[arg-type]
    settings = settings_for(db, None, {})
    url = database_url(ctx, settings)
    assert url == postgres_url(postgres_settings(db, None), PASSWORD, db, db)
    assert json.loads(backup_settings(ctx, settings))["database_url"] == url
    # the db host's own URL goes through the socket folder, percent-encoded in the URL
    assert postgres_environment(url) == {"PGHOST": "/var/run/postgresql", "PGPORT": "5432", "PGUSER": "shop",
                                         "PGPASSWORD": PASSWORD, "PGDATABASE": "shop"}
    web_url = postgres_url(postgres_settings(web, None), PASSWORD, db, web)
    assert postgres_environment(web_url)["PGSSLMODE"] == "require"
    assert database_url(HostContext(env="production", target=web, plan=None), settings_for(web, None, {})) == ""  # type: ignore[arg-type]


TOC = """;
; Archive created at 2026-01-31 03:00:01 UTC
;     dbname: shop
;
; Selected TOC Entries:
;
215; 1259 16390 TABLE public entries_entry shop
214; 1259 16389 SEQUENCE public entries_entry_id_seq shop
3352; 0 16390 TABLE DATA public entries_entry shop
3350; 0 16385 TABLE DATA public django_migrations shop
3351; 0 16400 TABLE DATA audit log shop
"""


def test_the_table_of_contents_and_the_row_counts_are_read() -> None:
    assert parse_toc(TOC) == {"entries": 5, "tables": ["entries_entry", "django_migrations", "audit.log"]}
    assert parse_rows("public.django_migrations|20\npublic.entries_entry|3\naudit.log|0\n") == \
        {"django_migrations": 20, "entries_entry": 3, "audit.log": 0}


def test_pg_restore_runs_once_in_one_transaction_as_the_app_role_without_the_password() -> None:
    argv = restore_arguments("/data/.backup-restoring/database.pgdump", postgres_environment(
        "postgres://shop:se%40cret@db.internal:5432/shop"))
    assert argv == ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--role=shop",
                    "--single-transaction", "--exit-on-error", "--dbname=shop", "--",
                    "/data/.backup-restoring/database.pgdump"]
    assert not [word for word in argv if "se@cret" in word or "se%40cret" in word]


# --- the backup program's pg-* actions, run for real ---------------------------------------------------

#: psql, pg_restore and pg_dump stand-ins: they record argv and whether the password came by environment
FAKE_CLIENT = r'''#!PYTHON
import json, os, sys
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
with open(os.environ["RECORD_LOG"], "a") as log:
    log.write(json.dumps({"program": name, "argv": args, "password": os.environ.get("PGPASSWORD"),
                          "host": os.environ.get("PGHOST")}) + "\n")
if name == "psql":
    print("public.entries_entry|3\npublic.django_migrations|20")
elif name == "pg_restore" and "--list" in args:
    dump = args[-1]
    if open(dump).read() != "dump":
        sys.exit("pg_restore: error: input file does not appear to be a valid archive")
    print("3352; 0 16390 TABLE DATA public entries_entry shop")
elif name == "pg_dump":
    open(args[args.index("-f") + 1], "w").write("dump")
'''


@pytest.mark.parametrize("hostile", HOSTILE[:4])
def test_the_program_hands_the_password_to_libpq_by_environment_only(tmp_path: Path, hostile: str) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    for name in ("psql", "pg_restore", "pg_dump"):
        (bin_dir / name).write_text(FAKE_CLIENT.replace("PYTHON", sys.executable))
        (bin_dir / name).chmod(0o755)
    script, settings_file = tmp_path / "backup.py", tmp_path / "settings.json"
    script.write_text(BACKUP_SCRIPT)
    db = fleet(("db1", ["web", "db"]))[0]
    url = postgres_url(postgres_settings(db, None), PASSWORD, db, db)  # the socket's: a percent-encoded host
    settings_file.write_text(json.dumps({"database_url": url}))
    dump = tmp_path / f"dump {hostile}.pgdump"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD_LOG": str(log)}

    def program(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), str(settings_file), *args], env=env, text=True,
                              capture_output=True, cwd=tmp_path)

    assert json.loads(program("pg-rows").stdout)["rows"] == {"entries_entry": 3, "django_migrations": 20}
    kept = program("pg-keep", str(dump))
    assert json.loads(kept.stdout.splitlines()[-1])["kept"] == str(dump)
    assert oct(dump.stat().st_mode & 0o777) == "0o600"  # every row of the live database: the app user's alone
    assert json.loads(program("pg-check", str(dump)).stdout)["toc"]["tables"] == ["entries_entry"]
    assert json.loads(program("pg-restore", str(dump)).stdout)["restored"] == str(dump)
    dump.write_text("damaged")
    damaged = program("pg-check", str(dump))
    assert damaged.returncode != 0 and "pg_restore exited with 1" in damaged.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [call["program"] for call in calls] == ["psql", "pg_dump", "pg_restore", "pg_restore", "pg_restore"]
    assert all(call["password"] == PASSWORD and call["host"] == "/var/run/postgresql" for call in calls)
    assert not [call for call in calls if any(PASSWORD in word for word in call["argv"])]
    assert calls[3]["argv"][-1] == str(dump)  # the path reached pg_restore as one word


# --- the phases over the fleet -------------------------------------------------------------------------


@dataclass
class ScriptedPlan:
    """A host that answers the restore's commands: the backup program's JSON lines, units running."""

    rows: dict[str, int]
    fail: str = ""  # a command containing this fails
    commands: list[str] = field(default_factory=list)
    dry_run: bool = False

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        self.commands.append(command)
        if self.fail and self.fail in command:
            raise RemoteError("host", step, "failed")
        answers = {"pg-rows": {"rows": self.rows}, " fetch ": {"backup": {"id": "20260131T030000Z", "db": "database.pgdump"}},
                   "pg-check": {"toc": {"entries": 9, "tables": ["entries_entry"]}}, "pg-keep": {"kept": "x"},
                   "pg-restore": {"restored": "x"}}
        for word, answer in answers.items():
            if word in command:
                if word == "pg-restore":
                    self.rows = {"entries_entry": 3}
                return CommandResult(True, json.dumps(answer))
        return CommandResult(True, "")

    def query(self, command: str, *, as_user: str | None = None, sudo: bool | None = None) -> CommandResult:
        self.commands.append(command)
        if "is-active" in command:
            return CommandResult(True, "shop.socket active enabled\nshop.service active enabled\n")
        return CommandResult(True, "")


def restore_run(rows: dict[str, int], force: bool, fail: str = "") -> tuple[PostgresRun, dict, dict]:
    targets = fleet(("web1", ["web"]), ("db1", ["web", "db"]))
    modules = load_modules(targets[0].modules, file="config.py")
    plans = {target.name: ScriptedPlan(dict(rows), fail if target.name == "db1" else "") for target in targets}
    contexts = {target.name: HostContext(env="production", target=target, plan=plans[target.name],  # type: ignore[arg-type]
                                         fleet=tuple(targets), modules=tuple(modules)) for target in targets}
    run = PostgresRun(contexts, "db1", ["web1", "db1"], sequential, "latest", False, force)
    errors = run.phases(lambda name: None)
    return run, plans, errors


def stops(plan: ScriptedPlan) -> list[str]:
    return [command for command in plan.commands if "systemctl" in command and " stop " in f" {command} "]


def test_a_database_with_rows_is_refused_before_anything_is_fetched_or_stopped() -> None:
    run, plans, errors = restore_run({"entries_entry": 1}, force=False)
    assert isinstance(errors["db1"], DjaployError) and "restore refused" in str(errors["db1"])
    assert not stops(plans["web1"]) and not stops(plans["db1"])
    assert not [command for command in plans["db1"].commands if " fetch " in command or "pg-restore" in command]


def test_forced_every_app_stops_the_live_database_is_kept_then_restored_and_every_app_starts() -> None:
    run, plans, errors = restore_run({"entries_entry": 1}, force=True)
    assert errors == {}
    db = plans["db1"].commands
    order = [next(i for i, c in enumerate(db) if word in c) for word in (" fetch ", "pg-check", " stop ", "pg-keep",
                                                                          "pg-restore", " start ")]
    assert order == sorted(order), db
    assert stops(plans["web1"]) and [c for c in plans["web1"].commands if " start " in c]
    assert run.report.previous and run.report.previous.endswith(".pgdump") and run.report.rows == {"entries_entry": 3}
    assert "rm -rf" in db[-1]  # the fetched copy goes


@pytest.mark.parametrize("fail", ["pg-check", "pg-keep", "pg-restore"])
def test_a_failure_leaves_the_database_and_starts_every_app_again(fail: str) -> None:
    run, plans, errors = restore_run({}, force=False, fail=fail) if fail == "pg-check" else \
        restore_run({"entries_entry": 1}, force=True, fail=fail)
    assert list(errors) == ["db1"] and isinstance(errors["db1"], RemoteError)
    db = plans["db1"].commands
    assert not [c for c in db if "pg-restore" in c and fail != "pg-restore"]
    if fail == "pg-check":  # before the stop: no app was ever stopped
        assert not stops(plans["web1"]) and not stops(plans["db1"])
    else:
        for plan in plans.values():
            assert [c for c in plan.commands if " start " in c], plan.commands
    assert "rm -rf" in db[-1]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_program_gets_every_path_as_one_word(hostile: str) -> None:
    db = fleet(("db1", ["web", "db"]))[0]
    ctx = HostContext(env="production", target=db, plan=None)  # type: ignore[arg-type]
    paths = paths_for(ctx, settings_for(db, None, {}))
    for action in ("pg-check", "pg-keep", "pg-restore"):
        assert shlex.split(script_command(paths, action, hostile))[-2:] == [action, hostile]
