"""The one-round-trip checks in front of pyinfra's files.put and systemd.service."""

from __future__ import annotations

import getpass
import grp
import os
import subprocess
from pathlib import Path

from djaploy import fast_paths
from djaploy.context import CommandResult


class LocalShell:
    """A plan whose queries run here, in sh, so the real command text is what is tested."""

    dry_run = False

    def __init__(self, answer: str | None = None) -> None:
        self.answer = answer
        self.commands: list[str] = []

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        self.commands.append(command)
        if self.answer is not None:
            return CommandResult(True, self.answer)
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        return CommandResult(done.returncode == 0, done.stdout, done.stderr)


def test_unchanged_file_needs_one_query(tmp_path: Path) -> None:
    path = tmp_path / "unit's file.service"
    path.write_bytes(b"[Unit]\n")
    path.chmod(0o644)
    user = getpass.getuser()
    if grp.getgrgid(os.getgid()).gr_name != user:
        return  # the check wants owner:owner, as djaploy writes files; this machine's user differs
    plan = LocalShell()
    assert fast_paths.file_is_unchanged(plan, str(path), b"[Unit]\n", user, "644")
    assert len(plan.commands) == 1
    assert not fast_paths.file_is_unchanged(plan, str(path), b"[Unit]\nchanged\n", user, "644")
    assert not fast_paths.file_is_unchanged(plan, str(path), b"[Unit]\n", user, "600")
    assert not fast_paths.file_is_unchanged(plan, str(path), b"[Unit]\n", "someone-else", "644")


def test_missing_file_or_link_is_never_unchanged(tmp_path: Path) -> None:
    plan = LocalShell()
    assert not fast_paths.file_is_unchanged(plan, str(tmp_path / "nothing"), b"", "root", "644")
    real = tmp_path / "real"
    real.write_text("x")
    (tmp_path / "link").symlink_to(real)
    assert not fast_paths.file_is_unchanged(plan, str(tmp_path / "link"), b"x", getpass.getuser(), "644")


def test_service_settled_only_on_plain_answers() -> None:
    assert fast_paths.service_is_settled(LocalShell("active\nenabled\n"), "a.socket", running=True, enabled=True)
    assert not fast_paths.service_is_settled(LocalShell("active\nstatic\n"), "a.socket", running=True, enabled=True)
    assert not fast_paths.service_is_settled(LocalShell("inactive\nenabled\n"), "a.socket", running=True, enabled=True)
    assert fast_paths.service_is_settled(LocalShell("active\ndisabled\n"), "a.socket", running=True, enabled=False)
    assert not fast_paths.service_is_settled(LocalShell("inactive\ndisabled\n"), "a.socket", running=False, enabled=False)


def test_unit_names_and_quoting() -> None:
    assert fast_paths.unit_name("ledger") == "ledger.service"
    assert fast_paths.unit_name("ledger.timer") == "ledger.timer"
    command = fast_paths.restart_command("x; touch MARKER.service", daemon_reload=True)
    assert command.startswith("systemctl daemon-reload && systemctl restart 'x; touch MARKER.service'")
    assert "'/etc/a b'" in fast_paths.file_check_command("/etc/a b")


def test_directories_report_only_what_differs(tmp_path: Path) -> None:
    user = getpass.getuser()
    if grp.getgrgid(os.getgid()).gr_name != user:
        return
    good, loose, absent = tmp_path / "good", tmp_path / "loose", tmp_path / "absent"
    good.mkdir(mode=0o750)
    good.chmod(0o750)
    loose.mkdir()
    loose.chmod(0o777)
    wanted = [(str(good), user, "750"), (str(loose), user, "755"), (str(absent), user, "755")]
    assert fast_paths.unsettled_directories(LocalShell(), wanted) == wanted[1:]
    assert fast_paths.unsettled_directories(LocalShell(""), wanted) == wanted  # no answer: all of them


def test_user_settled_needs_home_shell_and_ownership() -> None:
    assert fast_paths.user_is_settled(LocalShell("/home/app\n/bin/bash\napp app\n"), "app", home="/home/app", login_shell="/bin/bash")
    assert not fast_paths.user_is_settled(LocalShell("/home/app\n/bin/sh\napp app\n"), "app", home="/home/app", login_shell="/bin/bash")
    assert not fast_paths.user_is_settled(LocalShell("/home/app\n/bin/bash\nroot root\n"), "app", home="/home/app", login_shell="/bin/bash")
    assert not fast_paths.user_is_settled(LocalShell(""), "app", home="/home/app", login_shell="/bin/bash")
