"""The module API. Built-in modules and a user's own modules implement the same hooks.

A module is a class deriving from BaseModule. In `DjaployConfig.modules` it is named by a
dotted path: a Python module that defines a `Module` class (``"djaploy.modules.nginx"``) or
exactly one BaseModule subclass (djaploy 1.x's form), or the class itself
(``"infra.modules.nightly.NightlyReport"``). A project's own modules live
in its infra folder (``infra/modules/``), importable as ``infra.modules.<name>``.

Hooks run per host, in this order per command:

    configureserver:    configure_server
    deploy:             prepare_data     (before migrations: e.g. restore a database from a replica)
                        prepare_release  (code and venv are on the host, release not serving yet)
                        publish          (make the release serve: services, web server)
                        route_traffic    (when the deploy moves traffic: in_place, zero_downtime,
                                          bluegreen's first deploy or --activate)
                        verify           (the release answers; raise to fail the deploy)
    activate, rollback: route_traffic    (traffic now goes to ctx.service: the live link moved)
                        verify
    zero_downtime rollback: publish, route_traffic, verify (the older release starts in the idle lane)

Each hook runs for every module, in the order the modules are listed, before the next hook
starts: all prepare_data hooks, then all prepare_release hooks, and so on. One more hook is no
step: ``environment(ctx)`` returns variables for the app (``ctx.app_environment()`` merges them).

Each hook receives a context (``djaploy.context.HostContext``) with the resolved host config,
the remote paths (``ctx.paths``) and the plan (``ctx.plan``) whose methods change the host.
Changes go through ``ctx.plan``; a hook may also call pyinfra operations itself
(``from pyinfra.operations import apt``; ``apt.packages(...)``): they run on the hook's host, in
order, reported, dry-run and failing like plan steps (djaploy.direct_ops). A 1.x-style
``deploy(self, host, artifact_path)`` runs right after the module's prepare_release (LEGACY_HOOKS);
a method named almost like a hook (``configure_sever``) is refused when the module loads.
An exception a hook raises fails the command on that host; `call_hook` reports it with the
module, the hook and the line that raised it, without a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

from djaploy.errors import ConfigError, DjaployError, display_path
from djaploy.modules.options import checked_options

if TYPE_CHECKING:
    from pathlib import Path

    from djaploy.config import Target
    from djaploy.context import HostContext

#: every hook, in the order a deploy runs them (configure_server belongs to configureserver)
HOOKS = ("configure_server", "prepare_data", "prepare_release", "publish", "route_traffic", "verify")
#: djaploy 1.x's `deploy(self, host, artifact_path)`: still called, right after the module's
#: prepare_release, with the context and the folder the release was extracted to on the host
LEGACY_HOOKS = {"deploy": "prepare_release"}


class BaseModule:
    """Base class for every djaploy module. Override the hooks you need; all default to no-op."""

    #: short name shown in progress output and errors, and the key of its module_options
    name: ClassVar[str] = ""
    #: modules that cannot be combined with this one (by name)
    conflicts: ClassVar[tuple[str, ...]] = ()
    #: apt packages configureserver installs for this module
    apt_packages: ClassVar[tuple[str, ...]] = ()
    #: the names its module_options take: the default check_target refuses others (with "did you
    #: mean"); () takes none; None leaves all checking to the module's own check_target
    option_names: ClassVar[tuple[str, ...] | None] = None

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        """Check this host's options locally, before any connection; raise ConfigError naming
        the file and field. Every command calls it, so bad options never touch a host."""
        if self.option_names is not None:
            checked_options(target, config_dir, self, self.option_names)

    def secret_values(self, target: Target, config_dir: Path | None) -> list[str]:
        """Values of this host's options that must never show in output or logs (passwords, API
        tokens: "env:" ones as read from the deployer's environment, where set). Called once per
        command, after check_target; djaploy hides them as it hides `secrets`."""
        return []

    def configure_server(self, ctx: HostContext) -> None:
        """Provision the host (packages, users, directories, base config). Must be idempotent."""

    def prepare_data(self, ctx: HostContext) -> None:
        """Runs before any module's prepare_release, so before migrations (restore data here)."""

    def prepare_release(self, ctx: HostContext) -> None:
        """The new release's code and virtualenv are on the host; it is not serving yet."""

    def publish(self, ctx: HostContext) -> None:
        """Make the new release serve (write units and sites, restart or reload)."""

    def verify(self, ctx: HostContext) -> None:
        """Check the release works; raise (or let a plan step fail) to fail the deploy."""

    def route_traffic(self, ctx: HostContext) -> None:
        """Traffic was just switched to `ctx.service` (its socket is behind the live link)."""

    def environment(self, ctx: HostContext) -> dict[str, str]:
        """Variables this module gives the app: merged into `ctx.app_environment()`, so the env file,
        every service and every remote manage.py see them (a database's URL, say). Not a step: it
        must not change the host. The host's own env_vars and secrets win over these."""
        return {}

    def __repr__(self) -> str:
        return f"<module {self.name or type(self).__name__}>"


# --- hook errors --------------------------------------------------------------------------------


class HookError(DjaployError):
    """A module's hook raised something other than a DjaployError (a bug in the module)."""


def _raised_at(exc: BaseException, prefer_file: str | None = None) -> str:
    """' (at file:line)' of the deepest line of `prefer_file` in the traceback (the user's own
    line), plus where it was raised when that is elsewhere (a library the line called)."""
    frames = [(frame.f_code.co_filename, line) for frame, line in traceback.walk_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename:
        frames.append((exc.filename, exc.lineno or 0))
    if not frames:
        return ""
    own = [frame for frame in frames if frame[0] == prefer_file]
    where = [own[-1]] if own else []
    if frames[-1] not in where:
        where.append(frames[-1])
    places = [f"{display_path(file)}:{line}" for file, line in where]
    return f" (at {places[0]}" + (f", raised in {places[1]}" if len(places) > 1 else "") + ")"


def _module_label(module: BaseModule) -> str:
    cls = type(module)
    path = f"{cls.__module__}.{cls.__qualname__}"
    return f"{module.name!r} ({path})" if module.name else path


def call_hook(ctx: HostContext, module: BaseModule, hook: str) -> None:
    """Run one module's hook; a bug in it becomes a HookError naming host, module, hook and line.

    DjaployErrors (a failed plan step, a deliberate error) already say what went wrong and
    pass unchanged; KeyboardInterrupt and greenlet kills are not Exceptions and pass too.
    """
    calls: list[tuple[str, tuple[object, ...]]] = [(hook, (ctx,))]
    calls += [(legacy, (ctx, ctx.code_dir)) for legacy, runs_in in LEGACY_HOOKS.items()
              if runs_in == hook and callable(getattr(module, legacy, None))]
    try:
        with ctx.plan.direct_operations(module.name or type(module).__name__):
            for method, args in calls:
                hook = method
                getattr(module, method)(*args)
    except DjaployError:
        raise
    except Exception as exc:
        from djaploy.redact import Redactor

        try:
            source = inspect.getsourcefile(type(module))
        except TypeError:  # a class without a source file
            source = None
        # The message reaches the output and the audit log: never with a secret in it.
        redact = Redactor([*ctx.target.secrets.values(),
                           *(value for loaded in ctx.modules for value in loaded.secret_values(ctx.target, ctx.config_dir))])
        raise HookError(
            f"[{ctx.target.name}] module {_module_label(module)} failed in its {hook} hook: "
            f"{type(exc).__name__}: {redact(str(exc))}{_raised_at(exc, source)}\n"
            f"This is an error in the module's code; fix it, or remove the module from config.py's modules."
        ) from exc


# --- loading ------------------------------------------------------------------------------------


def _import(name: str, dotted_path: str, error: Callable[[str], ConfigError]) -> ModuleType | None:
    """Import `name`; None when it (or a package above it) does not exist. Any other failure
    while importing it (a syntax error, a missing dependency, an exception at import) is a
    ConfigError that says what failed and where."""
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - a user's module can raise anything at import time
        if isinstance(exc, ModuleNotFoundError) and exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise error(f"importing {dotted_path!r} failed: {type(exc).__name__}: {exc}{_raised_at(exc)}") from None


#: files of djaploy.modules that are the module API, not modules
API_FILES = ("base", "options")


def _builtin_hint() -> str:
    """The built-in modules there are, listed from this package so the hint never goes stale."""
    package = importlib.import_module("djaploy.modules")
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.name not in API_FILES)
    return "built-in modules are " + ", ".join(f"djaploy.modules.{name}" for name in names)


def stop_other_web_server(ctx: HostContext, other: str) -> None:
    """Switching web servers (nginx <-> caddy) on a live host: the other one holds ports 80/443,
    so stop and disable it before installing this one. Checked first: a no-op when it is absent."""
    from djaploy import shell

    if ctx.plan.query(f"{shell.systemctl('is-active', other, flags=['--quiet'])} || "
                      f"{shell.systemctl('is-enabled', other, flags=['--quiet'])}").ok:
        ctx.plan.run(f"stop and disable {other} (replaced)", shell.systemctl("disable", other, flags=["--now"]))


def _only_module_class(python_module: ModuleType, dotted_path: str,
                       error: Callable[[str], ConfigError]) -> type[BaseModule]:
    """A Python module without a `Module` class: the one BaseModule subclass it defines (djaploy
    1.x's form, ``class MyModule(BaseModule)`` named by its file's path); none or several is an error."""
    own = [value for value in vars(python_module).values() if isinstance(value, type) and issubclass(value, BaseModule)
           and value is not BaseModule and value.__module__ == python_module.__name__]
    if len(own) == 1:
        return own[0]
    if not own:
        raise error(f"{dotted_path!r} is a Python module but defines no BaseModule subclass; define "
                    "`class Module(BaseModule)` there or name the class itself")
    names = ", ".join(sorted(cls.__name__ for cls in own))
    raise error(f"{dotted_path!r} defines {len(own)} BaseModule subclasses ({names}) and no `Module`; "
                f"name the one you mean, like {dotted_path + '.' + sorted(cls.__name__ for cls in own)[0]!r}")


def load_module_class(dotted_path: str, *, file: str | None = None, field: str = "modules") -> type[BaseModule]:
    """Import a module class from a dotted path; errors name the config file and field."""

    def error(message: str) -> ConfigError:
        return ConfigError(message, file=file, field=field)

    if not isinstance(dotted_path, str) or not dotted_path:
        raise error(f"module entries must be dotted paths (strings), got {dotted_path!r}")
    python_module = _import(dotted_path, dotted_path, error)
    if python_module is not None:
        candidate = getattr(python_module, "Module", None) or _only_module_class(python_module, dotted_path, error)
    else:
        parent, _, attr = dotted_path.rpartition(".")
        parent_module = _import(parent, dotted_path, error) if parent else None
        candidate = getattr(parent_module, attr, None)
        if candidate is None:
            raise error(f"unknown module {dotted_path!r}: no such Python module or class; {_builtin_hint()}")
    if not (isinstance(candidate, type) and issubclass(candidate, BaseModule)):
        raise error(f"{dotted_path!r} is not a BaseModule subclass (from djaploy.modules.base import BaseModule)")
    problem = _hook_name_problem(candidate)
    if problem:
        raise error(f"{dotted_path!r}: {problem}")
    return candidate


def _hook_name_problem(cls: type[BaseModule]) -> str | None:
    """A method named almost like a hook would never run: refuse it rather than ignore it.
    A legacy hook must take what it is called with (host, artifact_path)."""
    import difflib

    hooks = [*HOOKS, "environment", *LEGACY_HOOKS]
    own = {name for klass in cls.__mro__ if klass not in (BaseModule, object) for name, value in vars(klass).items()
           if callable(value) and not name.startswith("_") and not hasattr(BaseModule, name)}
    for name in sorted(own - set(hooks)):
        close = difflib.get_close_matches(name, hooks, n=1, cutoff=0.75)
        if close:
            return (f"its method {name!r} is not a hook and would never run; did you mean {close[0]!r}? "
                    f"hooks: {', '.join(hooks)}")
    legacy = getattr(cls, "deploy", None)
    if callable(legacy):
        try:
            inspect.signature(legacy).bind(None, None, None)
        except TypeError:
            return "its deploy hook must take (self, host, artifact_path), as in djaploy 1.x"
    return None


def load_modules(dotted_paths: list[str] | tuple[str, ...], *, file: str | None = None) -> list[BaseModule]:
    """Instantiate the configured modules in the order listed, refusing combinations that conflict."""
    modules = []
    for path in dotted_paths:
        cls = load_module_class(path, file=file)
        try:
            modules.append(cls())
        except Exception as exc:  # noqa: BLE001 - a user's __init__ can raise anything
            raise ConfigError(f"creating {path!r} failed: {type(exc).__name__}: {exc}{_raised_at(exc)}",
                              file=file, field="modules") from None
    names = {module.name for module in modules if module.name}
    for module in modules:
        clash = names.intersection(module.conflicts)
        if clash:
            raise ConfigError(
                f"modules {module.name!r} and {min(clash)!r} cannot be used together; keep one",
                file=file,
                field="modules",
            )
    return modules
