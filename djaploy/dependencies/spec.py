"""What the rest of djaploy holds about a project's dependencies: the spec, the pinned list and the tree it is read from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

#: the pinned list inside a release, beside the project's dependency files
PINNED_NAME = ".djaploy-requirements.txt"

LABELS = {"pip": "pip (requirements.txt)", "poetry": "Poetry", "pipenv": "Pipenv", "uv": "uv",
          "pep621": "PEP 621 pyproject.toml without a lock"}
LOCK_COMMANDS = {"poetry": "poetry lock", "pipenv": "pipenv lock", "uv": "uv lock"}


@dataclass(frozen=True)
class DependencySpec:
    """How a project declares its dependencies: the manager and the files it reads."""

    manager: str  # one of config.DEPENDENCY_MANAGERS
    directory: str  # folder holding the files, relative to the git root, posix ("" = the root)
    files: tuple[str, ...]  # the files the pinned list is made from, relative to the git root

    @property
    def pinned_path(self) -> str:
        """Where the pinned list goes in the release: relative paths in it resolve as locally."""
        return (PurePosixPath(self.directory) / PINNED_NAME).as_posix() if self.directory else PINNED_NAME

    def describe(self) -> str:
        return f"{LABELS[self.manager]}: {', '.join(self.files)}"


@dataclass(frozen=True)
class PinnedRequirements:
    """The list the server installs, and what keys the venv (it also covers `-r` includes)."""

    text: str
    hash_input: str


class SourceTree(Protocol):
    """The project's files as shipped (working tree for --local, the commit otherwise)."""

    def read(self, path: str) -> str | None:
        """A file's text by path relative to the git root, or None when the release lacks it."""

    def directory(self) -> Path:
        """The tree on disk (for tools that read a folder, like uv)."""
