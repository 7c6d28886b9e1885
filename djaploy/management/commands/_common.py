"""Shared plumbing for djaploy's management commands: config dir, --env, errors, summaries."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djaploy.session import RunFailed, RunResult
from djaploy.errors import DjaployError
from djaploy.summary import summary_lines
from djaploy.timings import mark_handle_started, write_timings_file


def config_dir() -> Path:
    """DJAPLOY_CONFIG_DIR, default BASE_DIR / "infra"."""
    configured = getattr(settings, "DJAPLOY_CONFIG_DIR", None)
    if configured:
        return Path(configured).resolve()
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir is None:
        raise CommandError("set DJAPLOY_CONFIG_DIR (or BASE_DIR) in your settings so djaploy finds infra/")
    return (Path(base_dir) / "infra").resolve()


class DjaployCommand(BaseCommand):
    """Base for commands that act on one environment's hosts."""

    requires_system_checks: list[str] = []  # deploying must not depend on the local DB/checks

    #: commands that change hosts take --dry-run; lock-taking ones take --force-unlock
    dry_run_option = True
    lock_options = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env", required=True, help="environment: the name of a file in infra/inventory/")
        if self.dry_run_option:
            parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
        if self.lock_options:
            parser.add_argument(
                "--force-unlock", action="store_true", help="break a stale deploy lock first (only when its holder is dead)"
            )

    def handle(self, *args: Any, **options: Any) -> None:
        mark_handle_started()
        directory = config_dir()
        self.log_path, self.log_file = open_run_log(directory, self.command_name(), options.get("env", ""))
        try:
            try:
                result = self.run(directory, options)
            except RunFailed as failure:
                self.print_summary(failure.result)
                raise self.fail(str(failure)) from None
            except DjaployError as error:
                raise self.fail(str(error)) from None
            except KeyboardInterrupt:
                raise self.fail("interrupted") from None
            self.print_summary(result)
        finally:
            self.log_file.close()

    def command_name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]

    def fail(self, message: str) -> CommandError:
        """Record the error in the run log too, and name the log in the message."""
        self.log_file.write(f"ERROR: {message}\n")
        return CommandError(f"{message}\nfull log: {self.log_path}")

    def run(self, directory: Path, options: dict[str, Any]) -> RunResult:
        raise NotImplementedError

    def print_summary(self, result: RunResult) -> None:
        write_timings_file(result.command, result.seconds, result.timings)
        for line in summary_lines(result, self.log_path):
            self.log_file.write(line + "\n")
            self.stdout.write(line)
        if result.ok:
            done = f"{result.command} --env {result.env} done in {result.seconds:.1f}s"
            self.log_file.write(done + "\n")
            self.stdout.write(self.style.SUCCESS(done))


def open_run_log(directory: Path, command: str, env: str) -> tuple[Path, TextIO]:
    """A new log file for this run in <project>/.djaploy/logs/ (a folder git ignores by itself)."""
    base = directory.parent / ".djaploy"
    logs = base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# djaploy's local files (run logs): never commit them\n*\n")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = logs / f"{stamp}-{command}-{env or 'all'}.log"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    handle = os.fdopen(descriptor, "w", encoding="utf-8")
    handle.write(f"djaploy {command} --env {env} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    return path, handle
