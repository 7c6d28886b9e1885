"""manage.py verify [--env E] [--remote]: check config, project, deployed settings (and hosts); change nothing."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djaploy.checks import local_secret_key
from djaploy.management.commands._common import config_dir, open_run_log
from djaploy.verify import Options, verify
from djaploy.verify.findings import Report


class Command(BaseCommand):
    help = ("Check the infra config, the project and the Django settings as each host would run them "
            "(with --remote also SSH, sudo, OS and Python on each host). Changes nothing; exits non-zero on errors.")
    requires_system_checks: ClassVar[list[str]] = []  # it runs the same checks itself, and reports them better

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env", help="only this environment (default: every file in infra/inventory/)")
        parser.add_argument("--remote", action="store_true", help="also connect to each host: SSH, sudo, OS, Python")
        parser.add_argument("--verbose", action="store_true",
                            help="also show what each host resolves to (user, address, app folder, strategy, domains, "
                                 "modules); the same as --verbosity 2")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = config_dir()
        report = verify(directory, Options(env=options["env"], remote=options["remote"],
                                           local_secret_key=local_secret_key(),
                                           wsgi_setting=getattr(settings, "WSGI_APPLICATION", None)))
        log_path, self.log_file = open_run_log(directory, "verify", options["env"] or "")
        with self.log_file:
            self.print_report(report, 2 if options["verbose"] else options["verbosity"])
            summary = f"verify: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
            self.log_file.write(summary + "\n")
        if report.errors:
            raise CommandError(f"{summary}\nfull log: {log_path}")
        self.stdout.write(self.style.SUCCESS(summary))

    def say(self, text: str, style: Any = str) -> None:
        """To the terminal (styled) and to the run log (plain)."""
        self.stdout.write(style(text))
        self.log_file.write(text + "\n")

    def print_report(self, report: Report, verbosity: int) -> None:
        for line in report.resolved:
            if verbosity >= 2:
                self.stdout.write(f"host    {line}")
            self.log_file.write(f"host    {line}\n")
        for line in report.passed:
            if verbosity >= 1:
                self.stdout.write(f"ok      {line}")
            self.log_file.write(f"ok      {line}\n")
        for finding in report.findings:
            style = self.style.ERROR if finding.level == "error" else self.style.WARNING
            self.say(f"{finding.level.upper():7} djaploy.{finding.id} {finding.text()}", style)
            self.say(f"        fix: {finding.hint}")
