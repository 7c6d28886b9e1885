"""manage.py sync_certs --env E [--force]: every host holds valid certificates for its domains.

djaploy 1.x's name. Here it is `manage.py certs --env E --renew`: issue where a certificate is
missing or no longer covers the host's domains, renew where one is due, then list them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from djaploy.management.commands import certs


class Command(certs.Command):
    help = ("Make sure every host has valid certificates for its domains: issue where missing or no longer "
            "covering them, renew where due (the same as `certs --renew`), then print each one's domains and expiry.")

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(renew=True)

    def run(self, directory: Any, options: dict[str, Any]) -> Any:
        return super().run(directory, {**options, "renew": True})
