"""manage.py update_certs [--env E]: show the certificate definitions, and with --env bring the hosts to them.

djaploy 1.x's name. A certificate's definition here is a host's `domains` (and its certs or caddy
module), read from infra/: without --env it is shown for every environment and nothing connects;
with --env, `certs --env E` follows, issuing where a certificate is missing or no longer covers
the domains (after a domain was added, say).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djaploy.certs import certificate_definitions
from djaploy.errors import DjaployError
from djaploy.management.commands._common import config_dir


class Command(BaseCommand):
    help = ("Show each host's certificate definition (domains, and who obtains it) from infra/; with --env, "
            "then issue where a host's certificate is missing or no longer covers its domains (`certs --env E`).")
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env", help="also bring this environment's hosts to their definitions (default: only show)")
        parser.add_argument("--dry-run", action="store_true", help="with --env: show what would change; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            lines = certificate_definitions(config_dir(), options["env"])
        except DjaployError as error:
            raise CommandError(str(error)) from None
        for line in lines:
            self.stdout.write(line)
        if options["env"]:
            extra = ["--dry-run"] if options["dry_run"] else []
            call_command("certs", "--env", options["env"], *extra, verbosity=options["verbosity"],
                         stdout=self.stdout, stderr=self.stderr)
