"""manage.py remote --env E [--host NAME] -- <manage.py args>: manage.py in the live release on a host."""

from __future__ import annotations

import argparse
import sys
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser

from djaploy import remote
from djaploy.errors import ConnectError, DjaployError
from djaploy.management.commands._common import config_dir


class Command(BaseCommand):
    help = ("Run a manage.py command in the live release on a host, as the app user with the release's "
            "environment; interactive when a terminal is attached (shell, createsuperuser). "
            "Example: manage.py remote --env production -- migrate --check")
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env", required=True, help="environment: the name of a file in infra/inventory/")
        parser.add_argument("--host", help="the host to run on (needed when the environment has several)")
        parser.add_argument("args", nargs=argparse.REMAINDER, help="after --: the manage.py command and its arguments")

    def handle(self, *args: str, **options: Any) -> None:
        words = list(args[1:] if args[:1] == ("--",) else args)
        try:
            code = remote.run_manage(config_dir(), options["env"], words, host=options["host"])
        except ConnectError as error:
            raise CommandError(str(error), returncode=remote.SSH_FAILED) from None
        except DjaployError as error:
            raise CommandError(str(error)) from None
        if code == remote.SSH_FAILED:
            raise CommandError("ssh failed (exit 255): the host could not be reached or refused the login",
                               returncode=code)
        if code:
            sys.exit(code)
