"""manage.py unlock --env E: break a stale deploy lock on purpose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from djaploy import actions
from djaploy.management.commands._common import DjaployCommand


class Command(DjaployCommand):
    help = "Break the deploy lock on each host (when the deploy that held it is dead)."
    dry_run_option = False

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        return actions.unlock(directory, options["env"], out=self.stdout, log=self.log_file, verbosity=options["verbosity"])
