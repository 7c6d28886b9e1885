"""manage.py command lines for the hosts, with every `migrate` under the migration lock.

A fleet's primary migrates once per deploy, and a person may run `manage.py remote -- migrate`
at any time: both go through djaploy/probes/locked_migrate.py, which holds PostgreSQL's
`pg_advisory_lock` for the whole migration, so two can never run at once (SQLite: as before).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files

from djaploy import shell

#: sent as text: the hosts have no djaploy
LOCKED_MIGRATE_SCRIPT = files("djaploy").joinpath("probes", "locked_migrate.py").read_text(encoding="utf-8")


def is_migrate(args: Sequence[str]) -> bool:
    return bool(args) and args[0] == "migrate"


def manage_command(env_file: str, project_dir: str, venv_dir: str, args: Sequence[str]) -> str:
    """manage.py ARGS in a release with its environment; `migrate` takes the migration lock first."""
    if not is_migrate(args):
        return shell.manage_py(env_file, project_dir, venv_dir, args)
    python = f"{venv_dir}/bin/python"
    return shell.with_env_file(
        env_file, f"cd {shell.q(project_dir)} && exec {shell.q(python)} -c {shell.q(LOCKED_MIGRATE_SCRIPT)} {shell.join(args)}")
