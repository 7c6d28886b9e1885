"""manage.py rollback --env E [--to RELEASE]: back to the previous release or slot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from djaploy import actions
from djaploy.management.commands._common import DjaployCommand


class Command(DjaployCommand):
    help = "Go back to the previous release (zero_downtime) or the previous slot (bluegreen)."
    lock_options = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--to", metavar="RELEASE", help="zero_downtime: the kept release to go back to")

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        return actions.rollback(
            directory, options["env"], out=self.stdout, log=self.log_file, dry_run=options["dry_run"], verbosity=options["verbosity"],
            to=options["to"], force_unlock=options["force_unlock"], wsgi_setting=getattr(settings, "WSGI_APPLICATION", None),
        )
