"""manage.py certs --env E [--renew] [--force]: issue or renew certificates, list each host's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from djaploy import actions
from djaploy.certs import certificates, format_certificates
from djaploy.management.commands._common import DjaployCommand


class Command(DjaployCommand):
    help = (
        "Issue missing certificates (certs module: certbot for nginx), or renew them with --renew "
        "(--force: even when not due), then print each certificate's domains and expiry."
    )
    lock_options = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--renew", action="store_true", help="run certbot's renewal now (renews what is due)")
        parser.add_argument("--force", action="store_true", help="renew even when not due (implies --renew)")

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        result = certificates(
            directory, options["env"], out=self.stdout, renew=options["renew"], force=options["force"],
            dry_run=options["dry_run"], verbosity=options["verbosity"], log=self.log_file,
        )
        for host, held in result.data.items():
            for line in format_certificates(host, held):
                self.log_file.write(line + "\n")
                self.stdout.write(line)
        return result
