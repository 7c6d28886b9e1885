"""Errors a user can act on. Commands turn them into a clean message and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


def display_path(path: str | Path) -> str:
    """Path relative to the working directory when it is below it: what the user typed, shorter.

    Every error that names a local file names it this way."""
    try:
        return str(Path(path).absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class DjaployError(Exception):
    """Base class: the message is shown to the user as it is, without a traceback."""


class ConfigError(DjaployError):
    """Bad config or inventory. The message names the file and the field and says what to do."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.detail = message
        where = ""
        if file and field:
            where = f"{file}: {field}: "
        elif file:
            where = f"{file}: "
        elif field:
            where = f"{field}: "
        super().__init__(f"{where}{message}")


class ArtifactError(DjaployError):
    """The release could not be built from git (unknown tag, not a git repo...)."""


class RemoteError(DjaployError):
    """A step failed on a host. Names the host, the step and the tail of the remote output."""

    def __init__(self, host: str, step: str, output: str = "", hint: str = "") -> None:
        self.host = host
        self.step = step
        self.output = output
        self.hint = hint
        text = f"[{host}] step '{step}' failed"
        if output:
            text += "\n--- remote output (last lines) ---\n" + output.rstrip()
        if hint:
            text += f"\n{hint}"
        super().__init__(text)


class ConnectError(DjaployError):
    """A host could not be reached over SSH."""


class LockHeld(DjaployError):
    """Another deploy, activate or rollback holds the host's lock."""


class UndoFailed(DjaployError):
    """An operation failed, and putting the host back failed too: the report shows both errors."""

    def __init__(self, error: BaseException, undo: str, undo_error: BaseException) -> None:
        self.error = error
        self.undo = undo
        self.undo_error = undo_error
        first = str(error) if isinstance(error, Exception) else f"interrupted ({type(error).__name__})"
        second = str(undo_error) or type(undo_error).__name__
        super().__init__(f"{first or type(error).__name__}\nthen undoing it ({undo}) failed too:\n{second}")
