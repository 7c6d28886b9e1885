"""manage.py restore --env E [--timestamp T] [--force]: the database back from its Litestream replica;
manage.py restore --env E --backup latest|ID [--media] [--force]: from a backup of the rclone module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from djaploy import actions
from djaploy.management.commands._common import DjaployCommand
from djaploy.modules.rclone.restore import restore_backup
from djaploy.restore import TIMESTAMP_EXAMPLE, restore


class Command(DjaployCommand):
    help = ("Stop the app, restore its SQLite database from the Litestream replica, or with --backup from a backup "
            "of the rclone module (checked before it replaces anything), and start the app again.")
    dry_run_option = False
    lock_options = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--timestamp", metavar="T",
                            help=f"restore the state at this moment (RFC 3339, like {TIMESTAMP_EXAMPLE}); default: latest")
        parser.add_argument("--backup", metavar="ID",
                            help="restore this backup of the rclone module ('latest', or an ID from `backup --list`)")
        parser.add_argument("--media", action="store_true", help="with --backup: restore the media folder too")
        parser.add_argument("--force", action="store_true", help="replace a database that holds data (it is kept beside)")

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        common = {"out": self.stdout, "force": options["force"], "verbosity": options["verbosity"],
                  "force_unlock": options["force_unlock"], "wsgi_setting": getattr(settings, "WSGI_APPLICATION", None)}
        if options["backup"]:
            if options["timestamp"]:
                raise CommandError("--timestamp is for Litestream's replica; with --backup, name the backup (see `backup --list`)")
            result = restore_backup(directory, options["env"], backup=options["backup"], media=options["media"], **common)
        elif options["media"]:
            raise CommandError("--media restores the media folder of a backup: give --backup latest (or an ID) too")
        else:
            result = restore(directory, options["env"], timestamp=options["timestamp"], **common)
        for host, report in result.data.items():
            for line in report.lines():
                self.stdout.write(f"[{host}] {line}")
        return result
