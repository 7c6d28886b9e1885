"""manage.py logs --env E [--host NAME] [--follow] [--lines N]: the live app service's journal."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser

from djaploy import remote
from djaploy.errors import DjaployError
from djaploy.management.commands._common import config_dir


class Command(BaseCommand):
    help = "Show the logs of the app's live gunicorn service (journalctl) on each host of an environment."
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env", required=True, help="environment: the name of a file in infra/inventory/")
        parser.add_argument("--host", help="only this host (default: every host, each line prefixed with its name)")
        parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
        parser.add_argument("--lines", "-n", type=int, default=100, help="how many recent lines to show (default 100)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            code = remote.show_logs(config_dir(), options["env"], host=options["host"], lines=options["lines"],
                                    follow=options["follow"], out=self.stdout)
        except DjaployError as error:
            raise CommandError(str(error)) from None
        if code and code != 130:
            raise CommandError(f"reading the logs failed (exit {code})", returncode=code)
