"""uv on the deploying machine: the binary from the `uv` Python package, run offline where it can be."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from djaploy.errors import ArtifactError

SUBPROCESS_TIMEOUT = 600


def find_uv() -> str:
    """The uv binary on the deploying machine: the `uv` package djaploy depends on, or PATH."""
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if not found:
        raise ArtifactError("uv projects (and pyproject.toml projects without a lock) need uv on the machine you "
                            "deploy from: pip install uv")
    return found


def _run_uv(arguments: list[str], folder: Path, what: str) -> list[str]:
    command = [find_uv(), *arguments]
    try:
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"{what} took longer than {SUBPROCESS_TIMEOUT}s in {folder}") from None
    if result.returncode != 0:
        raise ArtifactError(f"{what} failed in {folder}:\n{result.stderr.strip()[-2000:]}")
    return [line for line in result.stdout.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def uv_export(folder: Path) -> list[str]:
    """uv.lock's pinned list without dev or other default groups, offline, from the lock as it is."""
    return _run_uv(
        ["export", "--frozen", "--offline", "--no-default-groups", "--no-emit-project", "--no-editable",
         "--no-hashes", "--no-header", "--no-annotate", "--format", "requirements.txt", "--project", str(folder)],
        folder,
        "uv export (uv.lock -> pinned requirements)",
    )


def uv_compile(folder: Path, python_version: str) -> list[str]:
    """Resolve a lock-less pyproject.toml's [project] dependencies once, for every platform.

    Resolving here (not on each server) means every host installs the same versions, and the
    venv is reused until the resolution changes.
    """
    return _run_uv(
        ["pip", "compile", "pyproject.toml", "--universal", "--python-version", python_version,
         "--no-header", "--no-annotate", "--quiet"],
        folder,
        "uv pip compile (pyproject.toml -> pinned requirements; reads the package index)",
    )
