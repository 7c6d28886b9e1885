"""djaploy: deploy Django projects to your own Linux VPS hosts.

`DjaployConfig` and `HostConfig` are importable from here (``from djaploy import HostConfig``),
as djaploy 1.x allowed. They load on first access: Django imports this package for every
``manage.py`` command, and ``manage.py help`` should not pay for djaploy's config code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "2.0.0.dev0"
__all__ = ["DjaployConfig", "HostConfig", "__version__"]

if TYPE_CHECKING:
    from djaploy.config import DjaployConfig, HostConfig

_LAZY = {"DjaployConfig": "djaploy.config", "HostConfig": "djaploy.config"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'djaploy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
