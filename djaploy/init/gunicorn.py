"""Whether and how init adds gunicorn (the server runs the app with it) with the project's own manager.

requirements.txt gets a line; Poetry, uv and Pipenv run their own command so the lock file follows.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from djaploy.dependencies import DependencySpec, requirement_names
from djaploy.dependencies.requirements_txt import included_files
from djaploy.verify import WorkingTree

PACKAGE = "gunicorn"

#: manager -> the command that adds a package and updates the lock (without installing it here when it can)
ADD_COMMANDS = {
    "poetry": ("poetry", "add", "--lock", PACKAGE),
    "uv": ("uv", "add", "--no-sync", PACKAGE),
    "pep621": ("uv", "add", "--frozen", "--no-sync", PACKAGE),  # pyproject.toml only: no lock to create
    "pipenv": ("pipenv", "install", PACKAGE),
}


@dataclass(frozen=True)
class AddLine:
    """Append `line` to the requirements file `path`."""

    path: Path
    line: str


@dataclass(frozen=True)
class RunCommand:
    """Run the manager's own command in `folder` (it rewrites the manifest and the lock)."""

    folder: Path
    argv: tuple[str, ...]


DependencyChange = AddLine | RunCommand


def _names(requirements: list[str]) -> set[str]:
    found = set()
    for text in requirements:
        try:
            found.add(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
    return found


def _toml(path: Path) -> dict:
    return tomllib.loads(path.read_text()) if path.is_file() else {}


def declared_names(spec: DependencySpec, git_root: Path) -> set[str]:
    """The packages the project's manifest declares (not its lock): what the user wrote."""
    folder = git_root / spec.directory
    if spec.manager == "pip":
        text = (folder / "requirements.txt").read_text()
        return requirement_names(text + included_files(spec.files[0], text, WorkingTree(git_root)))
    if spec.manager == "pipenv":
        return {canonicalize_name(name) for name in _toml(folder / "Pipfile").get("packages", {})}
    pyproject = _toml(folder / "pyproject.toml")
    names = _names(pyproject.get("project", {}).get("dependencies", []))
    if spec.manager == "poetry":
        names |= {canonicalize_name(name) for name in pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {})}
    return names


def gunicorn_change(spec: DependencySpec, git_root: Path) -> DependencyChange | None:
    """None when gunicorn is declared already; else the one change that declares it."""
    if PACKAGE in declared_names(spec, git_root):
        return None
    folder = git_root / spec.directory
    if spec.manager == "pip":
        return AddLine(folder / "requirements.txt", PACKAGE)
    return RunCommand(folder, ADD_COMMANDS[spec.manager])


def new_requirements(django_version: tuple[int, ...]) -> str:
    """requirements.txt for a project that has no dependency files yet: the Django it runs, and gunicorn."""
    major, minor = django_version[:2]
    return f"django>={major}.{minor},<{major}.{minor + 1}\n{PACKAGE}\n"
