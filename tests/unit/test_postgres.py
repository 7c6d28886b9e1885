"""The postgres module without a host: the SCRAM verifier (RFC 7677's vector), option errors, the
conf.d file and pg_hba.conf block for one and several app hosts, DATABASE_URL with hostile
passwords (encoded, read back intact by a real `sh` from the env file), and the steps on a
recording plan: what changes on a first and a second run, and that the password is in no command."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from djaploy import shell
from djaploy.config import DEFAULT_MODULES, DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult, HostContext
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from djaploy.modules.postgres import Module, scram
from djaploy.modules.postgres.options import Settings, password, settings_for
from djaploy.modules.postgres.server_config import (
    CONNECTION_MARGIN,
    conf_d_text,
    connections_needed,
    database_host,
    database_url,
    hba_lines,
    with_hba_block,
)
from djaploy.modules.postgres.steps import PASSWORD_SQL, configure_database_host
from djaploy.redact import Redactor
from tests.unit.conftest import RecordingPlan
from tests.unit.recording_shell import HOSTILE

POSTGRES = "djaploy.modules.postgres"
VARIABLE = "SHOP_DB_PASSWORD"
#: passwords are at least 4 characters (shorter ones would garble the redacted output)
HOSTILE_PASSWORDS = [*(value.ljust(4, "#") for value in HOSTILE), "p@ss/word:with%25$(id)`id`'\"", "ends with a backslash \\", "ünï©ødé pässwörd"]
DEBIAN_HBA = """# PostgreSQL Client Authentication Configuration File
local   all             postgres                                peer

# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
"""


def fleet(*hosts: HostConfig, options: dict[str, Any] | None = None, project: str = "shop") -> list[Target]:
    config = DjaployConfig(project_name=project, modules=[*DEFAULT_MODULES, POSTGRES],
                           module_options={"postgres": {"password": f"env:{VARIABLE}", **(options or {})}})
    return resolve_targets(config, list(hosts), "production", environ={}, source_file="/infra/inventory/production.py")


WEB1 = HostConfig("web1", ssh_host="203.0.113.11", roles=["web"], private_address="10.0.0.11")
WEB2 = HostConfig("web2", ssh_host="203.0.113.12", roles=["web", "worker"], private_address="10.0.0.12")
DB1 = HostConfig("db1", ssh_host="203.0.113.20", roles=["db"], private_address="10.0.0.20")
LB1 = HostConfig("lb1", ssh_host="203.0.113.30", roles=["lb"], private_address="10.0.0.30")
ONE_BOX = HostConfig("box", ssh_host="203.0.113.40", roles=["web", "db"])
SETTINGS = Settings(database="shop", user="shop", password_variable=VARIABLE)


# --- SCRAM ----------------------------------------------------------------------------------------


def test_the_verifier_answers_rfc_7677s_exchange() -> None:
    """RFC 7677's SCRAM-SHA-256 example: our keys give its client proof and server signature."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    client_key, stored_key, server_key = scram.keys("pencil", salt, 4096)
    auth_message = (b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
                    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    client_signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
    assert base64.b64encode(proof).decode() == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    stored = scram.verifier("pencil", salt)
    assert stored == (f"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==${base64.b64encode(stored_key).decode()}:"
                      f"{base64.b64encode(server_key).decode()}")


def test_a_stored_verifier_is_recognised_from_its_salt_and_digest_only() -> None:
    stored = scram.verifier("correct horse")
    salt_part = stored.split("$")[1]
    assert scram.matches("correct horse", salt_part, scram.digest(stored))
    assert not scram.matches("correct horsE", salt_part, scram.digest(stored))
    assert not scram.matches("correct horse", "", "")  # no password set yet
    assert not scram.matches("correct horse", "not base64!", scram.digest(stored))
    assert stored != scram.verifier("correct horse")  # a fresh salt each time


def test_saslprep_maps_like_rfc_4013() -> None:
    assert scram.saslprep("I\u00adX") == "IX"  # soft hyphen: mapped to nothing
    assert scram.saslprep("\u2168") == "IX"  # NFKC
    assert scram.saslprep("a\u00a0b") == "a b"  # non-ASCII space
    assert scram.saslprep("a\u0007b") == "a\u0007b"  # prohibited: PostgreSQL uses the raw password
    assert scram.saslprep("it's $(x)") == "it's $(x)"


# --- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "field", "message"), [
    ({"password": None}, "password", "needs the app role's password"),
    ({"password": "hunter2-literal"}, "password", "'env:NAME'"),
    ({"password": "env:NOT-A-NAME"}, "password", "does not name an environment variable"),
    ({"pasword": "env:X"}, "pasword", "did you mean 'password'?"),
    ({"database": "Shop-DB"}, "database", "not a plain PostgreSQL name"),
    ({"user": "1shop"}, "user", "not a plain PostgreSQL name"),
    ({"max_connections": "100"}, "max_connections", "whole number"),
    ({"max_connections": True}, "max_connections", "whole number"),
])
def test_bad_options_are_refused_naming_the_field(options: dict, field: str, message: str) -> None:
    config_options = {"password": f"env:{VARIABLE}", **options}
    if config_options["password"] is None:
        del config_options["password"]
    config = DjaployConfig(project_name="shop", modules=[*DEFAULT_MODULES, POSTGRES],
                           module_options={"postgres": config_options})
    web, _ = resolve_targets(config, [WEB1, DB1], "production", environ={}, source_file="inventory/production.py")
    with pytest.raises(ConfigError) as raised:
        settings_for(web, Path("/infra"))
    assert f"module_options['postgres'][{field!r}]" in str(raised.value)
    assert message in str(raised.value)


def test_a_project_name_that_is_no_postgres_name_needs_explicit_names() -> None:
    web, _ = fleet(WEB1, DB1, project="my-shop")
    with pytest.raises(ConfigError, match="the project name 'my-shop' is not a plain PostgreSQL name"):
        settings_for(web, None)
    web, _ = fleet(WEB1, DB1, project="my-shop", options={"database": "shop", "user": "shop_app"})
    assert settings_for(web, None) == Settings("shop", "shop_app", VARIABLE)


def test_defaults_are_the_project_name() -> None:
    web, _ = fleet(WEB1, DB1)
    assert settings_for(web, None) == SETTINGS


def test_the_password_is_read_when_needed_and_hidden_everywhere_at_once() -> None:
    web, _ = fleet(WEB1, DB1)
    with pytest.raises(ConfigError, match=f"reads \\${VARIABLE}, which is not set"):
        password(SETTINGS, web, None, environ={})
    with pytest.raises(ConfigError, match="at least"):
        password(SETTINGS, web, None, environ={VARIABLE: "abc"})
    made_before = Redactor(["unrelated-secret"])
    value = "s3cret/pw@host"
    assert password(SETTINGS, web, None, environ={VARIABLE: value}) == value
    for redact in (made_before, Redactor()):
        assert redact(f"url postgres://shop:s3cret%2Fpw%40host@db and {value}") == "url postgres://shop:********@db and ********"


def test_check_fleet_wants_exactly_one_db_host_with_the_module() -> None:
    with pytest.raises(ConfigError, match="exactly one host with the 'db' role \\(found: none\\)"):
        fleet(WEB1)
    with pytest.raises(ConfigError, match="found: db1, db2"):
        fleet(WEB1, DB1, HostConfig("db2", ssh_host="203.0.113.21", roles=["db"]))


# --- server config ------------------------------------------------------------------------------


def test_conf_d_listens_on_localhost_and_the_private_address() -> None:
    _, db = fleet(WEB1, DB1)
    text = conf_d_text(SETTINGS, db)
    assert "listen_addresses = 'localhost,10.0.0.20'\n" in text
    assert "password_encryption = 'scram-sha-256'\n" in text
    assert "max_connections = 100\n" in text


def test_pg_hba_lets_in_one_app_host() -> None:
    web, db = fleet(WEB1, DB1)
    assert hba_lines(SETTINGS, db, [web, db]) == ["hostssl shop shop 10.0.0.11/32 scram-sha-256  # web1"]


def test_pg_hba_lets_in_exactly_the_app_hosts_of_a_fleet() -> None:
    hosts = fleet(WEB1, WEB2, DB1, LB1, options={"database": "orders", "user": "orders_app"})
    settings = Settings("orders", "orders_app", VARIABLE)
    assert hba_lines(settings, database_host(hosts), hosts) == [
        "hostssl orders orders_app 10.0.0.11/32 scram-sha-256  # web1",
        "hostssl orders orders_app 10.0.0.12/32 scram-sha-256  # web2",
    ]


def test_a_web_and_db_host_uses_the_unix_socket() -> None:
    (box,) = fleet(ONE_BOX)
    assert hba_lines(SETTINGS, box, [box]) == ["local   shop shop scram-sha-256"]
    url = urlsplit(database_url(SETTINGS, "pw-value", box, box))
    assert unquote(url.hostname or "") == "/var/run/postgresql" and url.port is None and not url.query


def test_djaplys_block_goes_first_and_is_replaced_not_repeated() -> None:
    lines = ["hostssl shop shop 10.0.0.11/32 scram-sha-256  # web1"]
    once = with_hba_block(DEBIAN_HBA, SETTINGS, lines)
    assert once.splitlines()[1] == lines[0] and once.startswith("# BEGIN djaploy postgres")
    assert once.endswith(DEBIAN_HBA)
    assert with_hba_block(once, SETTINGS, lines) == once
    moved = with_hba_block(once, SETTINGS, ["hostssl shop shop 10.0.0.12/32 scram-sha-256  # web2"])
    assert "10.0.0.11" not in moved and moved.count("# BEGIN djaploy") == 1
    other = with_hba_block(moved, Settings("blog", "blog", VARIABLE), ["local   blog blog scram-sha-256"])
    assert "10.0.0.12" in other and other.count("# BEGIN djaploy") == 2  # another project's block stays
    assert with_hba_block(once, SETTINGS, []) == DEBIAN_HBA


@pytest.mark.parametrize("secret", HOSTILE_PASSWORDS)
def test_database_url_encodes_any_password(secret: str) -> None:
    web, db = fleet(WEB1, DB1)
    url = database_url(SETTINGS, secret, db, web)
    parts = urlsplit(url)
    assert unquote(parts.password or "") == secret
    assert (parts.hostname, parts.port, parts.path, parts.query) == ("10.0.0.20", 5432, "/shop", "sslmode=require")
    assert f"shop:{quote(secret, safe='')}@" in url


def test_connections_needed_counts_every_web_worker() -> None:
    hosts = fleet(WEB1, WEB2, DB1)
    assert connections_needed(hosts) == 2 * hosts[0].gunicorn_workers + CONNECTION_MARGIN


# --- the environment hook -----------------------------------------------------------------------


@pytest.mark.parametrize("secret", HOSTILE_PASSWORDS)
def test_the_env_file_carries_database_url_intact(secret: str, tmp_path: Path, monkeypatch) -> None:
    """app_environment merges the module's DATABASE_URL; the env file a real sh sources gives it back."""
    monkeypatch.setenv(VARIABLE, secret)
    web, db = fleet(WEB1, DB1)
    ctx = HostContext(env="production", target=web, plan=RecordingPlan(), fleet=(web, db), modules=(Module(),))
    environment = ctx.app_environment()
    assert environment["DATABASE_URL"] == database_url(SETTINGS, secret, db, web)
    env_file = tmp_path / "env"
    env_file.write_text(shell.render_env_file(environment))
    read = subprocess.run(["sh", "-c", shell.with_env_file(str(env_file), 'printf %s "$DATABASE_URL"')],
                          capture_output=True, text=True, check=True)
    assert unquote(urlsplit(read.stdout).password or "") == secret


# --- steps on a recording plan ------------------------------------------------------------------


@dataclass
class DatabaseHostPlan(RecordingPlan):
    """A recording plan whose queries answer like a db host: Debian's cluster, and what pg_authid holds."""

    stored: str = ""  # the role's verifier
    exists: bool = False  # role and database
    queries: list[str] = field(default_factory=list)

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        self.queries.append(command)
        if command.startswith("ls -1 /etc/postgresql"):
            return CommandResult(True, "15\n")
        if "pg_roles" in command:
            return CommandResult(True, "1|shop\n" if self.exists else "0|\n")
        if "pg_authid" in command:
            if not self.stored:
                return CommandResult(True, "")
            return CommandResult(True, f"{self.stored.split('$')[1]}|{scram.digest(self.stored)}\n")
        if command.startswith("cat "):
            return CommandResult(True, self.files.get(command.split()[1], (DEBIAN_HBA,))[0])
        return CommandResult(True, "")


@pytest.mark.parametrize("secret", ["it's \"$(touch X)\" `id` @/", "plain-password-1"])
def test_first_run_creates_and_sets_second_run_changes_nothing(secret: str) -> None:
    web, db = fleet(WEB1, DB1)
    plan = DatabaseHostPlan()
    ctx = HostContext(env="production", target=db, plan=plan)
    configure_database_host(ctx, SETTINGS, secret, [web, db])
    assert [step for step in plan.steps if "create" in step or "password" in step] == [
        "postgres: create role shop", "postgres: create database shop owned by shop",
        "postgres: password of role shop (its SCRAM verifier, 0600)", "postgres: set the password of role shop"]
    sql, owner, mode = plan.files[PASSWORD_SQL]
    assert (owner, mode) == ("postgres", "600") and secret not in sql
    stored = sql.split("PASSWORD '")[1].split("'")[0]
    assert scram.matches(secret, stored.split("$")[1], scram.digest(stored))
    hba = plan.files["/etc/postgresql/15/main/pg_hba.conf"][0]
    assert "hostssl shop shop 10.0.0.11/32 scram-sha-256" in hba
    for command in [*plan.commands, *plan.queries]:
        assert secret not in command and stored not in command

    again = DatabaseHostPlan(files=dict(plan.files), stored=stored, exists=True)
    configure_database_host(HostContext(env="production", target=db, plan=again), SETTINGS, secret, [web, db])
    assert [call for call in again.calls if call[0] == "run"] == []
    assert again.files == plan.files  # the same files again: put_text reports no change


def test_a_changed_password_is_set_again() -> None:
    web, db = fleet(WEB1, DB1)
    plan = DatabaseHostPlan(stored=scram.verifier("old-password"), exists=True)
    configure_database_host(HostContext(env="production", target=db, plan=plan), SETTINGS, "new-password", [web, db])
    assert [step for _, step in plan.calls if "password" in step][-1] == "postgres: set the password of role shop"


# --- verify -------------------------------------------------------------------------------------


def test_verify_flags_settings_that_ignore_database_url() -> None:
    from djaploy.layout import AppPaths
    from djaploy.verify.findings import Expected, settings_findings

    paths = AppPaths("shop", "shop")
    values = {"STATIC_ROOT": paths.static_root, "ALLOWED_HOSTS": ["*"], "SECRET_KEY_FROM": ["DJANGO_SECRET_KEY"]}
    expected = Expected("production", paths, ("shop.example.com",), frozenset({"DJANGO_SECRET_KEY"}), frozenset(),
                        database_url=True)
    ignored = settings_findings({**values, "DEFAULT_ENGINE": "django.db.backends.sqlite3"}, expected, "production/web1",
                                matches_local_key=None)
    assert [f.id for f in ignored] == ["E013"] and "dj_database_url.config(" in ignored[0].hint
    used = {**values, "DEFAULT_ENGINE": "django.db.backends.postgresql"}
    assert settings_findings(used, expected, "production/web1", matches_local_key=None) == []
    without_module = Expected("production", paths, ("shop.example.com",), frozenset({"DJANGO_SECRET_KEY"}), frozenset())
    assert settings_findings({**values, "DEFAULT_ENGINE": "django.db.backends.sqlite3"}, without_module,
                             "production/web1", matches_local_key=None) == []


def test_verify_flags_max_connections_below_what_the_fleet_opens() -> None:
    from djaploy.verify.findings import connection_findings

    hosts = fleet(WEB1, WEB2, DB1, options={"max_connections": 10})
    needed = connections_needed(hosts)
    (finding,) = connection_findings("production", 10, needed)
    assert finding.id == "W008" and f"max_connections': {needed}" in finding.hint
    assert connection_findings("production", needed, needed) == []


def test_deployed_environment_gives_the_probe_database_url(monkeypatch) -> None:
    from djaploy.verify.deployed_settings import deployed_environment

    web, db = fleet(WEB1, DB1)
    monkeypatch.delenv(VARIABLE, raising=False)
    with pytest.raises(ConfigError, match=f"reads \\${VARIABLE}"):
        deployed_environment("production", web, [web, db])
    monkeypatch.setenv(VARIABLE, "verify-password")
    assert deployed_environment("production", web, [web, db])["DATABASE_URL"].startswith("postgres://shop:")


def test_app_environment_merges_module_variables_under_the_hosts_own() -> None:
    from djaploy.modules.base import BaseModule, _hook_name_problem

    class Search(BaseModule):
        name = "search"

        def environment(self, ctx: HostContext) -> dict[str, str]:
            return {"SEARCH_URL": f"http://{ctx.fleet[-1].private_address}:7700", "DJANGO_DEBUG": "1"}

    class Misspelt(BaseModule):
        def enviroment(self, ctx: HostContext) -> dict[str, str]:
            return {}

    web, db = fleet(WEB1, DB1)
    web = Target(**{**web.__dict__, "env_vars": {"DJANGO_DEBUG": "0"}})
    variables = HostContext(env="production", target=web, plan=RecordingPlan(), fleet=(web, db),
                            modules=(Search(),)).app_environment()
    assert variables["SEARCH_URL"] == "http://10.0.0.20:7700"
    assert variables["DJANGO_DEBUG"] == "0"  # the host's env_vars win
    assert "did you mean 'environment'?" in (_hook_name_problem(Misspelt) or "")


def test_a_new_app_host_reloads_postgres_without_a_restart() -> None:
    web, db = fleet(WEB1, DB1)
    plan = DatabaseHostPlan()
    configure_database_host(HostContext(env="production", target=db, plan=plan), SETTINGS, "a-password", [web, db])
    web2, = [t for t in fleet(WEB1, WEB2, DB1) if t.name == "web2"]
    again = DatabaseHostPlan(files=dict(plan.files), stored=plan.files[PASSWORD_SQL][0].split("'")[-2], exists=True)
    configure_database_host(HostContext(env="production", target=db, plan=again), SETTINGS, "a-password",
                            [web, web2, db])
    assert [step for method, step in again.calls if method == "run"] == [
        "postgres: reload the configuration (pg_hba.conf changed)"]
    assert "10.0.0.12/32" in again.files["/etc/postgresql/15/main/pg_hba.conf"][0]
    assert any("pg_reload_conf()" in command for command in again.commands)
    assert "service postgresql daemon_reload=False" in again.commands
