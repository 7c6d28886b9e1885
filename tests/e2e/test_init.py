"""From a fresh `django-admin startproject` to a served site with `djaploy_init` (issue 14): init writes
infra/, the production settings and gunicorn; then commit, configureserver, deploy. Django's default page
needs DEBUG, so the check is the admin's login page (200, with DEBUG off) and its CSS, served by nginx.

    flat     startproject NAME .   requirements.txt   `python -m djaploy.init` (djaploy not yet an app)
    nested   startproject NAME     uv at the git root  `manage.py djaploy init` (the user added the app first)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import SANDBOX_NAME, http_get
from tests.e2e.test_projects import BIN, DJANGO_RANGE, ENV, Generated, commit

SECRET = "init-e2e-secret-" + "s" * 40
APP_GUARD = '\nimport importlib.util\nif importlib.util.find_spec("djaploy"):\n    INSTALLED_APPS.append("djaploy")\n'


def fresh_project(tmp: Path, name: str, nested: bool) -> Generated:
    root = tmp / name
    root.mkdir()
    env = {**os.environ, "DJAPLOY_SANDBOX_NAME": SANDBOX_NAME, f"{name.upper()}_SECRET_KEY": SECRET,
           "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("VIRTUAL_ENV", None)
    project = Generated(name, name, f"{name}.djaploy.test", root, root / name if nested else root, env)
    project.run(BIN / "django-admin", "startproject", name, *([] if nested else ["."]))
    project.write(".gitignore", "__pycache__/\n*.sqlite3\n.venv/\n")
    project.run("git", "init", "-q", "-b", "main")
    project.run("git", "config", "user.email", "e2e@djaploy.invalid")
    project.run("git", "config", "user.name", "e2e")
    return project


def init_flags(project: Generated, host) -> list[str]:
    return ["--env", ENV, "--host", host.address, "--domain", project.domain, "--ssh-user", "root",
            "--ssh-key", host.key_path, "--ssh-known-hosts", host.known_hosts_path, "--strategy", "zero_downtime",
            "--yes"]


def deploy_and_check(project: Generated, host) -> None:
    commit(project)
    verified = project.manage("verify", "--env", ENV)
    assert "0 error(s), 0 warning(s)" in verified
    project.manage("configureserver", "--env", ENV)
    project.manage("deploy", "--env", ENV, "--latest")
    status, body = http_get(f"http://{host.address}/admin/login/", host=project.domain)
    assert status == 200, body
    assert "csrfmiddlewaretoken" in body and "Traceback" not in body  # DEBUG off: a real page, no debug output
    status, css = http_get(f"http://{host.address}/static/admin/css/base.css", host=project.domain)
    assert status == 200 and "body" in css


@pytest.fixture(scope="module")
def host(sandbox_hosts):
    if not (BIN / "django-admin").exists() or not (BIN / "uv").exists():
        pytest.skip("django-admin and uv are needed in the test venv")
    return sandbox_hosts[0]


def test_flat_requirements_project_from_startproject_to_served(tmp_path_factory, host) -> None:
    project = fresh_project(tmp_path_factory.mktemp("init"), "flatsite", nested=False)
    project.write("requirements.txt", f"django{DJANGO_RANGE}\n")
    commit(project)
    out = project.run(sys.executable, "-m", "djaploy.init", *init_flags(project, host), cwd=project.project_dir)
    assert "FLATSITE_SECRET_KEY" in out
    assert (project.git_root / "requirements.txt").read_text().endswith("gunicorn\n")
    deploy_and_check(project, host)
    again = project.manage("djaploy", "init", *init_flags(project, host))
    assert "nothing to change" in again
    assert project.run("git", "status", "--porcelain") == ""


def test_nested_uv_project_from_startproject_to_served(tmp_path_factory, host) -> None:
    project = fresh_project(tmp_path_factory.mktemp("init"), "nestsite", nested=True)
    project.write("pyproject.toml", f'[project]\nname = "nestsite"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
                                    f'dependencies = ["django{DJANGO_RANGE}"]\n\n[tool.uv]\npackage = false\n')
    project.run(BIN / "uv", "lock")
    settings = project.project_dir / "nestsite" / "settings.py"
    settings.write_text(settings.read_text() + APP_GUARD)  # the README's step, so manage.py knows djaploy
    commit(project)
    out = project.manage("djaploy", "init", *init_flags(project, host))
    assert "uv add --no-sync gunicorn" in out
    assert settings.read_text().count("find_spec") == 1  # the user's entry is kept, not added twice
    assert "gunicorn" in (project.git_root / "uv.lock").read_text()
    deploy_and_check(project, host)
    assert "nothing to change" in project.manage("djaploy_init", *init_flags(project, host))
    assert project.run("git", "status", "--porcelain") == ""
