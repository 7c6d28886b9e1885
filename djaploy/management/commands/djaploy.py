"""manage.py djaploy <command> [options]: every djaploy command under one name, as djaploy 1.x had it.

`manage.py djaploy deploy --env production --latest` is `manage.py deploy --env production --latest`:
the subcommand is the individual command itself, with its options and its help
(`manage.py djaploy deploy --help`). Nothing is duplicated, so the two can never drift apart.
"""

from __future__ import annotations

import argparse
import pkgutil
import sys
from typing import Any, ClassVar

from django.core.management import call_command, load_command_class
from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter

from djaploy.modules.options import did_you_mean

APP = "djaploy"
PREFIX = f"{APP}_"  # djaploy_init is `manage.py djaploy init` (a bare `init` would clash with other apps)


class _ListingFormatter(argparse.RawDescriptionHelpFormatter, DjangoHelpFormatter):
    """Django's help layout, with the list of commands kept one per line."""


def subcommands() -> list[str]:
    """djaploy's own management commands (this package's modules), but this one; without the djaploy_ prefix."""
    from djaploy.management import commands

    return sorted(info.name.removeprefix(PREFIX) for info in pkgutil.iter_modules(commands.__path__)
                  if not info.name.startswith("_") and info.name != APP)


def module_of(name: str) -> str:
    """The command module of a subcommand name: "init" -> "djaploy_init"."""
    from djaploy.management import commands

    prefixed = PREFIX + name
    return prefixed if any(info.name == prefixed for info in pkgutil.iter_modules(commands.__path__)) else name


class Command(BaseCommand):
    help = "Run a djaploy command: `manage.py djaploy <command> [options]` (see the list below)."
    requires_system_checks: ClassVar[list[str]] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, formatter_class=_ListingFormatter, **kwargs)
        lines = [f"  {name:16} {load_command_class(APP, module_of(name)).help}" for name in subcommands()]
        parser.epilog = "commands (each takes its own options; `<command> --help` shows them):\n" + "\n".join(lines)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("command", metavar="command", help="one of the commands listed below")
        parser.add_argument("arguments", nargs="*", help="the command's own options and arguments")

    def run_from_argv(self, argv: list[str]) -> None:
        """manage.py djaploy NAME ...: hand the command line to NAME's own parser and handler."""
        words = argv[2:]
        if not words or words[0].startswith("-"):
            super().run_from_argv(argv)  # --help, or a usage error listing the commands
            return
        name = self._known(words[0], exit_on_error=True)
        load_command_class(APP, module_of(name)).run_from_argv([argv[0], f"{APP} {name}", *words[1:]])

    def handle(self, *args: Any, **options: Any) -> None:
        """call_command("djaploy", "status", "--env", "production") from code."""
        name = self._known(options["command"])
        call_command(module_of(name), *options["arguments"], stdout=self.stdout, stderr=self.stderr)

    def _known(self, name: str, exit_on_error: bool = False) -> str:
        known = subcommands()
        if name in known:
            return name
        message = f"unknown djaploy command {name!r}{did_you_mean(name, known)}; commands: {', '.join(known)}"
        if exit_on_error:
            self.stderr.write(message)
            sys.exit(1)
        raise CommandError(message)
