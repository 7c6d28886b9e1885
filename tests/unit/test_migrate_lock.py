"""Every migrate djaploy sends goes through the locked-migrate script; other commands stay manage.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from djaploy import migrate, shell
from djaploy.layout import AppPaths
from djaploy.remote import Live
from djaploy.remote import manage_command as remote_manage_command


def test_migrate_goes_through_the_lock_script_and_other_commands_do_not() -> None:
    command = migrate.manage_command("/a/env", "/srv/app", "/srv/venv", ["migrate", "--noinput"])
    assert shell.q(migrate.LOCKED_MIGRATE_SCRIPT) in command
    assert command.endswith(" migrate --noinput")
    assert "pg_advisory_lock" in migrate.LOCKED_MIGRATE_SCRIPT
    other = migrate.manage_command("/a/env", "/srv/app", "/srv/venv", ["check", "--deploy"])
    assert other == shell.manage_py("/a/env", "/srv/app", "/srv/venv", ["check", "--deploy"])


def test_remote_migrate_takes_the_same_lock() -> None:
    from tests.unit.conftest import make_target

    target = make_target()
    paths = AppPaths.for_target(target)
    live = Live("zero_downtime", paths.service_for("zero_downtime"), "v7")
    assert "pg_try_advisory_lock" in remote_manage_command(target, live, "manage.py", ["migrate"])
    assert "pg_try_advisory_lock" not in remote_manage_command(target, live, "manage.py", ["shell"])


def test_the_lock_script_migrates_a_real_sqlite_project(tmp_path: Path) -> None:
    """On SQLite the script is manage.py migrate: the tables exist afterwards."""
    project = tmp_path / "proj"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(project)], check=True)
    env_file = tmp_path / "env"
    env_file.write_text('DJANGO_SETTINGS_MODULE="mysite.settings"\n')
    venv = str(Path(sys.executable).parent.parent)
    command = migrate.manage_command(str(env_file), str(project), venv, ["migrate", "--noinput"])
    run = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": ""})
    assert run.returncode == 0, run.stderr
    assert "Applying auth.0001_initial... OK" in run.stdout
    assert (project / "db.sqlite3").stat().st_size > 0
