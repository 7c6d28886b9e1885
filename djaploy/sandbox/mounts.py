"""Mount bookkeeping read from /proc/self/mountinfo, so cleanup never deletes through a mount."""

from __future__ import annotations

import os
from pathlib import Path

from ._run import run
from .errors import SandboxError


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountpoints(mountinfo: str) -> list[str]:
    """Mount points (field 5) of a mountinfo text, in the kernel's order."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) >= 5:
            points.append(_unescape(fields[4]))
    return points


def mounts_under(path: Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below `path`, deepest first (the order to unmount them in)."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return []
    root = os.path.normpath(str(path))
    found = [p for p in parse_mountpoints(mountinfo) if p == root or p.startswith(root + "/")]
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_under(path: Path) -> None:
    """Unmount everything at or below `path`; lazily as a last resort so cleanup can go on."""
    for point in mounts_under(path):
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], check=False)
    left = mounts_under(path)
    if left:
        raise SandboxError(f"could not unmount: {', '.join(left)}")
