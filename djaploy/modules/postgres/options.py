"""module_options["postgres"] of one host, checked locally before any connection.

The password is a secret from the deployer's environment ("env:NAME"), never a literal in the
repository. Like the certs module's credentials, its form is checked before any connection and
its value is read only when a command needs it (`password`), so `status` and `unlock` work for
someone who has not exported it. Every value read is registered with the Redactor at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import quote

from djaploy.inventory import MIN_SECRET_LENGTH
from djaploy.modules.options import (
    ENV_NAME_RE,
    ENV_PREFIX,
    checked_options,
    env_variable,
    option_error,
)
from djaploy.redact import hide_everywhere

if TYPE_CHECKING:
    from djaploy.config import Target

NAME = "postgres"
OPTION_NAMES = ("password", "database", "user", "max_connections")
DEFAULT_MAX_CONNECTIONS = 100  # PostgreSQL's own default
#: what PostgreSQL takes unquoted (and pg_hba.conf, psql and DATABASE_URL without escaping)
IDENTIFIER_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Settings:
    """One host's postgres options, checked. `password_variable` names the secret; never its value."""

    database: str
    user: str
    password_variable: str
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def settings_for(target: Target, config_dir: Path | None) -> Settings:
    """Check the options (names with "did you mean", the password's form, identifiers)."""
    raw = checked_options(target, config_dir, NAME, OPTION_NAMES)

    def fail(key: str, message: str) -> NoReturn:
        raise option_error(target, config_dir, NAME, key, message)

    value = raw.get("password")
    if value is None:
        fail("password", "the postgres module needs the app role's password from your environment: "
                         "module_options={'postgres': {'password': 'env:SHOP_DB_PASSWORD'}}")
    variable = env_variable(value) if isinstance(value, str) else None
    if variable is None:
        fail("password", "must be read from your environment as 'env:NAME' (like secrets), not written in the "
                         "repository; e.g. 'env:SHOP_DB_PASSWORD'")
    if not ENV_NAME_RE.fullmatch(variable):
        fail("password", f"{ENV_PREFIX}{variable!r} does not name an environment variable (letters, digits, _)")
    names = {key: raw.get(key, target.project_name) for key in ("database", "user")}
    for key, name in names.items():
        if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
            given = f"the project name {name!r}" if key not in raw else repr(name)
            fail(key, f"{given} is not a plain PostgreSQL name (lower-case letters, digits, _, at most 63, "
                      f"not starting with a digit); set module_options['postgres'][{key!r}]")
    max_connections = raw.get("max_connections", DEFAULT_MAX_CONNECTIONS)
    if isinstance(max_connections, bool) or not isinstance(max_connections, int) or not 10 <= max_connections <= 10000:
        fail("max_connections", f"expected a whole number from 10 to 10000, got {max_connections!r}")
    settings = Settings(database=names["database"], user=names["user"], password_variable=variable,
                        max_connections=max_connections)
    password(settings, target, config_dir, os.environ, required=False)  # hidden from output from the start
    return settings


def password(settings: Settings, target: Target, config_dir: Path | None,
             environ: Mapping[str, str] = os.environ, *, required: bool = True) -> str:
    """The password from the deployer's environment, registered with every Redactor (as given and
    as DATABASE_URL encodes it). A missing variable is a ConfigError when `required`, else ''."""
    value = environ.get(settings.password_variable, "")
    if not value:
        if not required:
            return ""
        raise option_error(target, config_dir, NAME, "password",
                           f"reads ${settings.password_variable}, which is not set in your environment")
    if "\n" in value or "\r" in value or "\0" in value:
        raise option_error(target, config_dir, NAME, "password",
                           f"${settings.password_variable} holds a newline or NUL; it goes into an environment file")
    if len(value) < MIN_SECRET_LENGTH:
        raise option_error(target, config_dir, NAME, "password",
                           f"${settings.password_variable} is {len(value)} characters long; djaploy hides it in all "
                           f"output, and one this short would garble it: use at least {MIN_SECRET_LENGTH}")
    hide_everywhere(value, quote(value, safe=""))
    return value

