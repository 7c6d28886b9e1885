"""The modules config.py lists, checked when the infra folder is loaded, before any connection.

Each entry must import as a BaseModule subclass, no two may conflict, and every key of
``module_options`` must name a listed module: a misspelt key would otherwise be silently
ignored. A module's own options are its ``check_target``'s to check (see djaploy.modules.options).
These checks need the modules' code, so they live here and not in config.py, which only
checks values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from djaploy.config import DjaployConfig
from djaploy.errors import ConfigError
from djaploy.modules.base import BaseModule, load_module_class
from djaploy.modules.options import did_you_mean

#: options of deploy_files/ (installed by core, not a module of its own)
DEPLOY_FILES_KEY = "deploy_files"


def check_configured_modules(config: DjaployConfig, *, file: str | None = None) -> None:
    """config.modules load and do not conflict; config.module_options are keyed by them."""
    label = f"{type(config).__name__}.modules"
    classes = {path: load_module_class(path, file=file, field=label) for path in config.modules}
    for path, cls in classes.items():
        for other_path, other in classes.items():
            if other is not cls and other.name and other.name in cls.conflicts:
                raise ConfigError(f"{path!r} cannot be combined with {other_path!r}; remove one", file=file, field=label)
    check_module_options(config.module_options, config.modules, file=file,
                         field=f"{type(config).__name__}.module_options", classes=classes)


def module_keys(path: str, cls: type[BaseModule]) -> list[str]:
    """What module_options may key the module at `path` by: its dotted path, the path's last part, its name."""
    return [key for key in (path, path.rpartition(".")[2], cls.name) if key]


def check_module_options(options: Mapping[str, Any], modules: Sequence[str], *, field: str,
                         file: str | None = None, classes: Mapping[str, type[BaseModule]] | None = None) -> None:
    """Refuse options for a module that is not configured: a misspelt key would be silently ignored."""
    known: list[str] = [DEPLOY_FILES_KEY]
    for path in modules:
        cls = classes[path] if classes else load_module_class(path, file=file, field=field)
        known += module_keys(path, cls)
    for key in options:
        if key not in known:
            raise ConfigError(f"options for {key!r}, which is not in modules{did_you_mean(key, known)}; "
                              f"configured modules: {', '.join(modules) or 'none'}", file=file, field=field)
