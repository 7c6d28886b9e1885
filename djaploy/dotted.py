"""Import a user's callable by dotted path ('infra.notify.send' or 'infra.notify:send').

Used for the hooks users plug in by name (changelog generators, notifiers); an error names
the config field so the user knows which entry to fix.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from djaploy.errors import ConfigError


def load_callable(path: str, *, field: str, root: str | None = None) -> Callable[..., Any]:
    """`root` (the project's folder, which holds infra/) is importable while the module loads."""
    module_name, _, attribute = path.replace(":", ".").rpartition(".")
    added = root is not None and root not in sys.path
    if added:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - a user's module can raise anything on import
        raise ConfigError(f"cannot import {module_name!r} for {path!r}: {type(error).__name__}: {error}",
                          field=field) from None
    finally:
        if added and root in sys.path:
            sys.path.remove(root)
    target = getattr(module, attribute, None)
    if not callable(target):
        raise ConfigError(f"{path!r}: {module_name} has no callable {attribute!r}", field=field)
    return target
