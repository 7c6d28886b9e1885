"""manage.py djaploy_init: infra/, production settings and gunicorn for a fresh project; diffs first, then ask."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import django
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djaploy.config import DEPLOYMENT_STRATEGIES, HostConfig
from djaploy.errors import DjaployError
from djaploy.init import Answers, InitPlan, ProjectFacts, apply, find_manage_py, inspect_new_project, plan_init, \
    secret_variable
from djaploy.management.commands._common import config_dir

DEFAULTS = {"env": "production", "ssh_user": "deploy", "ssh_key": "~/.ssh/id_ed25519", "strategy": "in_place"}
ENV_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class Command(BaseCommand):
    help = ("Set a project up for djaploy: infra/config.py and infra/inventory/<env>.py, a production block in the "
            "settings (only where DJAPLOY_ENV is set), djaploy in INSTALLED_APPS where installed, gunicorn in the "
            "dependencies. Shows every change and asks first; never overwrites; a rerun changes nothing.")
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--env", help=f"the environment to create (default {DEFAULTS['env']})")
        parser.add_argument("--host", help="the server's address or host name (SSH)")
        parser.add_argument("--domain", help="the domain the site is served under (default: --host)")
        parser.add_argument("--ssh-user", help=f"who djaploy logs in as (default {DEFAULTS['ssh_user']}, "
                                               "the user `bootstrap` creates)")
        parser.add_argument("--ssh-key", help=f"your private key for it (default {DEFAULTS['ssh_key']})")
        parser.add_argument("--ssh-known-hosts", help="a known_hosts file for the server (default: ssh's own)")
        parser.add_argument("--strategy", choices=DEPLOYMENT_STRATEGIES, help="how releases go live (default in_place)")
        parser.add_argument("--yes", action="store_true", help="apply the changes without asking")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            facts = inspect_new_project(find_manage_py(_manage_py_candidates()), _infra_dir())
            answers = self._answers(options)
            plan = plan_init(facts, answers, django.VERSION)
        except DjaployError as error:
            raise CommandError(str(error)) from None
        self._show(facts, plan)
        if plan.empty:
            self.stdout.write(self.style.SUCCESS("nothing to change: the project is set up for djaploy"))
            return
        if not options["yes"] and not self._confirmed():
            self.stdout.write("nothing changed")
            return
        try:
            apply(plan)
        except DjaployError as error:
            raise CommandError(str(error)) from None
        self._next_steps(facts, answers, plan)

    def _answers(self, options: dict[str, Any]) -> Answers:
        """Flags first; what is missing is asked on a terminal, or defaulted (--host has no default)."""
        values = {name: options[name] for name in ("env", "host", "domain", "ssh_user", "ssh_key", "strategy")}
        asking = sys.stdin.isatty()
        for name in values:
            if values[name]:
                continue
            default = values["host"] if name == "domain" else DEFAULTS.get(name)
            if asking:
                values[name] = input(f"{name.replace('_', ' ')}{f' [{default}]' if default else ''}: ").strip() or default
            else:
                values[name] = default
            if not values[name]:
                raise CommandError(f"--{name.replace('_', '-')} is needed (no terminal to ask)")
        if not ENV_RE.fullmatch(values["env"]):
            raise CommandError(f"--env {values['env']!r}: letters, digits, '_' or '-' (it names inventory/<env>.py)")
        answers = Answers(**values, ssh_known_hosts=options["ssh_known_hosts"])
        HostConfig("web1", ssh_host=answers.host, ssh_user=answers.ssh_user, domains=[answers.domain],
                   deployment_strategy=answers.strategy)  # the same checks as when the inventory loads
        return answers

    def _show(self, facts: ProjectFacts, plan: InitPlan) -> None:
        manager = facts.dependencies.describe() if facts.dependencies else "none yet (requirements.txt is created)"
        self.stdout.write(f"project {facts.project_name}: settings {_shown(facts.settings_path, facts.git_root)}, "
                          f"Python {facts.python_version}, dependencies {manager}")
        for path in plan.kept:
            self.stdout.write(f"kept {_shown(path, facts.git_root)}: it exists, and init never overwrites")
        for change in plan.files:
            self.stdout.write(change.diff(facts.git_root))
        if plan.command:
            self.stdout.write(f"run in {_shown(plan.command.folder, facts.git_root) or '.'}: "
                              f"{' '.join(plan.command.argv)} (adds gunicorn and updates the lock file)")

    def _confirmed(self) -> bool:
        if not sys.stdin.isatty():
            raise CommandError("no terminal to ask: rerun with --yes to apply these changes")
        return input("apply these changes? [y/N] ").strip().lower() in {"y", "yes"}

    def _next_steps(self, facts: ProjectFacts, answers: Answers, plan: InitPlan) -> None:
        self.stdout.write(self.style.SUCCESS("done"))
        if any(change.path == facts.infra_dir / "config.py" for change in plan.files):
            variable = secret_variable(facts.project_name)
            self.stdout.write(
                f"The config reads the secret key from your environment variable {variable} when you deploy; "
                f"set it in the shell you deploy from (never in the repository), for example:\n"
                f"    export {variable}=\"$(python -c 'import secrets; print(secrets.token_urlsafe(50))')\"")
        self.stdout.write(f"next: python manage.py verify --env {answers.env}, git commit, then bootstrap (a fresh VPS), "
                          f"configureserver and deploy --env {answers.env} --latest")


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _infra_dir() -> Path | None:
    """The settings' infra folder (DJAPLOY_CONFIG_DIR or BASE_DIR / "infra"); None beside manage.py."""
    if settings.configured and (getattr(settings, "DJAPLOY_CONFIG_DIR", None) or getattr(settings, "BASE_DIR", None)):
        return config_dir()
    return None


def _manage_py_candidates() -> list[Path]:
    """manage.py as run, beside the infra folder, here, or the only one a level down (`startproject NAME`)."""
    infra = _infra_dir()
    below = sorted(Path.cwd().glob("*/manage.py"))
    return [Path(sys.argv[0]), *([infra.parent] if infra else []), Path.cwd(), *(below if len(below) == 1 else [])]
