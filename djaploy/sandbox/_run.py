"""One place to run host commands, so failures always carry the command and its stderr."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from .errors import SandboxError


def tail(text: str, lines: int = 20) -> str:
    """Keep error messages short: the last lines of a log or an output hold the reason."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(
    args: Sequence[str],
    *,
    check: bool = True,
    timeout: float | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell string) and capture its text output.

    With check=True a non-zero exit raises SandboxError naming the command and its stderr.
    """
    try:
        proc = subprocess.run(
            list(args),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise SandboxError(f"command not found: {args[0]} (install it on the host)") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"command timed out after {timeout}s: {' '.join(args)}") from exc
    if check and proc.returncode != 0:
        detail = tail(proc.stderr or proc.stdout or "")
        raise SandboxError(f"command failed ({proc.returncode}): {' '.join(args)}\n{detail}")
    return proc
