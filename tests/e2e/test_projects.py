"""Real projects of every shape deploy: four fresh `django-admin startproject` projects, one per
dependency manager, each locked with the real tool, deployed to one sandbox host, checked over
HTTP. The server gets only uv (or pip) and a pinned list: never Poetry or Pipenv.

    poetry   nested: manage.py in app/, pyproject.toml + poetry.lock at the git root
    uv       non-nested, with infra/prepare.py building an ignored file that must ship
    pipenv   nested: infra/ at the git root, manage.py found in src/
    pip      non-nested, requirements.txt including base.txt, deployed with --local

Each project has its own project_name and domain; requests go to the host's address with
that domain as Host header.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import django
import pytest

from tests.conftest import missing_prerequisite
from tests.e2e.conftest import SANDBOX_NAME, http_get

ENV = "sandbox"
BIN = Path(sys.executable).parent
DJANGO_RANGE = f">={django.VERSION[0]}.{django.VERSION[1]},<{django.VERSION[0]}.{django.VERSION[1] + 1}"
SECRET = "projects-e2e-secret-" + "s" * 32

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[0]
hosts = [HostConfig("web", ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=["{domain}"], env_vars={{"DJANGO_ALLOWED_HOSTS": "{domain}"}})]
'''

CONFIG = '''
from djaploy.config import DjaployConfig

config = DjaployConfig(project_name="{name}", env_vars={{"DJANGO_DEBUG": "0"}},
                       secrets={{"DJANGO_SECRET_KEY": "env:PROJECTS_E2E_SECRET"}})
'''

SETTINGS = '''
import importlib.util
import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "local-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")
STATIC_ROOT = os.environ.get("DJAPLOY_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
DATABASES["default"]["NAME"] = Path(os.environ.get("DJAPLOY_DATA_DIR", BASE_DIR)) / "db.sqlite3"
INSTALLED_APPS.append("hello")
if importlib.util.find_spec("djaploy"):  # the deploying machine only
    INSTALLED_APPS.append("djaploy")
'''

VIEW = '''
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse


def index(request):
    built = Path(settings.BASE_DIR, "build", "stamp.txt")
    extra = f" built:{built.read_text().strip()}" if built.exists() else ""
    return HttpResponse(f"hello from {kind}{extra}", content_type="text/plain")
'''

PREPARE = '''
from pathlib import Path


def prepare():
    Path("build").mkdir(exist_ok=True)
    Path("build/stamp.txt").write_text("by-prepare")
    return ["build"]
'''


@dataclass
class Generated:
    kind: str
    name: str
    domain: str
    git_root: Path
    project_dir: Path  # manage.py's folder
    env: dict[str, str]

    def run(self, *args: str | Path, cwd: Path | None = None, timeout: int = 300) -> str:
        result = subprocess.run([str(a) for a in args], cwd=cwd or self.git_root, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        print(f"$ {' '.join(map(str, args))} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def manage(self, *args: str) -> str:
        return self.run(sys.executable, "manage.py", *args, cwd=self.project_dir, timeout=900)

    def write(self, relative: str, content: str) -> None:
        path = self.git_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip())


def _require_tools() -> None:
    missing = [tool for tool in ("poetry", "pipenv", "uv", "django-admin") if not (BIN / tool).exists()]
    if missing:
        missing_prerequisite(f"{', '.join(missing)} not installed in {BIN} (pip install -e '.[test]')")


def simple_index_url() -> str:
    """The index pip uses here: Poetry and Pipenv must resolve from its simple API (sandbox-notes §6)."""
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


def generate(tmp: Path, kind: str, *, subfolder: str = "", infra_at_root: bool = False) -> Generated:
    """startproject + one app with one view, infra/ for the sandbox, a fresh git repository."""
    root = tmp / kind
    project_dir = root / subfolder if subfolder else root
    project_dir.mkdir(parents=True)
    env = {**os.environ, "DJAPLOY_SANDBOX_NAME": SANDBOX_NAME, "PROJECTS_E2E_SECRET": SECRET,
           "PYTHONUNBUFFERED": "1", "WORKON_HOME": str(tmp / "pipenv-venvs"),
           "POETRY_VIRTUALENVS_PATH": str(tmp / "poetry-venvs"), "PIPENV_YES": "1", "PIPENV_NOSPIN": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("VIRTUAL_ENV", None)
    env["PIPENV_IGNORE_VIRTUALENVS"] = "1"
    name, domain = f"site-{kind}", f"{kind}.djaploy.test"
    project = Generated(kind, name, domain, root, project_dir, env)
    package = f"{kind}site"
    project.run(BIN / "django-admin", "startproject", package, ".", cwd=project_dir)
    project.run(sys.executable, "manage.py", "startapp", "hello", cwd=project_dir)
    prefix = f"{subfolder}/" if subfolder else ""
    settings = project_dir / package / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS
                        + ('DJAPLOY_CONFIG_DIR = BASE_DIR.parent / "infra"\n' if infra_at_root else ""))
    urls = project_dir / package / "urls.py"
    urls.write_text(urls.read_text() + "\nfrom hello.views import index\n\nurlpatterns.append(path('', index))\n")
    project.write(f"{prefix}hello/views.py", VIEW.replace("{kind}", kind))
    infra = "infra/" if infra_at_root else f"{prefix}infra/"
    project.write(f"{infra}config.py", CONFIG.format(name=name))
    project.write(f"{infra}inventory/{ENV}.py", INVENTORY.format(domain=domain))
    project.write(".gitignore", "__pycache__/\n*.sqlite3\nstaticfiles/\n.venv/\nbuild/\n")
    project.run("git", "init", "-q", "-b", "main")
    project.run("git", "config", "user.email", "e2e@djaploy.invalid")
    project.run("git", "config", "user.name", "e2e")
    return project


def commit(project: Generated) -> None:
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "project")


def poetry_project(tmp: Path) -> Generated:
    project = generate(tmp, "poetry", subfolder="app")
    project.write("pyproject.toml", f'''
        [tool.poetry]
        name = "shop"
        version = "0.1.0"
        description = ""
        authors = ["e2e <e2e@djaploy.invalid>"]
        package-mode = false

        [tool.poetry.dependencies]
        python = "^3.11"
        django = "{DJANGO_RANGE}"
        gunicorn = "*"

        [tool.poetry.group.dev.dependencies]
        pytest = "*"

        [[tool.poetry.source]]
        name = "index"
        url = "{simple_index_url()}"
        priority = "primary"
    ''')
    project.run(BIN / "poetry", "lock")
    return project


def uv_project(tmp: Path) -> Generated:
    project = generate(tmp, "uv")
    project.write("pyproject.toml", f'''
        [project]
        name = "blog"
        version = "0.1.0"
        requires-python = ">=3.11"
        dependencies = ["django{DJANGO_RANGE}", "gunicorn"]

        [dependency-groups]
        dev = ["pytest"]

        [tool.uv]
        package = false
    ''')
    project.write("infra/prepare.py", PREPARE)
    project.run(BIN / "uv", "lock")
    return project


def pipenv_project(tmp: Path) -> Generated:
    project = generate(tmp, "pipenv", subfolder="src", infra_at_root=True)
    project.write("Pipfile", f'''
        [[source]]
        url = "{simple_index_url()}"
        verify_ssl = true
        name = "index"

        [packages]
        django = "{DJANGO_RANGE}"
        gunicorn = "*"

        [dev-packages]
        pytest = "*"

        [requires]
        python_version = "3.11"
    ''')
    project.run(BIN / "pipenv", "lock")
    return project


def pip_project(tmp: Path) -> Generated:
    project = generate(tmp, "pip")
    project.write("base.txt", f"django{DJANGO_RANGE}\n")
    project.write("requirements.txt", "-r base.txt\ngunicorn\n")
    return project


def remote(host, command: str) -> subprocess.CompletedProcess:
    from djaploy.sandbox import Sandbox

    return Sandbox(name=SANDBOX_NAME).run(host, command)


def venv_of(project: Generated) -> str:
    app = f"/home/{project.name}/apps/{project.name}"
    return f"{app}/code/.djaploy-venv/"


def packages_in(host, venv: str) -> list[str]:
    result = remote(host, f"ls {venv}lib/python3.11/site-packages")
    assert result.returncode == 0, result.stderr
    return result.stdout.lower().split()


def deploy_and_check(project: Generated, host, *deploy_args: str) -> None:
    project.manage("configureserver", "--env", ENV)
    project.manage("deploy", "--env", ENV, *deploy_args)
    status, body = http_get(f"http://{host.address}/", host=project.domain)
    assert status == 200, body
    assert body.startswith(f"hello from {project.kind}")
    installed = packages_in(host, venv_of(project))
    assert any(name.startswith("django-") for name in installed) and any(n.startswith("gunicorn") for n in installed)
    assert not any(name.startswith(("pytest", "poetry", "pipenv")) for name in installed), installed  # no dev group
    assert "pip" not in installed  # installed by uv into a venv made without pip
    assert_no_project_tooling(host)


def assert_no_project_tooling(host) -> None:
    """The server got uv (in djaploy's tools venv), never Poetry or Pipenv."""
    assert remote(host, "test -x /opt/djaploy-tools/bin/uv && echo uv").stdout.strip() == "uv"
    assert remote(host, "command -v poetry pipenv").stdout.strip() == ""
    find = "find / -xdev -path '*-packages/*' \\( -iname 'poetry*' -o -iname 'pipenv*' \\) -prune -print"
    found = remote(host, f"{find} 2>/dev/null")
    assert found.stdout.strip() == "", found.stdout


@pytest.fixture(scope="module")
def host(sandbox_hosts):
    _require_tools()
    return sandbox_hosts[0]


def test_nested_poetry_project(tmp_path_factory, host) -> None:
    project = poetry_project(tmp_path_factory.mktemp("projects"))
    commit(project)
    deploy_and_check(project, host, "--latest")
    pinned = remote(host, f"cat /home/{project.name}/apps/{project.name}/code/.djaploy-requirements.txt").stdout
    assert "from pyproject.toml, poetry.lock (Poetry)" in pinned and "pytest" not in pinned


def test_non_nested_uv_project_with_prepare(tmp_path_factory, host) -> None:
    project = uv_project(tmp_path_factory.mktemp("projects"))
    commit(project)
    deploy_and_check(project, host, "--latest")
    _, body = http_get(f"http://{host.address}/", host=project.domain)
    assert body == "hello from uv built:by-prepare"  # prepare()'s git-ignored output shipped with --latest


def test_pipenv_project_with_manage_py_in_a_subfolder(tmp_path_factory, host) -> None:
    project = pipenv_project(tmp_path_factory.mktemp("projects"))
    commit(project)
    deploy_and_check(project, host, "--latest")


def test_requirements_txt_project_from_the_working_tree(tmp_path_factory, host) -> None:
    project = pip_project(tmp_path_factory.mktemp("projects"))
    commit(project)
    project.write("base.txt", f"django{DJANGO_RANGE}\nsqlparse\n")  # uncommitted: --local ships it
    deploy_and_check(project, host, "--local")
    assert remote(host, f"cat /home/{project.name}/apps/{project.name}/code/base.txt").stdout.endswith("sqlparse\n")
