"""Shared plumbing for djaploy's management commands: config dir, --env, errors, summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djaploy.actions import RunFailed, RunResult
from djaploy.errors import DjaployError


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
        try:
            result = self.run(config_dir(), options)
        except RunFailed as failure:
            self.print_summary(failure.result)
            raise CommandError(str(failure)) from None
        except DjaployError as error:
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            raise CommandError("interrupted") from None
        self.print_summary(result)

    def run(self, directory: Path, options: dict[str, Any]) -> RunResult:
        raise NotImplementedError

    def print_summary(self, result: RunResult) -> None:
        verb = "would change" if result.dry_run else "changed"
        for host, count in result.changed.items():
            status = "FAILED" if host in result.errors else "ok"
            what = f"{count} step(s) {verb}" if count else "no changes"
            message = result.messages.get(host)
            self.stdout.write(f"[{host}] {status}: {what}" + (f"; {message}" if message else ""))
        if result.ok:
            self.stdout.write(self.style.SUCCESS(f"{result.command} --env {result.env} done in {result.seconds:.1f}s"))
