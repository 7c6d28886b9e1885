"""The objects users write in their infra folder, and the resolved view the rest of djaploy reads.

``infra/config.py`` defines ``config = DjaployConfig(...)`` (project-wide defaults) and each
``infra/inventory/<env>.py`` defines ``hosts = [HostConfig(...), ...]`` (per-host overrides).
``djaploy.inventory`` merges the two into one frozen ``Target`` per host.

Every field is declared once, with its type and its rule (``djaploy.validation``), so a typo or
a wrong type is reported as a ``ConfigError`` naming the field. HostConfig's override fields
reuse DjaployConfig's rules, so both always validate alike. What needs more than the values
themselves (that the modules import, that their options are keyed by a listed module) is
checked when the infra folder is loaded (``djaploy.configured_modules``): this file is a leaf.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePath
from typing import Any, ClassVar

from djaploy.batches import batch_size_problem
from djaploy.fleet import DEFAULT_ROLES, ROLES
from djaploy.modules.options import ENV_NAME_RE, ENV_PREFIX
from djaploy.python.rules import (
    DEFAULT_BUILD_FLAGS,
    check_build_flags,
    check_provider,
    check_source,
    check_url,
)
from djaploy.release_settings import NotificationSettings, check_notifications, check_versioning
from djaploy.worker_settings import check_workers
from djaploy.validation import (
    BOOL,
    DIR,
    FILE,
    INT,
    MAPPING,
    OPTIONS,
    RELATIVE_PATH,
    STR,
    STR_DICT,
    STR_LIST,
    Kind,
    Validated,
    all_of,
    at_least,
    each,
    each_key,
    each_value,
    matches,
    not_empty,
    one_of,
    repr_hiding_secrets,
    setting,
    unique,
)

__all__ = [
    "DEFAULT_MODULES",
    "DEPENDENCY_MANAGERS",
    "DEPLOYMENT_STRATEGIES",
    "SECRET_ENV_PREFIX",
    "DjaployConfig",
    "HostConfig",
    "Target",
    "inherited_settings",
]

DEFAULT_MODULES = ("djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd")
DEPLOYMENT_STRATEGIES = ("in_place", "zero_downtime", "bluegreen")
#: how a project locks its dependencies; detected from its files unless config.py sets one
DEPENDENCY_MANAGERS = ("pip", "poetry", "pipenv", "uv", "pep621")
#: a secret whose value is "env:NAME" is read from the deployer's environment variable NAME
SECRET_ENV_PREFIX = ENV_PREFIX

APP_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
LINUX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
HOSTNAME_RE = re.compile(r"(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
#: a URL path (and query) as it goes on the wire: no space, quote or shell metacharacter ($ ` ( ) ; ...)
URL_PATH_RE = re.compile(r"/(?:[A-Za-z0-9\-._~/?=&:@+,!*]|%[0-9A-Fa-f]{2})*")


# --- the rules of config's own fields ---------------------------------------------------------


def _relative_py_file(value: str) -> str | None:
    path = PurePath(value)
    if path.is_absolute() or ".." in path.parts or path.suffix != ".py":
        return f"{value!r} must be a .py path relative to the git root, like 'manage.py' or 'src/manage.py'"
    return None


def _ssh_host(value: str) -> str | None:
    if not value or any(c.isspace() for c in value):
        return f"{value!r} is not a host name or IP address"
    if "@" in value:
        return f"{value!r}: give the user with ssh_user=, not in the host"
    if value.count(":") == 1:
        return f"{value!r}: give the port with ssh_port=, not in the host"
    return None


def _secret_value(value: str) -> str | None:
    if value.startswith(SECRET_ENV_PREFIX):
        name = value[len(SECRET_ENV_PREFIX) :]
        return None if ENV_NAME_RE.fullmatch(name) else f"{value!r}: 'env:' must be followed by a variable name"
    return _no_newline(value)


#: a rolling deploy's batch size: a number of hosts (2) or a share of them ('25%')
BATCH_SIZE = Kind("int or str", lambda value: None if isinstance(value, (int, str)) and not isinstance(value, bool)
                  else f"got {type(value).__name__} ({value!r})")


def not_empty_list(items: list[str]) -> str | None:
    return "must name at least one role, like ['web']" if not items else None


def _no_newline(value: str) -> str | None:
    return "values may not contain newlines (they go into an environment file)" if "\n" in value else None


_env_name = matches(ENV_NAME_RE, "{v!r} is not a valid environment variable name (letters, digits, _)")
_linux_user = matches(LINUX_USER_RE, "{v!r} is not a valid Linux user name (lowercase, digits, _ or -, max 32)")


def _inherited(name: str) -> Any:
    """A HostConfig field overriding DjaployConfig's field `name`: same rules, None = inherit."""
    base = DjaployConfig.__dataclass_fields__[name].metadata
    return field(default=None, metadata={**base, "spec": replace(base["spec"], optional=True), "inherit": True})


@dataclass(init=False, repr=False)
class DjaployConfig(Validated):
    """Project-wide deployment settings (infra/config.py); every host inherits them unless it overrides."""

    #: djaploy 1.x's names for the same options
    _aliases: ClassVar[Mapping[str, str]] = {"versioning_conf": "versioning", "notifications_conf": "notifications"}

    project_name: str = setting(STR, check=matches(
        APP_NAME_RE,
        "{v!r} is not a valid project name: 1-40 lowercase letters, digits, '-' or '_', starting with a letter "
        "(it names the service, the user and the paths)"))
    djaploy_dir: Path | None = setting(DIR, None)
    manage_py_path: str | None = setting(RELATIVE_PATH, None, check=_relative_py_file)
    python_version: str = setting(STR, "3.11", check=matches(r"3\.\d+", "{v!r} is not a Python version like '3.11'"))
    #: where the interpreter comes from (docs/python.md): "auto" (the OS package if the OS has that
    #: version, else uv), "system", "uv", "source" (compiled from python_source, cached on this machine)
    python_provider: str = setting(STR, "auto", check=check_provider)
    python_source: dict[str, str] | None = setting(STR_DICT, None, check=check_source)  # {"url": ..., "sha256": ...}
    python_build_flags: list[str] = setting(STR_LIST, factory=lambda: list(DEFAULT_BUILD_FLAGS), check=check_build_flags)
    python_install_mirror: str | None = setting(STR, None, check=check_url)  # uv: UV_PYTHON_INSTALL_MIRROR
    python_downloads_json_url: str | None = setting(STR, None, check=check_url)  # uv: UV_PYTHON_DOWNLOADS_JSON_URL
    dependency_manager: str | None = setting(STR, None, check=one_of(DEPENDENCY_MANAGERS, "dependency manager"))
    #: the app's folder (/home/{app_user}/apps/{app_name}), services, socket, site and certificate on the
    #: host; None = project_name. Two apps with different names share a host without touching each other.
    app_name: str | None = setting(STR, None, check=matches(
        APP_NAME_RE,
        "{v!r} is not a valid app name: 1-40 lowercase letters, digits, '-' or '_', starting with a letter "
        "(it names the services, the socket and the paths on the host)"))
    app_user: str | None = setting(STR, None, check=_linux_user)
    ssh_user: str = setting(STR, "root", check=matches(r"[A-Za-z0-9_][A-Za-z0-9._-]*", "{v!r} is not a user name"))
    ssh_port: int = setting(INT, 22, check=lambda p: None if 0 < p < 65536 else f"{p} is not a port (1-65535)")
    ssh_key: str | None = setting(FILE, None, check=not_empty)
    ssh_known_hosts_file: str | None = setting(FILE, None, check=not_empty)
    modules: list[str] = setting(STR_LIST, factory=lambda: list(DEFAULT_MODULES), check=unique("module"))
    services: list[str] = setting(STR_LIST, factory=list, check=all_of(each(matches(
        r"[A-Za-z0-9@_.:-]+", "{v!r} is not a systemd unit name")), unique("service")))
    domains: list[str] = setting(STR_LIST, factory=list, check=all_of(each(matches(
        r"(?i)(\*\.)?([a-z0-9_-]+\.)*[a-z0-9-]+",
        "{v!r} is not a domain name (give the bare name, like 'example.com', without scheme or path)")),
        unique("domain")))
    deployment_strategy: str = setting(STR, "in_place", check=one_of(DEPLOYMENT_STRATEGIES, "deployment strategy"))
    health_check_path: str = setting(STR, "/", check=matches(URL_PATH_RE, (
        "{v!r} is not a URL path: '/' followed by letters, digits and - . _ ~ / ? = & : @ + , ! * "
        "(percent-encode anything else, like %20 for a space)")))
    keep_releases: int = setting(INT, 5, check=at_least(2))
    gunicorn_workers: int = setting(INT, 2, check=at_least(1))
    wsgi_application: str | None = setting(STR, None, check=matches(
        r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", "{v!r} must look like 'mysite.wsgi:application'"))
    env_vars: dict[str, str] = setting(STR_DICT, factory=dict, check=all_of(
        each_key(_env_name), each_value(_no_newline)))
    secrets: dict[str, str] = setting(STR_DICT, factory=dict, secret=True, check=all_of(
        each_key(_env_name), each_value(_secret_value)))
    module_options: dict[str, dict[str, Any]] = setting(OPTIONS, factory=dict)
    #: release versions, tags and changelogs (djaploy.release_settings); None: releases are not versioned
    versioning: dict[str, Any] | None = setting(MAPPING, None, secret=True, check=check_versioning)
    #: who hears about deploys (djaploy.release_settings); per environment under its "environments" key
    notifications: dict[str, Any] | None = setting(MAPPING, None, secret=True, check=check_notifications)
    # what `manage.py bootstrap` sets up besides the deploy user, firewall and upgrades
    timezone: str | None = setting(STR, None, check=matches(
        r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", "{v!r} is not a time zone name like 'Europe/Berlin' or 'UTC'"))
    swap_mb: int = setting(INT, 1024, check=at_least(0))  # a swap file on hosts with under 2 GiB of memory; 0: never
    #: background services on the `worker` hosts: name -> "manage.py ..." or a dict (djaploy.worker_settings)
    workers: dict[str, Any] = setting(MAPPING, factory=dict, check=check_workers)
    #: rolling deploys (djaploy.rolling): web hosts switched per batch, 2 or '25%'; None: 1 when the environment
    #: has a load balancer (djaploy.modules.haproxy), else all at once. `deploy --batch-size` overrides it.
    batch_size: int | str | None = setting(BATCH_SIZE, None, check=batch_size_problem)

    def _check(self) -> None:
        if self.app_user is None and not LINUX_USER_RE.fullmatch(self.project_name):
            raise self._error(f"the app user defaults to project_name, but {self.project_name!r} is longer than "
                              "32 characters, too long for a Linux user; set app_user=", "app_user")


@dataclass(init=False, repr=False)
class HostConfig(Validated):
    """One server of an environment (infra/inventory/<env>.py); None fields inherit DjaployConfig's."""

    _positional: ClassVar[tuple[str, ...]] = ("name",)
    _aliases: ClassVar[Mapping[str, str]] = {"ssh_hostname": "ssh_host"}

    name: str = setting(STR, check=matches(
        r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", "{v!r} is not a valid host name: letters, digits, '.', '_' or '-'"))
    ssh_host: str = setting(STR, check=_ssh_host)
    env: str | None = setting(STR, None, check=not_empty)
    ssh_port: int | None = _inherited("ssh_port")
    ssh_user: str | None = _inherited("ssh_user")
    ssh_key: str | None = _inherited("ssh_key")
    ssh_known_hosts_file: str | None = _inherited("ssh_known_hosts_file")
    app_name: str | None = _inherited("app_name")
    app_user: str | None = _inherited("app_user")
    services: list[str] | None = _inherited("services")
    domains: list[str] | None = _inherited("domains")
    deployment_strategy: str | None = _inherited("deployment_strategy")
    health_check_path: str | None = _inherited("health_check_path")
    env_vars: dict[str, str] | None = _inherited("env_vars")
    secrets: dict[str, str] | None = _inherited("secrets")
    gunicorn_workers: int | None = _inherited("gunicorn_workers")
    keep_releases: int | None = _inherited("keep_releases")
    module_options: dict[str, dict[str, Any]] | None = _inherited("module_options")
    timezone: str | None = _inherited("timezone")
    swap_mb: int | None = _inherited("swap_mb")
    python_version: str | None = _inherited("python_version")
    python_provider: str | None = _inherited("python_provider")
    python_source: dict[str, str] | None = _inherited("python_source")
    python_build_flags: list[str] | None = _inherited("python_build_flags")
    python_install_mirror: str | None = _inherited("python_install_mirror")
    python_downloads_json_url: str | None = _inherited("python_downloads_json_url")
    hostname: str | None = setting(STR, None, check=matches(HOSTNAME_RE, "{v!r} is not a host name (letters, digits, "
                                                            "'-', dot-separated labels)"))
    #: what the host runs (djaploy.fleet): web, worker, db, lb; one host may hold several
    roles: list[str] = setting(STR_LIST, factory=lambda: list(DEFAULT_ROLES), check=all_of(
        not_empty_list, each(one_of(ROLES, "role")), unique("role")))
    #: the address the environment's other hosts reach this one at (database, load balancer); None = ssh_host
    private_address: str | None = setting(STR, None, check=_ssh_host)
    #: the web host that runs the once-per-deploy steps (migrations); default: the first web host
    primary: bool = setting(BOOL, False)


def inherited_settings(config: DjaployConfig, host: HostConfig) -> dict[str, Any]:
    """The host's overridable settings with the config's as fallback; dicts merge key by key, host wins.

    module_options merge one level deeper: a host's options for a module update the config's.
    """
    merged: dict[str, Any] = {}
    for f in fields(host):
        if not f.metadata.get("inherit"):
            continue
        default, own = getattr(config, f.name), getattr(host, f.name)
        if f.name == "module_options":
            own = own or {}
            merged[f.name] = {key: {**default.get(key, {}), **own.get(key, {})} for key in {**default, **own}}
        elif isinstance(default, dict):
            merged[f.name] = {**default, **(own or {})}
        else:
            merged[f.name] = default if own is None else own
    return merged


@dataclass(frozen=True)
class Target:
    """One host with every setting resolved; all code after loading reads this, never the configs.

    ssh_key and ssh_known_hosts_file are absolute; secrets hold the real values (never printed).
    """

    name: str
    env: str
    ssh_host: str
    ssh_port: int
    ssh_user: str
    ssh_key: str | None
    ssh_known_hosts_file: str | None
    project_name: str
    app_name: str
    app_user: str
    domains: tuple[str, ...]
    deployment_strategy: str
    health_check_path: str
    keep_releases: int
    gunicorn_workers: int
    python_version: str
    wsgi_application: str | None
    modules: tuple[str, ...]
    services: tuple[str, ...]
    env_vars: dict[str, str] = field(hash=False)
    secrets: dict[str, str] = field(hash=False, metadata={"secret": True})
    module_options: dict[str, dict[str, Any]] = field(hash=False)
    source_file: str
    #: project-wide (one release is built for all hosts, pinned for config's python_version); None = detected
    dependency_manager: str | None = None
    timezone: str | None = None
    swap_mb: int = 1024
    hostname: str | None = None  # bootstrap sets it when given
    roles: tuple[str, ...] = DEFAULT_ROLES
    #: never None: ssh_host when the inventory gives none
    private_address: str = ""
    primary: bool = False
    #: config.py's workers, as given (djaploy.worker_settings.parse_workers reads them)
    workers: dict[str, Any] = field(default_factory=dict, hash=False)
    #: the interpreter (djaploy.python.settings reads these; python_version above: 3.X)
    python_provider: str = "auto"
    python_source: dict[str, str] | None = field(default=None, hash=False)
    python_build_flags: tuple[str, ...] = DEFAULT_BUILD_FLAGS
    python_install_mirror: str | None = None
    python_downloads_json_url: str | None = None
    #: the environment's `notifications` (djaploy.release_settings), as configured: "env:" values
    #: unread until `.resolved()`; a module that reports from the host (rclone) reads them here
    notifications: NotificationSettings = field(default_factory=NotificationSettings, hash=False)

    __repr__ = repr_hiding_secrets
