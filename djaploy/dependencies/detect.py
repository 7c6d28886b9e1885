"""Which dependency manager a project uses: the files beside manage.py, then at the git root."""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

from djaploy.config import DEPENDENCY_MANAGERS
from djaploy.errors import ConfigError

from .spec import LABELS, LOCK_COMMANDS, DependencySpec


def _pyproject(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _indicators(folder: Path) -> dict[str, list[str]]:
    """Manager -> the files in `folder` that point at it."""
    pyproject = _pyproject(folder / "pyproject.toml")
    has = {name: (folder / name).is_file() for name in ("requirements.txt", "poetry.lock", "Pipfile", "Pipfile.lock", "uv.lock")}
    poetry_table = "poetry" in pyproject.get("tool", {})
    found: dict[str, list[str]] = {}
    if has["requirements.txt"]:
        found["pip"] = ["requirements.txt"]
    if has["poetry.lock"] or poetry_table:
        found["poetry"] = (["pyproject.toml [tool.poetry]"] if poetry_table else []) + (
            ["poetry.lock"] if has["poetry.lock"] else [])
    if has["Pipfile"] or has["Pipfile.lock"]:
        found["pipenv"] = [name for name in ("Pipfile", "Pipfile.lock") if has[name]]
    if has["uv.lock"]:
        found["uv"] = ["uv.lock"]
    if "project" in pyproject:
        found["pep621"] = ["pyproject.toml [project]"]
    return found


def _found_in(folder: Path) -> dict[str, list[str]]:
    """The managers a folder uses (several = ambiguous): a [project] table that Poetry or uv
    locks is theirs, not a lock-less PEP 621 project."""
    found = _indicators(folder)
    if "poetry" in found or "uv" in found:
        found.pop("pep621", None)
    return found


def _spec(manager: str, folder: Path, git_root: Path) -> DependencySpec:
    """The files `manager` needs in `folder`; a Poetry/Pipenv/uv project without its lock is an error."""
    relative = folder.relative_to(git_root).as_posix()
    directory = "" if relative == "." else relative
    needed = {"pip": ["requirements.txt"], "poetry": ["pyproject.toml", "poetry.lock"],
              "pipenv": ["Pipfile.lock"], "uv": ["pyproject.toml", "uv.lock"], "pep621": ["pyproject.toml"]}[manager]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        lock = LOCK_COMMANDS.get(manager)
        how = f"run `{lock}` in {folder} and commit {missing[-1]}" if lock and missing[-1].endswith("lock") else \
            f"add {' and '.join(missing)} to {folder}"
        raise ConfigError(f"{LABELS[manager]} project without {' and '.join(missing)} in {folder}: {how}; "
                          "djaploy installs exactly what the lock file pins", field="dependency_manager")
    return DependencySpec(manager, directory, tuple((PurePosixPath(directory) / name).as_posix() for name in needed))


def detect_dependencies(project_dir: Path, git_root: Path, forced: str | None = None) -> DependencySpec:
    """Find how the project declares dependencies: beside manage.py first, then at the git root.

    Exactly one kind must be present in the first folder that has any, unless `forced`
    (config.py's dependency_manager) says which one to use.
    """
    folders = [project_dir.resolve()]
    if git_root.resolve() != folders[0]:
        folders.append(git_root.resolve())
    choose = 'choose one with dependency_manager="..." in config.py (' + ", ".join(DEPENDENCY_MANAGERS) + ")"
    if forced:
        if forced not in DEPENDENCY_MANAGERS:
            raise ConfigError(f"unknown dependency manager {forced!r}; {choose}", field="dependency_manager")
        for folder in folders:
            if forced in _indicators(folder):
                return _spec(forced, folder, git_root.resolve())
        raise ConfigError(f'dependency_manager="{forced}" but no {LABELS[forced]} files in '
                          f"{' or '.join(map(str, folders))}", field="dependency_manager")
    for folder in folders:
        found = _found_in(folder)
        if len(found) > 1:
            listing = "; ".join(f"{LABELS[name]} ({', '.join(files)})" for name, files in found.items())
            raise ConfigError(f"several dependency managers found in {folder}: {listing}; {choose}",
                              field="dependency_manager")
        if found:
            return _spec(next(iter(found)), folder, git_root.resolve())
    raise ConfigError(
        f"no dependency files found in {' or '.join(map(str, folders))}: djaploy looks for requirements.txt, "
        "pyproject.toml with poetry.lock (Poetry), Pipfile.lock (Pipenv), uv.lock (uv), or a pyproject.toml with "
        f"a [project] table; add one (listing Django and gunicorn) or {choose}",
        field="dependency_manager",
    )
