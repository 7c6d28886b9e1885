"""Project inspection: layouts, settings, WSGI application, and which dependency manager."""

from pathlib import Path

import pytest

from djaploy.errors import ConfigError
from djaploy.project import inspect_project
from tests.unit.conftest import make_repo

MANAGE_PY = 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings}")\n'
POETRY = '[tool.poetry]\nname = "x"\n\n[tool.poetry.dependencies]\ndjango = "*"\n'
PEP621 = '[project]\nname = "x"\nversion = "0"\ndependencies = ["django"]\n'
TOOLS_ONLY = "[tool.ruff]\nline-length = 100\n"


def django_files(prefix: str = "", package: str = "mysite") -> dict[str, str]:
    return {
        f"{prefix}manage.py": MANAGE_PY.format(settings=f"{package}.settings"),
        f"{prefix}{package}/settings.py": "",
        f"{prefix}{package}/wsgi.py": "application = None\n",
        f"{prefix}infra/config.py": "",
    }


@pytest.mark.parametrize("files, manager, dependency_files", [
    ({"requirements.txt": "django\n"}, "pip", ("requirements.txt",)),
    ({"requirements.txt": "django\n", "pyproject.toml": TOOLS_ONLY}, "pip", ("requirements.txt",)),
    ({"pyproject.toml": POETRY, "poetry.lock": ""}, "poetry", ("pyproject.toml", "poetry.lock")),
    ({"pyproject.toml": PEP621, "poetry.lock": ""}, "poetry", ("pyproject.toml", "poetry.lock")),  # Poetry 2
    ({"Pipfile": "", "Pipfile.lock": "{}"}, "pipenv", ("Pipfile.lock",)),
    ({"pyproject.toml": PEP621, "uv.lock": ""}, "uv", ("pyproject.toml", "uv.lock")),
    ({"pyproject.toml": PEP621}, "pep621", ("pyproject.toml",)),
])
def test_each_dependency_manager_is_detected(tmp_path: Path, files, manager, dependency_files) -> None:
    root = make_repo(tmp_path, {**django_files(), **files})
    project = inspect_project(root / "infra")
    assert project.dependencies is not None
    assert (project.dependencies.manager, project.dependencies.files) == (manager, dependency_files)
    assert project.dependencies.pinned_path == ".djaploy-requirements.txt"


def test_non_nested_layout_reads_settings_and_wsgi(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {**django_files(package="blog"), "requirements.txt": ""})
    project = inspect_project(root / "infra")
    assert (project.manage_py, project.project_dir) == ("manage.py", "")
    assert project.settings_module == "blog.settings"
    assert project.wsgi_application == "blog.wsgi:application"


def test_nested_layout_with_dependencies_at_the_git_root(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {**django_files("src/"), "pyproject.toml": POETRY, "poetry.lock": ""})
    project = inspect_project(root / "src" / "infra")
    assert (project.manage_py, project.project_dir) == ("src/manage.py", "src")
    assert project.dependencies is not None
    assert (project.dependencies.manager, project.dependencies.directory) == ("poetry", "")


def test_dependencies_beside_manage_py_win_over_the_git_root(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {**django_files("web/"), "web/requirements.txt": "", "pyproject.toml": PEP621})
    project = inspect_project(root / "web" / "infra")
    assert project.dependencies is not None
    assert project.dependencies.files == ("web/requirements.txt",)
    assert project.dependencies.pinned_path == "web/.djaploy-requirements.txt"


def test_manage_py_in_a_subfolder_is_found_from_an_infra_folder_at_the_root(tmp_path: Path) -> None:
    files = {**django_files("backend/", package="shop"), "requirements.txt": ""}
    files["infra/config.py"] = files.pop("backend/infra/config.py")
    root = make_repo(tmp_path, {**files, ".gitignore": ".venv/\n", ".venv/lib/site-packages/x/manage.py": ""})
    project = inspect_project(root / "infra")
    assert project.manage_py == "backend/manage.py"  # the ignored virtualenv is never searched
    assert project.wsgi_application == "shop.wsgi:application"


def test_several_manage_py_files_ask_for_manage_py_path(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {"a/manage.py": "", "b/manage.py": "", "infra/config.py": "", "requirements.txt": ""})
    with pytest.raises(ConfigError, match=r"found several: a/manage.py, b/manage.py.*set manage_py_path"):
        inspect_project(root / "infra")
    assert inspect_project(root / "infra", manage_py_path="b/manage.py", wsgi_application="x.wsgi:app").manage_py == "b/manage.py"


def test_wsgi_follows_a_split_settings_package(tmp_path: Path) -> None:
    files = {**django_files(package="core"), "requirements.txt": "", "other/wsgi.py": ""}
    files["manage.py"] = MANAGE_PY.format(settings="core.settings.production")
    root = make_repo(tmp_path, files)
    assert inspect_project(root / "infra").wsgi_application == "core.wsgi:application"


def test_several_managers_is_an_error_naming_what_was_found(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {**django_files(), "requirements.txt": "", "pyproject.toml": POETRY, "poetry.lock": ""})
    with pytest.raises(ConfigError) as error:
        inspect_project(root / "infra")
    message = str(error.value)
    assert "several dependency managers found" in message
    assert "pip (requirements.txt)" in message and "Poetry (pyproject.toml [tool.poetry], poetry.lock)" in message
    assert 'dependency_manager="..." in config.py' in message
    forced = inspect_project(root / "infra", dependency_manager="poetry")
    assert forced.dependencies is not None and forced.dependencies.manager == "poetry"


def test_no_dependency_files_is_an_error_listing_what_is_looked_for(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {**django_files("site/"), "pyproject.toml": TOOLS_ONLY})
    with pytest.raises(ConfigError, match=r"no dependency files found in .*site or .*requirements.txt.*poetry.lock.*uv.lock"):
        inspect_project(root / "site" / "infra")


@pytest.mark.parametrize("files, command", [
    ({"pyproject.toml": POETRY}, "poetry lock"),
    ({"Pipfile": ""}, "pipenv lock"),
])
def test_poetry_or_pipenv_without_its_lock_asks_to_lock(tmp_path: Path, files, command) -> None:
    root = make_repo(tmp_path, {**django_files(), **files})
    with pytest.raises(ConfigError, match=rf"without (poetry.lock|Pipfile.lock) .*run `{command}`"):
        inspect_project(root / "infra")


def test_forced_manager_without_its_files_says_so(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {**django_files(), "requirements.txt": ""})
    with pytest.raises(ConfigError, match=r'dependency_manager="uv" but no uv files'):
        inspect_project(root / "infra", dependency_manager="uv")


def test_rollback_does_not_need_dependencies(tmp_path: Path) -> None:
    root = make_repo(tmp_path, django_files())
    assert inspect_project(root / "infra", with_dependencies=False).dependencies is None


def test_invalid_pyproject_names_the_file(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {**django_files(), "pyproject.toml": "[project\n"})
    with pytest.raises(ConfigError, match=r"pyproject.toml is not valid TOML"):
        inspect_project(root / "infra")


def test_forcing_pep621_ignores_a_uv_lock(tmp_path: Path) -> None:
    root = make_repo(tmp_path, {**django_files(), "pyproject.toml": PEP621, "uv.lock": ""})
    project = inspect_project(root / "infra", dependency_manager="pep621")
    assert project.dependencies is not None and project.dependencies.files == ("pyproject.toml",)
