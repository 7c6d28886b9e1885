"""infra/prepare.py: the project's own build step, run on the deploying machine before a release.

    # infra/prepare.py
    import subprocess

    def prepare():
        subprocess.run(["npm", "run", "build"], check=True)   # runs in the git root
        return ["frontend/dist"]                              # optional: ship these too

or, as djaploy 1.x's README writes it, with `run_command`, whose output shows in the progress
and the run log, and whose failure stops the deploy naming the command:

    from djaploy.prepare import run_command

    def prepare():
        run_command("npm run build")

`prepare()` runs with the git root as working directory, before the release tarball is built,
so a failure stops the deploy before anything is uploaded. It may return paths (relative to
the git root) of files or folders it built: they go into the release even when git ignores
them (a front-end bundle usually is), for --latest and --release as well as --local.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path, PurePath
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

from djaploy.errors import DjaployError
from djaploy.project import find_git_root

if TYPE_CHECKING:
    from djaploy.output import Reporter

PREPARE_FILE = "prepare.py"
#: how many of a failed command's last output lines its error quotes
FAILED_OUTPUT_LINES = 10

#: where run_command's lines go while prepare() runs (the progress and the run log)
_say: ContextVar[Callable[[str], None] | None] = ContextVar("djaploy_prepare_say", default=None)


class PrepareFailed(DjaployError):
    """infra/prepare.py failed: nothing was uploaded."""


class CommandFailed(PrepareFailed):
    """A run_command inside prepare() exited non-zero (or could not start)."""


def run_command(command: str | Sequence[str], *, cwd: str | Path | None = None,
                env: dict[str, str] | None = None) -> str:
    """Run a local build command from prepare() (djaploy 1.x's API); return its output.

    A string runs in the shell, as in 1.x (pipes and `&&` work); a list runs without one. Each
    output line goes to the progress and the run log as it comes; a non-zero exit raises
    CommandFailed, which stops the deploy before anything is uploaded and names the command.
    """
    say = _say.get() or (lambda text: print(text, flush=True))
    shown = command if isinstance(command, str) else subprocess.list2cmdline(list(command))
    say(f"prepare $ {shown}")
    lines: list[str] = []
    try:
        process = subprocess.Popen(command, shell=isinstance(command, str), cwd=cwd, env=env, text=True,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   errors="replace")
    except OSError as error:
        raise CommandFailed(f"command `{shown}` could not start: {error}") from None
    assert process.stdout is not None
    with process:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            say(f"prepare | {lines[-1]}")
    if process.returncode != 0:
        tail = "\n".join(lines[-FAILED_OUTPUT_LINES:])
        raise CommandFailed(f"command `{shown}` failed with exit status {process.returncode}"
                            + (f"; its last lines:\n{tail}" if tail else ""))
    return "\n".join(lines)


@contextmanager
def _output_to(say: Callable[[str], None]) -> Iterator[None]:
    token = _say.set(say)
    try:
        yield
    finally:
        _say.reset(token)


def run_prepare(config_dir: Path, out: TextIO, verbosity: int = 1, reporter: Reporter | None = None) -> list[str]:
    """Run `prepare()` from `<config_dir>/prepare.py` if it exists; return the paths it asks to ship.

    A failure raises PrepareFailed naming the file and the error; the traceback is written to
    `out` only at verbosity 2 or more (a build tool's own output has usually said why already).
    With a `reporter`, what prepare prints (run_command's output) goes to its progress and run log.
    """
    path = Path(config_dir) / PREPARE_FILE
    if not path.is_file():
        return []
    git_root = find_git_root(Path(config_dir))
    say = reporter.line if reporter else (lambda text: out.write(text + "\n"))
    say(f"prepare: running prepare() from {path} (in {git_root})")
    previous = Path.cwd()
    try:
        os.chdir(git_root)
        with _output_to(say):
            returned = _call_prepare(path)
    except CommandFailed as error:
        raise PrepareFailed(f"{path}: prepare() failed, nothing was deployed: {error}") from None
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
