"""manage.py configureserver --env E: provision the environment's hosts (idempotent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from djaploy import actions
from djaploy.management.commands._common import DjaployCommand


class Command(DjaployCommand):
    help = "Provision the hosts of an environment: app user, Python, web server, directories."

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        return actions.configure_server(
            directory, options["env"], out=self.stdout, log=self.log_file, dry_run=options["dry_run"], verbosity=options["verbosity"]
        )
