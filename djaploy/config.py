"""The objects users write in their infra folder, and the resolved view the rest of djaploy reads.

``infra/config.py`` defines ``config = DjaployConfig(...)`` (project-wide defaults) and each
``infra/inventory/<env>.py`` defines ``hosts = [HostConfig(...), ...]`` (per-host overrides).
``djaploy.inventory`` merges the two into one frozen ``Target`` per host.

Every field is declared once, as a dataclass field whose metadata says which type it takes and
which rule its value must follow; the constructor derives its checks from that, so a typo or a
wrong type is reported as a ``ConfigError`` naming the field instead of a bare ``TypeError``.
HostConfig's override fields reuse DjaployConfig's rules, so both always validate alike.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path, PurePath
from typing import Any, ClassVar

from djaploy.errors import ConfigError
from djaploy.modules.base import load_module_class

__all__ = [
    "DEFAULT_MODULES",
    "DEPENDENCY_MANAGERS",
    "DEPLOYMENT_STRATEGIES",
    "SECRET_ENV_PREFIX",
    "DjaployConfig",
    "HostConfig",
    "Target",
    "check_module_options",
    "did_you_mean",
    "inherited_settings",
]

DEFAULT_MODULES = ("djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd")
DEPLOYMENT_STRATEGIES = ("in_place", "zero_downtime", "bluegreen")
#: how a project locks its dependencies; detected from its files unless config.py sets one
DEPENDENCY_MANAGERS = ("pip", "poetry", "pipenv", "uv", "pep621")
#: a secret whose value is "env:NAME" is read from the deployer's environment variable NAME
SECRET_ENV_PREFIX = "env:"

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LINUX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
#: a URL path (and query) as it goes on the wire: no space, quote or shell metacharacter ($ ` ( ) ; ...)
URL_PATH_RE = re.compile(r"/(?:[A-Za-z0-9\-._~/?=&:@+,!*]|%[0-9A-Fa-f]{2})*")

#: a rule on an already type-checked value: returns what is wrong with it, or None if it is fine
Check = Callable[[Any], "str | None"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' — typos are the commonest config error."""
    choices = list(choices)
    matches = difflib.get_close_matches(word, choices, n=1)
    if not matches and len(word) >= 3:  # abbreviations score low with difflib: 'prod' for 'production'
        matches = [choice for choice in choices if choice.startswith(word)][:1]
    return f" (did you mean {matches[0]!r}?)" if matches else ""


# --- types: what Python type a field accepts, worded for "expected ..., got ..." --------------


def _got(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} ({text if len(text) <= 40 else text[:37] + '...'})"


@dataclass(frozen=True)
class _Kind:
    """A field's accepted Python type; `problem` returns "got ..." when a value is not of it."""

    label: str
    problem: Callable[[Any], str | None]
    normalize: Callable[[Any], Any] = lambda value: value


def _instance_of(*types: type) -> Callable[[Any], str | None]:
    """bool is refused unless asked for: True is an int to Python but never a port number."""

    def problem(value: Any) -> str | None:
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            return f"got {_got(value)}"
        return None

    return problem


def _list_problem(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return f"got {_got(value)}"
    bad = next((item for item in value if not isinstance(item, str)), None)
    return None if bad is None else f"got a {type(value).__name__} containing {_got(bad)}"


def _dict_of(value_type: type) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return f"got {_got(value)}"
        for key, item in value.items():
            if not isinstance(key, str):
                return f"got a dict with key {_got(key)}"
            if not isinstance(item, value_type):
                return f"got {_got(item)} for key {key!r}"
        return None

    return problem


_STR = _Kind("str", _instance_of(str))
_INT = _Kind("int", _instance_of(int))
_DIR = _Kind("str or Path", _instance_of(str, PurePath), Path)
_FILE = _Kind("str or Path", _instance_of(str, PurePath), str)
_STR_LIST = _Kind("list of str", _list_problem, list)
_STR_DICT = _Kind("dict of str to str", _dict_of(str), dict)
_OPTIONS = _Kind("dict of module name to dict", _dict_of(Mapping), lambda v: {k: dict(o) for k, o in v.items()})


# --- value rules ------------------------------------------------------------------------------


def _matches(regex: str | re.Pattern[str], problem: str) -> Check:
    """`problem` is a format string; {v!r} is the offending value."""
    compiled = re.compile(regex)
    return lambda value: None if compiled.fullmatch(value) else problem.format(v=value)


def _all(*checks: Check) -> Check:
    return lambda value: next((p for check in checks if (p := check(value))), None)


def _each(check: Check) -> Check:
    return lambda items: next((p for item in items if (p := check(item))), None)


def _each_key(check: Check) -> Check:
    return lambda mapping: _each(check)(list(mapping))


def _each_value(check: Check) -> Check:
    return lambda mapping: _each(check)(list(mapping.values()))


def _unique(what: str) -> Check:
    def check(items: Sequence[str]) -> str | None:
        twice = sorted({item for item in items if items.count(item) > 1})
        return f"{what} {', '.join(map(repr, twice))} listed more than once" if twice else None

    return check


def _at_least(minimum: int) -> Check:
    return lambda value: None if value >= minimum else f"must be at least {minimum}, got {value}"


def _one_of(choices: Sequence[str], what: str) -> Check:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return f"unknown {what} {value!r}{did_you_mean(value, choices)}; valid: {', '.join(choices)}"

    return check


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


def _no_newline(value: str) -> str | None:
    return "values may not contain newlines (they go into an environment file)" if "\n" in value else None


_env_name = _matches(ENV_NAME_RE, "{v!r} is not a valid environment variable name (letters, digits, _)")
_linux_user = _matches(LINUX_USER_RE, "{v!r} is not a valid Linux user name (lowercase, digits, _ or -, max 32)")
_not_empty = _matches(r".+", "must not be empty")


# --- fields -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    kind: _Kind
    check: Check | None = None
    optional: bool = False


def _field(kind: _Kind, default: Any = MISSING, *, check: Check | None = None, factory: Any = MISSING,
           secret: bool = False) -> Any:
    """Declare a validated field; a None default makes None an accepted value."""
    metadata = {"spec": _Spec(kind, check, optional=default is None), "secret": secret}
    return field(default=default, default_factory=factory, metadata=metadata)


def _inherited(name: str) -> Any:
    """A HostConfig field overriding DjaployConfig's field `name`: same rules, None = inherit."""
    base = DjaployConfig.__dataclass_fields__[name].metadata
    return field(default=None, metadata={**base, "spec": replace(base["spec"], optional=True), "inherit": True})


def _repr_hiding_secrets(obj: Any) -> str:
    """Like the dataclass repr, but secret values print as '***' so logs and tracebacks never leak them."""
    parts = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("secret") and isinstance(value, Mapping):
            parts.append(f"{f.name}={{{', '.join(f'{key!r}: ***' for key in value)}}}")
        else:
            parts.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


class _Validated:
    """Constructor shared by the config dataclasses: binds, type-checks and rule-checks each field."""

    _positional: ClassVar[tuple[str, ...]] = ()
    #: alternative keyword -> field name
    _aliases: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = self._bind(args, kwargs)
        for f in fields(self):  # type: ignore[arg-type]
            setattr(self, f.name, self._value(f, given))
        self._check()

    __repr__ = _repr_hiding_secrets

    def _check(self) -> None:
        """Rules spanning several fields; each field's own rules have already passed."""

    def _error(self, message: str, name: str | None = None) -> ConfigError:
        cls = type(self).__name__
        return ConfigError(message, field=f"{cls}.{name}" if name else cls)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map arguments to field names, refusing unknown, aliased-twice and surplus positional ones."""
        if len(args) > len(self._positional):
            allowed = ", ".join(self._positional) or "none"
            raise self._error(f"positional arguments allowed: {allowed}; pass the other fields as field=value")
        given = dict(zip(self._positional, args))
        spelled = {name: name for name in given}
        names = [f.name for f in fields(self)]  # type: ignore[arg-type]
        for key, value in kwargs.items():
            name = self._aliases.get(key, key)
            if name not in names:
                hint = did_you_mean(key, [*names, *self._aliases]) or f"; valid fields: {', '.join(names)}"
                raise self._error(f"unknown field {key!r}{hint}")
            if name in given:
                raise self._error(f"give either {spelled[name]!r} or {key!r}, not both"
                                  if spelled[name] != key else f"{key!r} is given twice")
            given[name], spelled[name] = value, key
        return given

    def _value(self, f: Field[Any], given: dict[str, Any]) -> Any:
        spec: _Spec = f.metadata["spec"]
        if f.name not in given:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            raise self._error(f"missing required field {f.name!r}")
        value = given[f.name]
        if value is None and spec.optional:
            return None
        got = spec.kind.problem(value)
        if got:
            raise self._error(f"expected {spec.kind.label}{' or None' if spec.optional else ''}, {got}", f.name)
        value = spec.kind.normalize(value)
        problem = spec.check(value) if spec.check else None
        if problem:
            raise self._error(problem, f.name)
        return value


@dataclass(init=False, repr=False)
class DjaployConfig(_Validated):
    """Project-wide deployment settings (infra/config.py); every host inherits them unless it overrides."""

    project_name: str = _field(_STR, check=_matches(
        r"[a-z][a-z0-9_-]{0,39}",
        "{v!r} is not a valid project name: 1-40 lowercase letters, digits, '-' or '_', starting with a letter "
        "(it names the service, the user and the paths)"))
    djaploy_dir: Path | None = _field(_DIR, None)
    manage_py_path: str | None = _field(_STR, None, check=_relative_py_file)
    python_version: str = _field(_STR, "3.11", check=_matches(r"3\.\d+", "{v!r} is not a Python version like '3.11'"))
    dependency_manager: str | None = _field(_STR, None, check=_one_of(DEPENDENCY_MANAGERS, "dependency manager"))
    app_user: str | None = _field(_STR, None, check=_linux_user)
    ssh_user: str = _field(_STR, "root", check=_matches(r"[A-Za-z0-9_][A-Za-z0-9._-]*", "{v!r} is not a user name"))
    ssh_port: int = _field(_INT, 22, check=lambda p: None if 0 < p < 65536 else f"{p} is not a port (1-65535)")
    ssh_key: str | None = _field(_FILE, None, check=_not_empty)
    ssh_known_hosts_file: str | None = _field(_FILE, None, check=_not_empty)
    modules: list[str] = _field(_STR_LIST, factory=lambda: list(DEFAULT_MODULES), check=_unique("module"))
    services: list[str] = _field(_STR_LIST, factory=list, check=_all(_each(_matches(
        r"[A-Za-z0-9@_.:-]+", "{v!r} is not a systemd unit name")), _unique("service")))
    domains: list[str] = _field(_STR_LIST, factory=list, check=_all(_each(_matches(
        r"(?i)(\*\.)?([a-z0-9_-]+\.)*[a-z0-9-]+",
        "{v!r} is not a domain name (give the bare name, like 'example.com', without scheme or path)")),
        _unique("domain")))
    deployment_strategy: str = _field(_STR, "in_place", check=_one_of(DEPLOYMENT_STRATEGIES, "deployment strategy"))
    health_check_path: str = _field(_STR, "/", check=_matches(URL_PATH_RE, (
        "{v!r} is not a URL path: '/' followed by letters, digits and - . _ ~ / ? = & : @ + , ! * "
        "(percent-encode anything else, like %20 for a space)")))
    keep_releases: int = _field(_INT, 5, check=_at_least(2))
    gunicorn_workers: int = _field(_INT, 2, check=_at_least(1))
    wsgi_application: str | None = _field(_STR, None, check=_matches(
        r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", "{v!r} must look like 'mysite.wsgi:application'"))
    env_vars: dict[str, str] = _field(_STR_DICT, factory=dict, check=_all(
        _each_key(_env_name), _each_value(_no_newline)))
    secrets: dict[str, str] = _field(_STR_DICT, factory=dict, secret=True, check=_all(
        _each_key(_env_name), _each_value(_secret_value)))
    module_options: dict[str, dict[str, Any]] = _field(_OPTIONS, factory=dict)

    def _check(self) -> None:
        if self.app_user is None and not LINUX_USER_RE.fullmatch(self.project_name):
            raise self._error(f"the app user defaults to project_name, but {self.project_name!r} is longer than "
                              "32 characters, too long for a Linux user; set app_user=", "app_user")
        label = f"{type(self).__name__}.modules"
        classes = {path: load_module_class(path, field=label) for path in self.modules}
        for path, cls in classes.items():
            for other_path, other in classes.items():
                if other is not cls and other.name and other.name in cls.conflicts:
                    raise self._error(f"{path!r} cannot be combined with {other_path!r}; remove one", "modules")
        check_module_options(self.module_options, self.modules, field=f"{type(self).__name__}.module_options")


@dataclass(init=False, repr=False)
class HostConfig(_Validated):
    """One server of an environment (infra/inventory/<env>.py); None fields inherit DjaployConfig's."""

    _positional: ClassVar[tuple[str, ...]] = ("name",)
    _aliases: ClassVar[Mapping[str, str]] = {"ssh_hostname": "ssh_host"}

    name: str = _field(_STR, check=_matches(
        r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", "{v!r} is not a valid host name: letters, digits, '.', '_' or '-'"))
    ssh_host: str = _field(_STR, check=_ssh_host)
    env: str | None = _field(_STR, None, check=_not_empty)
    ssh_port: int | None = _inherited("ssh_port")
    ssh_user: str | None = _inherited("ssh_user")
    ssh_key: str | None = _inherited("ssh_key")
    ssh_known_hosts_file: str | None = _inherited("ssh_known_hosts_file")
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


def check_module_options(options: Mapping[str, Any], modules: Sequence[str], *, field: str,
                         file: str | None = None) -> None:
    """Refuse options for a module that is not configured: a misspelt key would be silently ignored.

    A module is keyed by its ``name``, its dotted path or the path's last part ("nginx");
    "deploy_files" keys the options of deploy_files/ (installed by core, not a module of its own).
    """
    known: list[str] = ["deploy_files"]
    for path in modules:
        known += [path, path.rpartition(".")[2], load_module_class(path, file=file, field=field).name]
    known = [key for key in known if key]
    for key in options:
        if key not in known:
            raise ConfigError(f"options for {key!r}, which is not in modules{did_you_mean(key, known)}; "
                              f"configured modules: {', '.join(modules) or 'none'}", file=file, field=field)


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
    #: project-wide like python_version (one release is built for all hosts); None = detected
    dependency_manager: str | None = None

    __repr__ = _repr_hiding_secrets
