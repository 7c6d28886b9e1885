"""manage.py bootstrap --env E: turn a provider's fresh VPS into a host djaploy deploys to (safe to rerun)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from djaploy.bootstrap.run import RootLogin, bootstrap
from djaploy.management.commands._common import DjaployCommand
from djaploy.session import RunResult


class Command(DjaployCommand):
    help = ("Log in as root once and set a host up for djaploy: ssh_user with your key and passwordless sudo "
            "(proven before root and password logins are turned off), a firewall, unattended security upgrades, "
            "swap on small hosts, time zone and hostname. Hosts where ssh_user already logs in are not touched as root.")
    dry_run_option = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--root-user", default="root", help="who to log in as the first time (default root)")
        parser.add_argument("--root-key", help="private key for that first login (default: the host's ssh_key)")
        parser.add_argument("--root-password-env", metavar="VAR",
                            help="read the root password from environment variable VAR (without it, a refused key "
                                 "asks for the password when a terminal is attached)")

    def run(self, directory: Path, options: dict[str, Any]) -> RunResult:
        password = None
        if options["root_password_env"]:
            password = os.environ.get(options["root_password_env"])
            if not password:
                raise CommandError(f"--root-password-env {options['root_password_env']}: that variable is not set")
        key = str(Path(options["root_key"]).expanduser().resolve()) if options["root_key"] else None
        root = RootLogin(user=options["root_user"], key=key, password=password,
                         ask_password=getpass.getpass if sys.stdin.isatty() else None)
        return bootstrap(directory, options["env"], root, out=self.stdout, log=self.log_file,
                         verbosity=options["verbosity"])
