"""infra/prepare.py: the project's own build step, run on the deploying machine before a release.

    # infra/prepare.py
    import subprocess

    def prepare():
        subprocess.run(["npm", "run", "build"], check=True)   # runs in the git root
        return ["frontend/dist"]                              # optional: ship these too

`prepare()` runs with the git root as working directory, before the release tarball is built,
so a failure stops the deploy before anything is uploaded. It may return paths (relative to
the git root) of files or folders it built: they go into the release even when git ignores
them (a front-end bundle usually is), for --latest and --release as well as --local.
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from collections.abc import Iterable
from pathlib import Path, PurePath
from types import ModuleType
from typing import TextIO

from djaploy.errors import DjaployError
from djaploy.project import find_git_root

PREPARE_FILE = "prepare.py"


class PrepareFailed(DjaployError):
    """infra/prepare.py failed: nothing was uploaded."""


def run_prepare(config_dir: Path, out: TextIO, verbosity: int = 1) -> list[str]:
    """Run `prepare()` from `<config_dir>/prepare.py` if it exists; return the paths it asks to ship.

    A failure raises PrepareFailed naming the file and the error; the traceback is written to
    `out` only at verbosity 2 or more (a build tool's own output has usually said why already).
    """
    path = Path(config_dir) / PREPARE_FILE
    if not path.is_file():
        return []
    git_root = find_git_root(Path(config_dir))
    out.write(f"prepare: running prepare() from {path} (in {git_root})\n")
    previous = Path.cwd()
    try:
        os.chdir(git_root)
        returned = _call_prepare(path)
    except PrepareFailed:
        raise
    except (Exception, SystemExit) as error:  # noqa: BLE001 - any failure of user code (sys.exit too) stops the deploy
        if verbosity >= 2:
            out.write("".join(traceback.format_exception(error)))
        raise PrepareFailed(f"{path}: prepare() failed, nothing was deployed: {_describe(error)}"
                            + ("" if verbosity >= 2 else " (run with -v 2 for the traceback)")) from None
    finally:
        os.chdir(previous)
    return _checked_paths(returned, git_root, path)


def _call_prepare(path: Path) -> object:
    module = _load(path)
    prepare = getattr(module, "prepare", None)
    if prepare is None:
        return None
    if not callable(prepare):
        raise PrepareFailed(f"{path}: prepare is not a function; define `def prepare(): ...`")
    return prepare()


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("djaploy_infra_prepare", path)
    if spec is None or spec.loader is None:
        raise PrepareFailed(f"{path}: cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"it exited with status {error.code}"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _checked_paths(returned: object, git_root: Path, path: Path) -> list[str]:
    """prepare()'s return value: None, or paths relative to the git root that exist."""
    if returned is None:
        return []
    if isinstance(returned, (str, PurePath)) or not isinstance(returned, Iterable):
        raise PrepareFailed(f"{path}: prepare() must return None or a list of paths, got {returned!r}")
    paths = []
    for item in returned:
        candidate = (git_root / item).resolve() if isinstance(item, (str, PurePath)) else None
        if candidate is None or not candidate.is_relative_to(git_root):
            raise PrepareFailed(f"{path}: prepare() returned {item!r}; return paths inside the repository {git_root}")
        if not candidate.exists():
            raise PrepareFailed(f"{path}: prepare() returned {item!r}, which does not exist in {git_root}")
        paths.append(candidate.relative_to(git_root).as_posix())
    return paths
