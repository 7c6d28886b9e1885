"""manage.py activate --env E: bluegreen, switch traffic to the staged slot (checked first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from djaploy import actions
from djaploy.management.commands._common import DjaployCommand


class Command(DjaployCommand):
    help = "bluegreen: check the staged slot, then switch the web server's traffic to it."
    lock_options = True

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        return actions.activate(
            directory, options["env"], out=self.stdout, log=self.log_file, dry_run=options["dry_run"], verbosity=options["verbosity"],
            force_unlock=options["force_unlock"], wsgi_setting=getattr(settings, "WSGI_APPLICATION", None),
        )
