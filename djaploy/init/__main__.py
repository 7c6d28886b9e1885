"""`python -m djaploy.init [flags]`: djaploy_init before djaploy is in INSTALLED_APPS (it adds it there).

The same command and flags as `manage.py djaploy_init`, run in the project's folder; it reads files only,
so Django's settings are not loaded.
"""

from __future__ import annotations

import sys

from django.conf import settings


def main(argv: list[str]) -> None:
    if not settings.configured:
        settings.configure()
    from djaploy.management.commands.djaploy_init import Command

    Command().run_from_argv(["python -m djaploy.init", "djaploy_init", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
