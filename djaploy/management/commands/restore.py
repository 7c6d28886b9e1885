"""manage.py restore --env E [--timestamp T] [--force]: the database back from its Litestream replica."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from djaploy import actions
from djaploy.management.commands._common import DjaployCommand
from djaploy.restore import TIMESTAMP_EXAMPLE, restore


class Command(DjaployCommand):
    help = ("Stop the app, restore its SQLite database from the Litestream replica (checked before it replaces "
            "anything), and start the app again.")
    dry_run_option = False
    lock_options = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--timestamp", metavar="T",
                            help=f"restore the state at this moment (RFC 3339, like {TIMESTAMP_EXAMPLE}); default: latest")
        parser.add_argument("--force", action="store_true", help="replace a database that holds data (it is kept beside)")

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        result = restore(
            directory, options["env"], out=self.stdout, timestamp=options["timestamp"], force=options["force"],
            verbosity=options["verbosity"], force_unlock=options["force_unlock"],
            wsgi_setting=getattr(settings, "WSGI_APPLICATION", None),
        )
        for host, report in result.data.items():
            for line in report.lines():
                self.stdout.write(f"[{host}] {line}")
        return result
