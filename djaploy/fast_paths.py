"""One round trip where pyinfra would ask two or more facts first: users, directories, files, services.

Every configureserver and every deploy re-checks the same app user, directories, unit files,
site files and services, and almost always finds nothing to change. pyinfra's operations ask
their facts one by one before deciding (files.put: the file and its checksum; systemd.service:
status and enabled; files.directory and server.user: several each). Here one query answers
"already as wanted?", and a restart runs without asking anything. Whatever the answer does not
settle (a changed file, a disabled or failed unit, an odd reply, a dry run of a restart) goes to
the pyinfra operation as before, so what changes a host, and how it is reported, stays pyinfra's.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from djaploy import shell
from djaploy.context import CommandResult

UNIT_SUFFIXES = (".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target", ".path",
                 ".timer", ".slice", ".scope")


class Queries(Protocol):
    """The one thing a fast path needs of a plan: a read-only command on the host."""

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult: ...


def unit_name(name: str) -> str:
    """systemd's own default: a name without a unit suffix is a service."""
    return name if name.endswith(UNIT_SUFFIXES) else f"{name}.service"


def file_check_command(path: str) -> str:
    """Prints owner, group, mode and SHA-1 of a regular file, or 'missing'."""
    p = shell.q(path)
    return f"if [ -f {p} ] && [ ! -L {p} ]; then stat -c '%U %G %a' {p} && sha1sum < {p} | cut -c1-40; else echo missing; fi"


def file_is_unchanged(plan: Queries, path: str, content: bytes, owner: str, mode: str) -> bool:
    """The file holds `content` with owner:owner and `mode` already (one round trip)."""
    answer = plan.query(file_check_command(path))
    words = answer.stdout.split()
    if not answer.ok or len(words) != 4:
        return False
    user, group, remote_mode, digest = words
    return (user, group) == (owner, owner) and int(remote_mode, 8) == int(mode, 8) and digest == hashlib.sha1(content).hexdigest()


def service_state_command(unit: str) -> str:
    return f"{shell.systemctl('is-active', unit)}; {shell.systemctl('is-enabled', unit)}; true"


def service_is_settled(plan: Queries, unit: str, *, running: bool, enabled: bool) -> bool:
    """Running (and enabled) as wanted already: nothing to do (one round trip). Only the plain
    answers count; anything unusual (static, masked, failed, activating) goes to pyinfra."""
    if not running:
        return False
    words = plan.query(service_state_command(unit)).stdout.split()
    return words[:1] == ["active"] and (not enabled or words[1:2] == ["enabled"])


def restart_command(unit: str, *, daemon_reload: bool) -> str:
    """Restart (start, when stopped: as pyinfra's restarted=True does) and say whether it is enabled."""
    reload = f"{shell.systemctl('daemon-reload')} && " if daemon_reload else ""
    return f"{reload}{shell.systemctl('restart', unit)} && {{ {shell.systemctl('is-enabled', unit)} || true; }}"


def directories_check_command(paths: list[str]) -> str:
    """One line per path: owner, group and mode ('missing' for anything but a real directory)."""
    return "; ".join(
        f"if [ -d {shell.q(p)} ] && [ ! -L {shell.q(p)} ]; then stat -c '%U %G %a' {shell.q(p)}; else echo missing; fi"
        for p in paths
    )


def unsettled_directories(plan: Queries, wanted: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Of (path, owner, mode), the directories not already there as wanted (one round trip).
    An answer that does not line up with the question settles nothing: all of them."""
    if not wanted:
        return []
    lines = plan.query(directories_check_command([path for path, _, _ in wanted])).stdout.splitlines()
    if len(lines) != len(wanted):
        return list(wanted)
    return [(path, owner, mode) for (path, owner, mode), line in zip(wanted, lines, strict=True)
            if line.split() != [owner, owner, f"{int(mode, 8):o}"]]


def user_check_command(name: str) -> str:
    """The account's home and login shell, and its home's owner and group; nothing for no such user."""
    n = shell.q(name)
    return (f"entry=$(getent passwd {n}) && home=$(printf '%s' \"$entry\" | cut -d: -f6) && "
            f"printf '%s\\n' \"$home\" \"$(printf '%s' \"$entry\" | cut -d: -f7)\" && stat -c '%U %G' \"$home\"")


def user_is_settled(plan: Queries, name: str, *, home: str, login_shell: str) -> bool:
    """The user exists with this home (there, theirs) and shell: pyinfra's server.user would change nothing."""
    answer = plan.query(user_check_command(name))
    return answer.ok and answer.stdout.splitlines() == [home, login_shell, f"{name} {name}"]
