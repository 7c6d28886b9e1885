"""The module API. Built-in modules and a user's own modules implement the same hooks.

A module is a class deriving from BaseModule. In `DjaployConfig.modules` it is named by a
dotted path: either a Python module that defines a `Module` class (``"djaploy.modules.nginx"``)
or the class itself (``"infra.modules.timers.NightlyReport"``).

Hooks run per host, in the order the modules are listed, and in this order per command:

    configureserver:    configure_server
    deploy:             prepare_data     (before migrations: e.g. restore a database from a replica)
                        prepare_release  (code and venv are on the host, release not serving yet)
                        publish          (make the release serve: services, web server)
                        verify           (the release answers; raise to fail the deploy)
    activate, rollback: route_traffic    (traffic now goes to ctx.service: the live link moved)
                        verify

Each hook receives a context (``djaploy.context.HostContext``) with the resolved host config,
the remote paths (``ctx.paths``) and the plan (``ctx.plan``) whose methods change the host.
Modules never talk to pyinfra or SSH directly: every change goes through ``ctx.plan``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

from djaploy.errors import ConfigError

if TYPE_CHECKING:
    from djaploy.context import HostContext


class BaseModule:
    """Base class for every djaploy module. Override the hooks you need; all default to no-op."""

    #: short name shown in progress output ("nginx", "systemd", ...)
    name: ClassVar[str] = ""
    #: modules that cannot be combined with this one (by name)
    conflicts: ClassVar[tuple[str, ...]] = ()
    #: apt packages configureserver installs for this module
    apt_packages: ClassVar[tuple[str, ...]] = ()

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

    def __repr__(self) -> str:
        return f"<module {self.name or type(self).__name__}>"


def load_module_class(dotted_path: str, *, file: str | None = None, field: str = "modules") -> type[BaseModule]:
    """Import a module class from a dotted path; errors name the config file and field."""
    if not isinstance(dotted_path, str) or not dotted_path:
        raise ConfigError(f"module entries must be dotted paths (strings), got {dotted_path!r}", file=file, field=field)
    candidate = None
    try:
        python_module = importlib.import_module(dotted_path)
        candidate = getattr(python_module, "Module", None)
        if candidate is None:
            raise ConfigError(
                f"{dotted_path!r} is a Python module but defines no `Module` class; "
                "define `class Module(BaseModule)` there or name the class itself",
                file=file,
                field=field,
            )
    except ModuleNotFoundError as exc:
        parent, _, attr = dotted_path.rpartition(".")
        if exc.name and not dotted_path.startswith(exc.name) or not parent:
            raise ConfigError(
                f"unknown module {dotted_path!r} (could not import {exc.name!r}); "
                "built-in modules are djaploy.modules.core, .nginx, .systemd",
                file=file,
                field=field,
            ) from None
        try:
            candidate = getattr(importlib.import_module(parent), attr, None)
        except ModuleNotFoundError:
            candidate = None
        if candidate is None:
            raise ConfigError(
                f"unknown module {dotted_path!r}: no such Python module or class; "
                "built-in modules are djaploy.modules.core, .nginx, .systemd",
                file=file,
                field=field,
            ) from None
    if not (isinstance(candidate, type) and issubclass(candidate, BaseModule)):
        raise ConfigError(f"{dotted_path!r} is not a BaseModule subclass", file=file, field=field)
    return candidate


def load_modules(dotted_paths: list[str] | tuple[str, ...], *, file: str | None = None) -> list[BaseModule]:
    """Instantiate the configured modules in order, refusing combinations that conflict."""
    modules = [load_module_class(path, file=file)() for path in dotted_paths]
    names = {module.name for module in modules if module.name}
    for module in modules:
        clash = names.intersection(module.conflicts)
        if clash:
            raise ConfigError(
                f"modules {module.name!r} and {sorted(clash)[0]!r} cannot be used together; keep one",
                file=file,
                field="modules",
            )
    return modules
