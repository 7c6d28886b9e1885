"""manage.py backup --env E [--now] [--list]: the rclone module's backups, run now or listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from djaploy import actions
from djaploy.management.commands._common import DjaployCommand
from djaploy.modules.rclone.backups import backup


class Command(DjaployCommand):
    help = ("Back up the database and media now (through the backup's systemd service, waiting for it), "
            "or list every backup with its size and age.")
    dry_run_option = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--now", action="store_true", help="run a backup now and wait for it; then list")
        parser.add_argument("--list", action="store_true", help="list the backups (the default without --now)")

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        result = backup(directory, options["env"], out=self.stdout, now=options["now"], verbosity=options["verbosity"])
        for host, lines in result.data.items():
            for line in lines:
                self.stdout.write(f"[{host}] {line}")
        return result
