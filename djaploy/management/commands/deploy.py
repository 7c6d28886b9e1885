"""manage.py deploy --env E (--latest | --release TAG | --local) [--activate] [--bump-minor...] [--batch-size N|P%]
[--no-revert]: ship a release."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from djaploy import actions
from djaploy.artifact import RefSpec
from djaploy.batches import batch_size_problem
from djaploy.management.commands._common import DjaployCommand


class Command(DjaployCommand):
    help = "Build a release from git and deploy it to the hosts of an environment."
    lock_options = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--latest", action="store_true", help="deploy the commit at HEAD")
        which.add_argument("--release", metavar="TAG", help="deploy a git tag")
        which.add_argument("--local", action="store_true", help="deploy the working tree, uncommitted changes included")
        parser.add_argument("--activate", action="store_true", help="bluegreen: switch traffic to the new slot after staging")
        parser.add_argument("--batch-size", metavar="N|P%", type=_batch_size,
                            help="switch the web hosts N (or P%% of them) at a time, drained at the load balancer; "
                                 "default: config.py's batch_size, else 1 with a load balancer, else all at once")
        parser.add_argument("--no-revert", dest="revert", action="store_false",
                            help="when a batch fails, leave the hosts already switched on the new release")
        bump = parser.add_mutually_exclusive_group()
        for part in ("major", "minor", "patch"):
            bump.add_argument(f"--bump-{part}", dest="increment", action="store_const", const=part,
                              help=f"versioning: this release bumps the {part} version (instead of the configured increment)")

    def run(self, directory: Path, options: dict[str, Any]) -> actions.RunResult:
        if options["release"]:
            spec = RefSpec("release", options["release"])
        else:
            spec = RefSpec("local" if options["local"] else "latest")
        return actions.deploy(
            directory,
            options["env"],
            spec,
            out=self.stdout, log=self.log_file,
            dry_run=options["dry_run"],
            verbosity=options["verbosity"],
            wsgi_setting=getattr(settings, "WSGI_APPLICATION", None),
            activate=options["activate"],
            force_unlock=options["force_unlock"],
            increment=options["increment"],
            batch_size=options["batch_size"],
            revert=options["revert"],
        )


def _batch_size(value: str) -> str:
    """argparse type: refuse a bad --batch-size before anything runs."""
    problem = batch_size_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value
