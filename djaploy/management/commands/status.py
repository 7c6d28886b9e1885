"""manage.py status --env E: one table for the environment, then per host what is kept, services, lock, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from djaploy import actions
from djaploy.management.commands._common import DjaployCommand
from djaploy.modules.haproxy.status import lb_lines
from djaploy.status import format_status, format_table


class Command(DjaployCommand):
    help = "Show each host's strategy, live release or slot, kept releases, services, lock and recent audit lines."
    dry_run_option = False

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        result = actions.status(directory, options["env"], out=self.stdout, log=self.log_file, verbosity=options["verbosity"])
        for line in format_table(result.data):
            self.stdout.write(line)
        at_lb = lb_lines(result.data)
        for host, status in result.data.items():
            for line in [*format_status(host, status), *at_lb.get(host, [])]:
                self.stdout.write(line)
        return result

    def print_summary(self, result: actions.RunResult) -> None:
        """The status lines are the summary."""
