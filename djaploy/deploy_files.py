"""deploy_files/<env>/: files that mirror the target filesystem, installed on each host of <env>.

    infra/deploy_files/production/etc/nginx/conf.d/gzip.conf     -> /etc/nginx/conf.d/gzip.conf
    infra/deploy_files/production/etc/ledger/ledger.ini.j2       -> /etc/ledger/ledger.ini (rendered)

The core module installs them at the start of its prepare_release hook, on every deploy.

Templates: a file ending in ``.j2`` is rendered with Jinja2 (a missing value is an error, never
an empty string) and installed without the suffix. Values: `template_values`. Secrets are not
among them unless ``module_options["deploy_files"]["template_secrets"] = True``; a template that
uses them is then installed 0600.

djaploy's own units for the app (``/etc/systemd/system/<app_name>.service`` and ``.socket``,
and the bluegreen slots' ``<app_name>-blue``/``-green``) are refused: the systemd module writes
them; a project's ``infra/templates/gunicorn.service.j2`` replaces djaploy's template instead, and
a drop-in (``<unit>.d/*.conf``) adds to it.

Owners and modes: root, 0644 (0755 when the local file is executable); files under the app
user's home belong to the app user; files matching ``secret_files`` globs are 0600 (0700).
Missing folders are created for the file's owner; existing folders are left as they are.

Reloads, only for files whose content, owner or mode changed:
    /etc/systemd/system/<unit> or <unit>.d/*.conf   daemon-reload, then try-restart the unit
                                                    (.service, .timer and .path units that are
                                                    running; sockets are never restarted)
    /etc/nginx/...                                  nginx -t, then a graceful reload
    ``reload`` option {"<glob>": "<unit>" or [...]}  reload the unit if it is running (restart it
                                                    when it cannot reload)

Everything is read and rendered before anything is installed, so a template error stops the
deploy with the file and line named before a host changes (`check_deploy_files`).
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from djaploy import shell
from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError, display_path
from djaploy.layout import AppPaths
from djaploy.modules.options import did_you_mean
from djaploy.system_services import NGINX_RELOAD

if TYPE_CHECKING:  # jinja2 loads when a deploy file is rendered
    import jinja2

FOLDER = "deploy_files"
TEMPLATE_SUFFIX = ".j2"
OPTIONS_KEY = "deploy_files"
OPTION_NAMES = ("reload", "secret_files", "template_secrets")
SYSTEMD_DIR = "/etc/systemd/system/"
NGINX_DIR = "/etc/nginx/"
#: unit types a changed unit file restarts (if running); a socket restart would refuse connections
RESTARTED_UNIT_TYPES = (".service", ".timer", ".path")
NGINX_UNITS = ("nginx", "nginx.service")
UNIT_NAME_RE = re.compile(r"[A-Za-z0-9@_.:*-]+")


@dataclass(frozen=True)
class DeployFile:
    """One file to install: where it comes from, where it goes, and how."""

    local: Path
    remote: str
    owner: str
    mode: str
    content: str | None = None  # the rendered text of a template; None: upload `local` as it is
    reload: tuple[str, ...] = ()  # units the `reload` option names for this file


@dataclass(frozen=True)
class Options:
    """module_options["deploy_files"], checked."""

    reload: Mapping[str, tuple[str, ...]]
    secret_files: tuple[str, ...]
    template_secrets: bool


# --- reading and rendering (local, before any connection) ----------------------------------------


def files_root(config_dir: Path, env: str) -> Path:
    return Path(config_dir) / FOLDER / env


def template_values(env: str, target: Target, release: str) -> dict[str, Any]:
    """What a template sees. No secrets unless the options allow them (templates are then 0600)."""
    return {
        "env": env,
        "release": release,
        "host": target.name,
        "project": target.project_name,
        "app_name": target.app_name,
        "app_user": target.app_user,
        "domains": list(target.domains),
        "env_vars": dict(target.env_vars),
        "python_version": target.python_version,
        "paths": AppPaths.for_target(target),
    }


def read_options(target: Target, config_dir: Path) -> Options:
    """Check module_options["deploy_files"] of a host; errors name the field and what is allowed."""
    raw = target.module_options.get(OPTIONS_KEY, {})
    where = display_path(Path(config_dir) / "config.py")

    def error(key: str, message: str) -> ConfigError:
        return ConfigError(f"host {target.name}: {message}", file=where, field=f"module_options[{OPTIONS_KEY!r}][{key!r}]")

    unknown = sorted(set(raw) - set(OPTION_NAMES))
    if unknown:
        raise error(unknown[0], f"unknown option{did_you_mean(unknown[0], OPTION_NAMES)}; valid: {', '.join(OPTION_NAMES)}")
    reload = raw.get("reload", {})
    if not isinstance(reload, Mapping):
        raise error("reload", 'expected a dict of path glob to systemd unit, like {"/etc/myapp/*": "myapp.service"}')
    units: dict[str, tuple[str, ...]] = {}
    for pattern, value in reload.items():
        names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else ()
        if not isinstance(pattern, str) or not pattern.startswith("/") or not names or not all(
            isinstance(name, str) and UNIT_NAME_RE.fullmatch(name) for name in names
        ):
            raise error("reload", f"{pattern!r}: {value!r}: keys are absolute path globs, values a unit name or a list of them")
        units[pattern] = names
    secret_files = raw.get("secret_files", [])
    if not isinstance(secret_files, (list, tuple)) or not all(isinstance(p, str) and p.startswith("/") for p in secret_files):
        raise error("secret_files", f"expected a list of absolute path globs, got {secret_files!r}")
    template_secrets = raw.get("template_secrets", False)
    if not isinstance(template_secrets, bool):
        raise error("template_secrets", f"expected True or False, got {template_secrets!r}")
    return Options(units, tuple(secret_files), template_secrets)


def _environment(root: Path) -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,  # a missing value is an error, never an empty string
        keep_trailing_newline=True,
        autoescape=False,
    )


def _location(local: Path, exc: BaseException) -> str:
    """'file:line' of a template error: the syntax error's line, or the template line that failed."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(local):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{display_path(local)}:{line}" if line else display_path(local)


def _render(environment: jinja2.Environment, root: Path, local: Path, values: dict[str, Any],
            secrets: Mapping[str, str] | None) -> tuple[str, bool]:
    """The rendered text, and whether it uses secrets. Errors name the file and line."""
    import jinja2
    import jinja2.meta

    try:
        source = local.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"a {TEMPLATE_SUFFIX} template must be UTF-8 text", file=display_path(local)) from None
    try:
        uses_secrets = "secrets" in jinja2.meta.find_undeclared_variables(environment.parse(source))
        if uses_secrets and secrets is None:
            raise ConfigError(
                "the template uses `secrets`, which templates do not get by default; allow it with "
                f'module_options={{"{OPTIONS_KEY}": {{"template_secrets": True}}}} in config.py '
                "(the file is then installed 0600)",
                file=display_path(local),
            )
        context = {**values, "secrets": dict(secrets)} if uses_secrets and secrets is not None else values
        return environment.get_template(local.relative_to(root).as_posix()).render(context), uses_secrets
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{type(exc).__name__}: {exc}; templates get: {', '.join(sorted(values))}",
                          file=_location(local, exc)) from None


def collect(config_dir: Path | None, env: str, target: Target, release: str = "") -> list[DeployFile]:
    """Every file of deploy_files/<env>/ for one host, rendered, with its owner and mode."""
    if config_dir is None:
        return []
    root = files_root(config_dir, env)
    if not root.is_dir():
        return []
    options = read_options(target, config_dir)
    values = template_values(env, target, release)
    secrets = target.secrets if options.template_secrets else None
    environment = _environment(root)
    home = values["paths"].home + "/"
    owned = _djaploys_units(values["paths"])
    result = []
    for local in sorted(p for p in root.rglob("*") if p.is_file()):
        remote = "/" + local.relative_to(root).as_posix()
        installed_as = remote.removesuffix(TEMPLATE_SUFFIX)
        if installed_as in owned:
            raise _replaces_a_unit(local, installed_as, owned[installed_as])
        content, secret = None, False
        if remote.endswith(TEMPLATE_SUFFIX):
            remote = remote[: -len(TEMPLATE_SUFFIX)]
            content, secret = _render(environment, root, local, values, secrets)
        # fnmatch: `*` also crosses `/`, so "/etc/myapp/*" covers the whole tree below.
        secret = secret or any(fnmatch.fnmatchcase(remote, pattern) for pattern in options.secret_files)
        executable = os.access(local, os.X_OK)
        mode = ("700" if executable else "600") if secret else ("755" if executable else "644")
        owner = target.app_user if remote.startswith(home) else "root"
        reload = tuple(unit for pattern, units in options.reload.items() if fnmatch.fnmatchcase(remote, pattern) for unit in units)
        result.append(DeployFile(local, remote, owner, mode, content, reload))
    return result


def _djaploys_units(paths: AppPaths) -> dict[str, str]:
    """The unit files djaploy writes for the app's gunicorn (any strategy): path -> its template."""
    units = {}
    for service in paths.all_services():
        units[service.service_path] = "gunicorn.service.j2"
        units[service.socket_unit_path] = "gunicorn.socket.j2"
    return units


def _replaces_a_unit(local: Path, remote: str, template: str) -> ConfigError:
    """A file over one of djaploy's own units would be overwritten by the systemd module on the
    same deploy (or overwrite it): half applied either way, so it is refused, saying what works."""
    unit = remote.rpartition("/")[2]
    return ConfigError(
        f"installs {remote}, the unit djaploy writes for the app (socket-activated gunicorn, restarted on every "
        f"deploy), so one of the two would silently win. To change the unit, put your own {template} in "
        f"infra/templates/ (djaploy renders it instead of its own, with the same values), or add settings with a "
        f"drop-in: deploy_files/<env>/etc/systemd/system/{unit}.d/override.conf", file=display_path(local))


def check_deploy_files(config_dir: Path, env: str, targets: Iterable[Target], release: str) -> None:
    """Read and render every host's deploy files: bad options or templates fail before connecting."""
    for target in targets:
        collect(config_dir, env, target, release)


# --- reloads ------------------------------------------------------------------------------------


def _systemd_unit(remote: str) -> str | None:
    """The unit a file under /etc/systemd/system/ configures: the unit file or a drop-in's unit."""
    if not remote.startswith(SYSTEMD_DIR):
        return None
    parts = remote[len(SYSTEMD_DIR):].split("/")
    if len(parts) == 1:
        unit = parts[0]
    elif len(parts) == 2 and parts[0].endswith(".d"):
        unit = parts[0][:-2]
    else:
        return None  # e.g. a *.wants/ link: a daemon-reload is all it needs
    if not unit.endswith(RESTARTED_UNIT_TYPES):
        return None
    stem, _, suffix = unit.rpartition(".")
    return f"{stem}*.{suffix}" if stem.endswith("@") else unit  # a template: its running instances


def reload_commands(changed: Iterable[DeployFile]) -> list[tuple[str, str]]:
    """(step, command) for the services that use the changed files, each once, in this order:
    systemd (daemon-reload, restarts), the `reload` option's units, nginx."""
    changed = list(changed)
    paths = [item.remote for item in changed]
    commands = []
    if any(path.startswith(SYSTEMD_DIR) for path in paths):
        step, command = "deploy_files: systemd daemon-reload", shell.systemctl("daemon-reload")
        restart = sorted({unit for path in paths if (unit := _systemd_unit(path))})
        if restart:
            step += f", restart {' '.join(restart)}"
            command += f" && {shell.systemctl('try-restart', *restart)}"
        commands.append((step, command))
    mapped = list(dict.fromkeys(unit for item in changed for unit in item.reload))
    nginx = any(path.startswith(NGINX_DIR) for path in paths) or any(unit in NGINX_UNITS for unit in mapped)
    mapped = [unit for unit in mapped if unit not in NGINX_UNITS]
    if mapped:
        commands.append((f"deploy_files: reload {' '.join(mapped)}", shell.systemctl("try-reload-or-restart", *mapped)))
    if nginx:
        commands.append(("deploy_files: check nginx config and reload", NGINX_RELOAD))
    return commands


# --- installing ---------------------------------------------------------------------------------


def install(ctx: HostContext, files: list[DeployFile]) -> list[DeployFile]:
    """Put each file on the host; returns the files that changed."""
    changed = []
    for item in files:
        step = f"deploy_files: {item.remote}"
        if item.content is None:
            did = ctx.plan.put_file(step, str(item.local), item.remote, owner=item.owner, mode=item.mode)
        else:
            did = ctx.plan.put_text(step, item.remote, item.content, owner=item.owner, mode=item.mode)
        if did:
            changed.append(item)
    return changed


def install_deploy_files(ctx: HostContext) -> None:
    """Install deploy_files/<env>/ on the host and reload what uses the files that changed."""
    files = collect(ctx.config_dir, ctx.env, ctx.target, ctx.release.name if ctx.release else "")
    for step, command in reload_commands(install(ctx, files)):
        ctx.plan.run(step, command)
