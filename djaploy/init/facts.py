"""What `djaploy_init` needs to know about a project before writing anything: read from its files only."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from djaploy.dependencies import DependencySpec, detect_dependencies
from djaploy.errors import ConfigError
from djaploy.project import find_git_root, settings_module_of

NO_DEPENDENCY_FILES = "no dependency files found"


@dataclass(frozen=True)
class ProjectFacts:
    """The project as init sees it; `dependencies` is None when it declares none yet."""

    project_dir: Path  # manage.py's folder
    git_root: Path  # the git work tree, or project_dir before `git init`
    infra_dir: Path
    settings_path: Path
    project_name: str
    python_version: str
    dependencies: DependencySpec | None
    health_check_path: str = "/"


def project_name_of(settings_module: str) -> str:
    """The settings' package as a valid project_name: "My_Site.settings" -> "my_site"."""
    package = settings_module.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9_-]", "-", package).lstrip("0123456789_-")
    return (name or "site")[:40]


def python_version_of(project_dir: Path, git_root: Path) -> str:
    """`.python-version` (uv and pyenv write it) beside manage.py or at the git root, else this Python's."""
    for folder in (project_dir, git_root):
        pinned = folder / ".python-version"
        if pinned.is_file():
            match = re.match(r"\s*(3\.\d+)", pinned.read_text())
            if match:
                return match.group(1)
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def find_manage_py(candidates: list[Path]) -> Path:
    """The first manage.py among the candidates (the infra folder's parent, the working folder...)."""
    for candidate in candidates:
        if candidate.name == "manage.py" and candidate.is_file():
            return candidate.resolve()
        if (candidate / "manage.py").is_file():
            return (candidate / "manage.py").resolve()
    raise ConfigError("no manage.py found in " + " or ".join(map(str, candidates)) + "; run init in the project's folder")


def settings_path_of(project_dir: Path, module: str) -> Path:
    """The settings module's file: `mysite/settings.py` or `mysite/settings/__init__.py`."""
    base = project_dir.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    raise ConfigError(f"the settings module {module} (from manage.py) is not a file in {project_dir}")


def health_check_path_of(settings_path: Path) -> str:
    """A page a fresh project answers with DEBUG off: startproject's "/" is a 404 then, its admin login is not."""
    urls = settings_path.parent / "urls.py"
    if urls.is_file() and "admin.site.urls" in urls.read_text(errors="replace"):
        return "/admin/login/"
    return "/"


def _git_root_or(folder: Path) -> Path:
    try:
        return find_git_root(folder)
    except ConfigError:  # before `git init`: the project folder stands in for it
        return folder


def inspect_new_project(manage_py: Path, infra_dir: Path | None = None) -> ProjectFacts:
    """Everything init fills in: the settings file, the name, the Python version, the dependency manager."""
    project_dir = manage_py.parent.resolve()
    module = settings_module_of(manage_py)
    if not module:
        raise ConfigError(f"{manage_py} sets no DJANGO_SETTINGS_MODULE default; is it Django's manage.py?")
    git_root = _git_root_or(project_dir)
    try:
        spec: DependencySpec | None = detect_dependencies(project_dir, git_root)
    except ConfigError as error:
        if NO_DEPENDENCY_FILES not in str(error):
            raise
        spec = None
    settings_path = settings_path_of(project_dir, module)
    return ProjectFacts(project_dir, git_root, (infra_dir or project_dir / "infra").resolve(), settings_path,
                        project_name_of(module), python_version_of(project_dir, git_root), spec,
                        health_check_path_of(settings_path))
