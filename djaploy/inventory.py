"""Load the infra folder (config.py and inventory/<env>.py) and resolve it into one Target per host.

Everything here runs before any network connection, so a bad config fails fast with a
``ConfigError`` that names the file (and line, when the traceback has it) and the field.
"""

from __future__ import annotations

import ast
import os
import runpy
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from djaploy.config import SECRET_ENV_PREFIX, DjaployConfig, HostConfig, Target, inherited_settings
from djaploy.configured_modules import check_configured_modules, check_module_options
from djaploy.errors import ConfigError, display_path
from djaploy.fleet import check_fleet
from djaploy.modules.options import MIN_SECRET_LENGTH, did_you_mean
from djaploy.release_settings import notifications_for

__all__ = ["display_path", "list_environments", "load_config", "load_inventory", "load_targets", "resolve_targets"]

HOST_EXAMPLE = 'hosts = [HostConfig("web1", ssh_host="203.0.113.10")]'


# --- executing user files ---------------------------------------------------------------------


@contextmanager
def _importable_from(root: Path) -> Iterator[None]:
    """Put the project root on sys.path while a user file runs, so it can import `infra.whatever`."""
    entry = str(root)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _frames(tb: TracebackType | None) -> Iterator[tuple[str, int]]:
    while tb is not None:
        yield tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next


def _location(path: Path, tb: TracebackType | None) -> str:
    """'file:line' of the deepest line of `path` in the traceback: the user's offending call."""
    lines = [line for filename, line in _frames(tb) if filename == str(path)]
    return f"{display_path(path)}:{lines[-1]}" if lines else display_path(path)


def _run_user_file(path: Path, config_dir: Path) -> dict[str, Any]:
    """Execute a config or inventory file and return its globals; any failure becomes a ConfigError."""
    try:
        with _importable_from(config_dir.parent):
            return runpy.run_path(str(path), run_name=f"djaploy_infra_{path.stem}")
    except ConfigError as err:
        if err.file:
            raise
        raise ConfigError(err.detail, file=_location(path, err.__traceback__), field=err.field) from None
    except SyntaxError as err:
        where = f"{display_path(err.filename or path)}:{err.lineno}" if err.lineno else display_path(path)
        raise ConfigError(f"invalid Python: {err.msg}", file=where) from None
    except Exception as err:  # noqa: BLE001 - a user's file can raise anything; show it without a traceback
        origin = list(_frames(err.__traceback__))[-1]
        raised_in = "" if origin[0] == str(path) else f" (raised at {display_path(origin[0])}:{origin[1]})"
        raise ConfigError(f"{type(err).__name__}: {err}{raised_in}", file=_location(path, err.__traceback__)) from None


# --- config -----------------------------------------------------------------------------------


def load_config(config_dir: Path) -> DjaployConfig:
    """Run <config_dir>/config.py and return its `config`, with djaploy_dir made absolute."""
    config_dir = Path(config_dir).absolute()
    path = config_dir / "config.py"
    hint = f"create {display_path(path)} with config = DjaployConfig(project_name=...)"
    if not config_dir.is_dir():
        raise ConfigError(f"config folder {display_path(config_dir)} does not exist; {hint} "
                          "(or point the DJAPLOY_CONFIG_DIR setting at your infra folder)")
    if not path.is_file():
        raise ConfigError(f"{display_path(path)} not found; {hint}")
    config = _run_user_file(path, config_dir).get("config")
    if config is None:
        raise ConfigError("defines no `config`; add config = DjaployConfig(project_name=...)",
                          file=display_path(path))
    if not isinstance(config, DjaployConfig):
        raise ConfigError(f"`config` must be a DjaployConfig (from djaploy.config import DjaployConfig), "
                          f"got {type(config).__name__}", file=display_path(path))
    with _importable_from(config_dir.parent):  # its modules may be the project's own (infra.modules...)
        check_configured_modules(config, file=_definition(path, "config"))
    config.djaploy_dir = config_dir / (config.djaploy_dir or "")  # a relative one is relative to config.py
    return config


def _definition(path: Path, name: str) -> str:
    """'file:line' of the last top-level assignment to `name` in a user file (the line of
    `config = DjaployConfig(...)`), for errors found after the file ran; the file alone if none."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return display_path(path)
    lines = [node.lineno for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             and any(isinstance(t, ast.Name) and t.id == name
                     for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))]
    return f"{display_path(path)}:{lines[-1]}" if lines else display_path(path)


# --- inventory --------------------------------------------------------------------------------


def list_environments(config_dir: Path) -> list[str]:
    """Environment names: one per inventory/<env>.py; files starting with '_' are helpers, not envs."""
    folder = Path(config_dir) / "inventory"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.py") if p.is_file() and not p.name.startswith("_"))


def _inventory_file(config_dir: Path, env: str) -> Path:
    folder = config_dir / "inventory"
    environments = list_environments(config_dir)
    if env in environments:
        return folder / f"{env}.py"
    if not environments:
        raise ConfigError(f"no environments in {display_path(folder)}; "
                          f"create {display_path(folder / 'production.py')} with {HOST_EXAMPLE}")
    raise ConfigError(f"unknown environment {env!r}{did_you_mean(env, environments)}; "
                      f"environments in {display_path(folder)}: {', '.join(environments)}")


def _check_hosts(hosts: Any, env: str, file: str) -> None:
    """`hosts` must be a non-empty list of HostConfig with unique names, all of this environment."""
    where = display_path(file)
    if hosts is None:
        raise ConfigError(f"defines no `hosts`; add {HOST_EXAMPLE}", file=where)
    if not isinstance(hosts, (list, tuple)):
        raise ConfigError(f"`hosts` must be a list of HostConfig, got {type(hosts).__name__}", file=where)
    if not hosts:
        raise ConfigError(f"`hosts` is empty; add at least one host, e.g. {HOST_EXAMPLE}", file=where)
    seen: set[str] = set()
    for index, host in enumerate(hosts):
        if not isinstance(host, HostConfig):
            raise ConfigError(f"hosts[{index}] is a {type(host).__name__}, expected HostConfig", file=where)
        if host.name in seen:
            raise ConfigError(f"host name {host.name!r} is used more than once; names must be unique "
                              "within an environment", file=where)
        seen.add(host.name)
        if host.env is not None and host.env != env:
            raise ConfigError(f"host {host.name} has env={host.env!r} but is in the {env!r} inventory; "
                              f"remove env= or move the host to inventory/{host.env}.py", file=where, field="env")


def load_inventory(config_dir: Path, env: str) -> list[HostConfig]:
    """Run inventory/<env>.py and return its checked `hosts`."""
    config_dir = Path(config_dir).absolute()
    path = _inventory_file(config_dir, env)
    hosts = _run_user_file(path, config_dir).get("hosts")
    _check_hosts(hosts, env, str(path))
    return list(hosts)


# --- resolving --------------------------------------------------------------------------------


def _absolute(path: str | None, base: Path) -> str | None:
    """Key files: ~ expanded, relative paths taken from the infra folder, so cwd does not matter."""
    if path is None:
        return None
    expanded = Path(path).expanduser()
    return os.path.normpath(expanded if expanded.is_absolute() else base / expanded)


def _resolve_secrets(config: DjaployConfig, host: HostConfig, secrets: Mapping[str, str],
                     environ: Mapping[str, str], source_file: str) -> dict[str, str]:
    """Replace each "env:NAME" by $NAME; an error names the file that defines the secret."""
    config_file = str(Path(config.djaploy_dir or ".") / "config.py")
    resolved = {}
    for key, value in secrets.items():
        if value.startswith(SECRET_ENV_PREFIX):
            where = display_path(source_file if key in (host.secrets or {}) else config_file)
            variable = value[len(SECRET_ENV_PREFIX):]
            reads = f"secret {key} of host {host.name} reads ${variable}"
            if variable not in environ:
                raise ConfigError(f"{reads}, which is not set in your environment", file=where)
            value = environ[variable]
            if "\n" in value:
                raise ConfigError(f"{reads}, whose value contains a newline; secrets go into an environment file",
                                  file=where)
        if 0 < len(value) < MIN_SECRET_LENGTH:
            where = display_path(source_file if key in (host.secrets or {}) else config_file)
            raise ConfigError(f"secret {key} of host {host.name} is {len(value)} characters long: djaploy hides every "
                              f"secret in its output and logs, and one this short would garble them; use at least "
                              f"{MIN_SECRET_LENGTH} characters, or move a value that is not secret to env_vars", file=where)
        resolved[key] = value
    return resolved


def _resolve_target(config: DjaployConfig, host: HostConfig, env: str, environ: Mapping[str, str],
                    source_file: str) -> Target:
    settings = inherited_settings(config, host)
    where = display_path(source_file)
    check_module_options(host.module_options or {}, config.modules, file=where,
                         field=f"host {host.name}: module_options")
    both = sorted(set(settings["env_vars"]) & set(settings["secrets"]))
    if both:
        raise ConfigError(f"host {host.name} sets {', '.join(both)} in both env_vars and secrets; keep each in one",
                          file=where)
    base = Path(config.djaploy_dir or Path.cwd()).absolute()
    return Target(**{
        **settings,
        "name": host.name,
        "env": env,
        "ssh_host": host.ssh_host,
        "ssh_key": _absolute(settings["ssh_key"], base),
        "ssh_known_hosts_file": _absolute(settings["ssh_known_hosts_file"], base),
        "project_name": config.project_name,
        "app_name": settings["app_name"] or config.project_name,
        "app_user": settings["app_user"] or config.project_name,
        "domains": tuple(settings["domains"]),
        "python_build_flags": tuple(settings["python_build_flags"]),
        "dependency_manager": config.dependency_manager,
        "wsgi_application": config.wsgi_application,
        "modules": tuple(config.modules),
        "services": tuple(settings["services"]),
        "secrets": _resolve_secrets(config, host, settings["secrets"], environ, source_file),
        "source_file": source_file,
        "hostname": host.hostname,
        "roles": tuple(host.roles),
        "private_address": host.private_address or host.ssh_host,
        "primary": host.primary,
        "workers": dict(config.workers),
        "notifications": notifications_for(config.notifications, env),
    })


def resolve_targets(config: DjaployConfig, hosts: Sequence[HostConfig], env: str, *,
                    environ: Mapping[str, str] = os.environ, source_file: str | Path) -> list[Target]:
    """Merge config and hosts into Targets, reading "env:" secrets from `environ` (the deployer's shell)."""
    _check_hosts(hosts, env, str(source_file))
    targets = [_resolve_target(config, host, env, environ, str(source_file)) for host in hosts]
    check_fleet(targets, file=str(source_file))
    return targets


def load_targets(config_dir: Path, env: str, *,
                 environ: Mapping[str, str] = os.environ) -> tuple[DjaployConfig, list[Target]]:
    """Everything a command needs before connecting: the config and one resolved Target per host."""
    config_dir = Path(config_dir).absolute()
    config = load_config(config_dir)
    hosts = load_inventory(config_dir, env)
    return config, resolve_targets(config, hosts, env, environ=environ, source_file=_inventory_file(config_dir, env))


class _AnyVariable(Mapping[str, str]):
    """The deployer's environment, where an unset variable reads as a placeholder.

    `status`, `unlock`, `remote`, `logs` and the system checks never send secrets (the server's env file holds
    them), so they must work for someone who has not exported the production secrets.
    """

    PLACEHOLDER = "djaploy-placeholder-for-an-unset-secret"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        return self._environ.get(name, self.PLACEHOLDER)

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def load_targets_without_secrets(config_dir: Path, env: str) -> tuple[DjaployConfig, list[Target]]:
    """load_targets, with placeholders for secrets whose variable is not set here."""
    return load_targets(config_dir, env, environ=_AnyVariable(os.environ))
