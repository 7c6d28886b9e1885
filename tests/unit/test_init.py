"""`djaploy_init` on real `django-admin startproject` output (flat and nested), in tmp folders:
the files it writes load and pass `verify`, the settings block is guarded and never added twice,
gunicorn is added with the project's own manager, existing files are kept, a rerun changes nothing."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import django
import pytest

from djaploy.init import Answers, apply, inspect_new_project, plan_init, secret_variable
from djaploy.init.facts import project_name_of
from djaploy.init.gunicorn import AddLine, RunCommand, gunicorn_change
from djaploy.init.settings_block import MARKER, with_djaploy_settings
from djaploy.inventory import load_targets
from djaploy.verify import Options, verify
from tests.unit.conftest import commit, git

WORKTREE = Path(__file__).resolve().parents[2]
DJANGO_ADMIN = Path(sys.executable).parent / "django-admin"
ANSWERS = Answers(env="production", host="203.0.113.7", domain="shop.example.com", ssh_user="deploy",
                  ssh_key="~/.ssh/id_ed25519", strategy="zero_downtime")
SECRET = "unit-init-secret-" + "x" * 40


def startproject(root: Path, name: str = "mysite", nested: bool = False) -> Path:
    """Real startproject output; returns manage.py. Nested: `startproject NAME` (manage.py in NAME/)."""
    root.mkdir(parents=True, exist_ok=True)
    args = [str(DJANGO_ADMIN), "startproject", name] + ([] if nested else ["."])
    subprocess.run(args, cwd=root, check=True, capture_output=True)
    git(root, "init", "-q", "-b", "main")
    return (root / name / "manage.py") if nested else (root / "manage.py")


def init(manage_py: Path, answers: Answers = ANSWERS):
    facts = inspect_new_project(manage_py)
    return facts, plan_init(facts, answers, django.VERSION)


def settings_as(path: Path, monkeypatch: pytest.MonkeyPatch, **environ: str) -> dict:
    """The settings module's globals with exactly these DJAPLOY_/DJANGO_ variables set."""
    for name in list(os.environ):
        if name.startswith(("DJAPLOY_", "DJANGO_")):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(path))


# --- the flat layout with requirements.txt --------------------------------------------------------


def test_flat_project_gets_infra_settings_and_gunicorn_and_passes_verify(tmp_path: Path, monkeypatch) -> None:
    manage_py = startproject(tmp_path / "flat")
    (manage_py.parent / "requirements.txt").write_text("django\n")
    facts, plan = init(manage_py)
    assert (facts.project_name, facts.dependencies.manager) == ("mysite", "pip")
    changed = {change.path.relative_to(facts.git_root).as_posix() for change in plan.files}
    assert changed == {"infra/config.py", "infra/inventory/production.py", "mysite/settings.py", "requirements.txt"}
    assert plan.command is None
    apply(plan)
    assert (facts.git_root / "requirements.txt").read_text() == "django\ngunicorn\n"
    monkeypatch.setenv(secret_variable("mysite"), SECRET)
    config, [target] = load_targets(facts.infra_dir, "production")
    assert (config.project_name, config.dependency_manager, config.deployment_strategy) == ("mysite", "pip", "zero_downtime")
    assert config.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert config.health_check_path == "/admin/login/"  # "/" is a 404 with DEBUG off; startproject routes the admin
    assert (target.ssh_host, target.ssh_user, target.domains) == ("203.0.113.7", "deploy", ("shop.example.com",))
    assert target.secrets == {"DJANGO_SECRET_KEY": SECRET}
    report = verify(facts.infra_dir, Options(env="production"))
    assert report.errors == [] and report.warnings == [], [f.text for f in report.findings]
    _, again = init(manage_py)
    assert again.empty and len(again.kept) == 2


def test_the_settings_block_applies_only_where_djaploy_env_is_set(tmp_path: Path, monkeypatch) -> None:
    facts, plan = init(startproject(tmp_path / "flat"))
    apply(plan)
    local = settings_as(facts.settings_path, monkeypatch)
    assert local["DEBUG"] is True and local["ALLOWED_HOSTS"] == [] and "STATIC_ROOT" not in local
    assert "djaploy" in local["INSTALLED_APPS"]  # importable here, as on the deploying machine
    deployed = settings_as(facts.settings_path, monkeypatch, DJAPLOY_ENV="production", DJANGO_SECRET_KEY=SECRET,
                           DJANGO_ALLOWED_HOSTS="a.example,.b.example", DJAPLOY_STATIC_ROOT="/srv/static",
                           DJAPLOY_MEDIA_ROOT="/srv/media", DJAPLOY_DATA_DIR="/srv/data")
    assert deployed["DEBUG"] is False and deployed["SECRET_KEY"] == SECRET
    assert deployed["ALLOWED_HOSTS"] == ["a.example", ".b.example"]
    assert deployed["CSRF_TRUSTED_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert (deployed["STATIC_ROOT"], deployed["MEDIA_ROOT"]) == ("/srv/static", "/srv/media")
    assert deployed["DATABASES"]["default"]["NAME"] == "/srv/data/db.sqlite3"
    assert deployed["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    origins = settings_as(facts.settings_path, monkeypatch, DJAPLOY_ENV="production", DJANGO_SECRET_KEY=SECRET,
                          DJANGO_CSRF_TRUSTED_ORIGINS="https://x.example", DJAPLOY_STATIC_ROOT="/s",
                          DJAPLOY_MEDIA_ROOT="/m", DJAPLOY_DATA_DIR="/d")
    assert origins["CSRF_TRUSTED_ORIGINS"] == ["https://x.example"]


def test_a_project_without_dependency_files_gets_a_requirements_txt(tmp_path: Path) -> None:
    facts, plan = init(startproject(tmp_path / "bare"))
    assert facts.dependencies is None
    [requirements] = [c for c in plan.files if c.path.name == "requirements.txt"]
    major, minor = django.VERSION[:2]
    assert requirements.before is None
    assert requirements.after == f"django>={major}.{minor},<{major}.{minor + 1}\ngunicorn\n"


def test_existing_infra_files_are_kept_and_only_the_missing_env_is_written(tmp_path: Path) -> None:
    manage_py = startproject(tmp_path / "flat")
    (manage_py.parent / "requirements.txt").write_text("django\ngunicorn==23.0\n")
    config = manage_py.parent / "infra" / "config.py"
    config.parent.mkdir()
    config.write_text("# mine\n")
    facts, plan = init(manage_py, Answers(env="staging", host="198.51.100.2", domain="198.51.100.2"))
    assert plan.kept == [config]
    assert [c.path.relative_to(facts.git_root).as_posix() for c in plan.files] == [
        "infra/inventory/staging.py", "mysite/settings.py"]  # gunicorn is declared already
    apply(plan)
    assert config.read_text() == "# mine\n"


# --- the nested layout, other managers ------------------------------------------------------------


def test_nested_uv_project_adds_gunicorn_with_uv_at_the_git_root(tmp_path: Path) -> None:
    manage_py = startproject(tmp_path / "nested", "blog", nested=True)
    root = tmp_path / "nested"
    (root / "pyproject.toml").write_text('[project]\nname = "blog"\nversion = "0"\ndependencies = ["django"]\n')
    (root / "uv.lock").write_text("version = 1\n")
    (root / ".python-version").write_text("3.12.4\n")
    facts, plan = init(manage_py)
    assert (facts.project_dir, facts.infra_dir, facts.python_version) == (root / "blog", root / "blog" / "infra", "3.12")
    assert facts.settings_path == root / "blog" / "blog" / "settings.py"
    assert plan.command == RunCommand(root, ("uv", "add", "--no-sync", "gunicorn"))
    assert "requirements.txt" not in {c.path.name for c in plan.files}
    (root / "blog" / "blog" / "urls.py").write_text("urlpatterns = []\n")
    assert inspect_new_project(manage_py).health_check_path == "/"
    assert 'dependency_manager="uv"' in next(c.after for c in plan.files if c.path.name == "config.py")
    (root / "pyproject.toml").write_text('[project]\nname = "blog"\nversion = "0"\ndependencies = ["django", "Gunicorn>=22"]\n')
    assert init(manage_py)[1].command is None


@pytest.mark.parametrize(("files", "declared", "command"), [
    ({"pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.11"\ndjango = "*"\n', "poetry.lock": ""},
     '[tool.poetry.dependencies]\npython = "^3.11"\ngunicorn = "*"\n', ("poetry", "add", "--lock", "gunicorn")),
    ({"Pipfile": '[packages]\ndjango = "*"\n', "Pipfile.lock": "{}"},
     '[packages]\ngunicorn = "*"\n', ("pipenv", "install", "gunicorn")),
    ({"pyproject.toml": '[project]\nname = "x"\nversion = "0"\ndependencies = ["django"]\n'},
     '[project]\nname = "x"\nversion = "0"\ndependencies = ["gunicorn"]\n', ("uv", "add", "--frozen", "--no-sync", "gunicorn")),
])
def test_each_manager_adds_gunicorn_with_its_own_command_unless_declared(tmp_path: Path, files, declared, command) -> None:
    manage_py = startproject(tmp_path / "p")
    for name, text in files.items():
        (tmp_path / "p" / name).write_text(text)
    facts = inspect_new_project(manage_py)
    assert gunicorn_change(facts.dependencies, facts.git_root) == RunCommand(tmp_path / "p", command)
    (tmp_path / "p" / next(iter(files))).write_text(declared)
    assert gunicorn_change(facts.dependencies, facts.git_root) is None


def test_gunicorn_in_an_included_requirements_file_counts(tmp_path: Path) -> None:
    manage_py = startproject(tmp_path / "p")
    (tmp_path / "p" / "requirements.txt").write_text("-r base.txt\n")
    (tmp_path / "p" / "base.txt").write_text("django\ngunicorn>=22\n")
    facts = inspect_new_project(manage_py)
    assert gunicorn_change(facts.dependencies, facts.git_root) is None
    (tmp_path / "p" / "base.txt").write_text("django\n")
    assert gunicorn_change(facts.dependencies, facts.git_root) == AddLine(tmp_path / "p" / "requirements.txt", "gunicorn")


# --- the settings block on its own -----------------------------------------------------------------


def test_what_the_settings_already_have_is_not_added_again() -> None:
    text = ('import os\nDEBUG = os.environ.get("DJANGO_DEBUG") == "1"\nINSTALLED_APPS = ["djaploy"]\n'
            'STATIC_ROOT = os.environ.get("DJAPLOY_STATIC_ROOT", "static")\n')
    updated = with_djaploy_settings(text)
    block = updated[len(text):]
    assert "DEBUG" not in block and "STATIC_ROOT" not in block and "find_spec" not in block
    assert "import os\n" not in block  # the settings import it already
    assert 'MEDIA_ROOT = os.environ["DJAPLOY_MEDIA_ROOT"]' in block and MARKER in block
    assert with_djaploy_settings(updated) == updated


def test_settings_that_have_everything_are_left_unchanged() -> None:
    ledger = (WORKTREE / "infra_example" / "ledger" / "settings.py").read_text()
    complete = ledger + 'CSRF_TRUSTED_ORIGINS = []\nSECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")\n'
    assert with_djaploy_settings(complete) == complete
    assert "CSRF_TRUSTED_ORIGINS" in with_djaploy_settings(ledger)[len(ledger):]


def test_names() -> None:
    assert project_name_of("My_Site.settings") == "my_site"
    assert project_name_of("9lives.settings.prod") == "lives"
    assert secret_variable("my-site") == "MY_SITE_SECRET_KEY"


# --- the command ----------------------------------------------------------------------------------


def run_init(cwd: Path, *args: str, manage: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}, "PYTHONPATH": str(WORKTREE)}
    argv = ["manage.py", "djaploy", "init"] if manage else ["-m", "djaploy.init"]
    return subprocess.run([sys.executable, *argv, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def test_the_command_shows_diffs_asks_for_yes_then_writes_once(tmp_path: Path) -> None:
    manage_py = startproject(tmp_path / "flat")
    site = manage_py.parent
    (site / ".gitignore").write_text("__pycache__/\n")
    commit(site)
    refused = run_init(site, "--host", "203.0.113.9")
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert "+++ b/infra/config.py" in refused.stdout and not (site / "infra").exists()  # shown, not written
    assert "--host is needed" in run_init(site).stderr
    done = run_init(site, "--host", "203.0.113.9", "--env", "staging", "--yes")
    assert done.returncode == 0, done.stderr
    assert "MYSITE_SECRET_KEY" in done.stdout
    assert (site / "infra" / "inventory" / "staging.py").is_file()
    again = run_init(site, "--host", "203.0.113.9", "--env", "staging", "--yes", manage=True)  # djaploy is an app now
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout
    assert set(git(site, "status", "--porcelain").splitlines()) == {"?? infra/", " M mysite/settings.py", "?? requirements.txt"}


def test_the_command_finds_a_nested_manage_py_from_the_folder_above(tmp_path: Path) -> None:
    startproject(tmp_path / "outer", "blog", nested=True)
    shown = run_init(tmp_path / "outer", "--host", "203.0.113.9")
    assert "+++ b/blog/infra/config.py" in shown.stdout and "+++ b/blog/requirements.txt" in shown.stdout, shown.stderr
    assert not (tmp_path / "outer" / "blog" / "infra").exists()
