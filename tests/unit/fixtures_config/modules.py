"""Module classes the config tests name by dotted path (the built-in modules may not exist yet)."""

from djaploy.modules.base import BaseModule

CUSTOM = "tests.unit.fixtures_config.modules.Custom"
OTHER = "tests.unit.fixtures_config.modules.Other"
CLASHING = "tests.unit.fixtures_config.modules.Clashing"


class Custom(BaseModule):
    name = "custom"


class Other(BaseModule):
    name = "other"


class Clashing(BaseModule):
    name = "clashing"
    conflicts = ("custom",)


class NotAModule:
    """Importable, but not a BaseModule subclass."""
