"""The one-round-trip checks in front of pyinfra's server.user, files.directory, files.put and
systemd.service: the shell they send (run here, in sh), what they make of the answers, and that
PyinfraPlan asks pyinfra only when the answer settles nothing."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from djaploy import fast_paths
from djaploy.context import CommandResult
from djaploy.engine import PyinfraPlan
from djaploy.modules.core import Module as Core
from tests.unit.conftest import RecordingPlan, make_ctx


class LocalShell:
    """A plan whose queries run here, in sh (or get `answer`), so the real command text is tested."""

    def __init__(self, answer: str | None = None, ok: bool = True) -> None:
        self.answer, self.ok = answer, ok
        self.commands: list[str] = []

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        self.commands.append(command)
        if self.answer is not None:
            return CommandResult(self.ok, self.answer)
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        return CommandResult(done.returncode == 0, done.stdout, done.stderr)


def owner_group_mode(path: Path) -> str:
    """What `stat -c '%U %G %a'` prints, worked out in Python."""
    info = path.stat()
    return f"{pwd.getpwuid(info.st_uid).pw_name} {grp.getgrgid(info.st_gid).gr_name} {info.st_mode & 0o7777:o}"


# --- files ------------------------------------------------------------------------------------------


def test_file_check_prints_owner_group_mode_and_sha1(tmp_path: Path) -> None:
    path = tmp_path / "unit's file.service"
    path.write_bytes(b"[Unit]\n")
    path.chmod(0o640)
    answer = LocalShell().query(fast_paths.file_check_command(str(path)))
    assert answer.stdout.split() == [*owner_group_mode(path).split(), hashlib.sha1(b"[Unit]\n").hexdigest()]


def test_missing_file_or_link_is_never_unchanged(tmp_path: Path) -> None:
    plan = LocalShell()
    assert not fast_paths.file_is_unchanged(plan, str(tmp_path / "nothing"), b"", "root", "644")
    real = tmp_path / "real"
    real.write_text("x")
    (tmp_path / "link").symlink_to(real)
    owner = owner_group_mode(real).split()[0]
    assert not fast_paths.file_is_unchanged(plan, str(tmp_path / "link"), b"x", owner, "644")
    assert plan.commands[0].startswith("if [ -f ")


def test_file_unchanged_needs_content_owner_group_and_mode() -> None:
    digest = hashlib.sha1(b"[Unit]\n").hexdigest()
    answer = LocalShell(f"app app 644\n{digest}\n")
    assert fast_paths.file_is_unchanged(answer, "/etc/x", b"[Unit]\n", "app", "644")
    assert len(answer.commands) == 1
    assert not fast_paths.file_is_unchanged(answer, "/etc/x", b"[Unit]\nchanged\n", "app", "644")
    assert not fast_paths.file_is_unchanged(answer, "/etc/x", b"[Unit]\n", "app", "600")
    assert not fast_paths.file_is_unchanged(answer, "/etc/x", b"[Unit]\n", "root", "644")
    assert not fast_paths.file_is_unchanged(LocalShell(f"app root 644\n{digest}\n"), "/etc/x", b"[Unit]\n", "app", "644")
    assert not fast_paths.file_is_unchanged(LocalShell("missing\n"), "/etc/x", b"[Unit]\n", "app", "644")
    assert not fast_paths.file_is_unchanged(LocalShell(f"app app 644\n{digest}\n", ok=False), "/etc/x", b"[Unit]\n", "app", "644")


# --- services ---------------------------------------------------------------------------------------


def test_service_settled_only_on_plain_answers() -> None:
    assert fast_paths.service_is_settled(LocalShell("active\nenabled\n"), "a.socket", running=True, enabled=True)
    assert not fast_paths.service_is_settled(LocalShell("active\nstatic\n"), "a.socket", running=True, enabled=True)
    assert not fast_paths.service_is_settled(LocalShell("inactive\nenabled\n"), "a.socket", running=True, enabled=True)
    assert not fast_paths.service_is_settled(LocalShell("activating\nenabled\n"), "a.socket", running=True, enabled=True)
    assert fast_paths.service_is_settled(LocalShell("active\ndisabled\n"), "a.socket", running=True, enabled=False)
    assert not fast_paths.service_is_settled(LocalShell("inactive\ndisabled\n"), "a.socket", running=False, enabled=False)


def test_unit_names_and_quoting() -> None:
    assert fast_paths.unit_name("ledger") == "ledger.service"
    assert fast_paths.unit_name("ledger.timer") == "ledger.timer"
    command = fast_paths.restart_command("x; touch MARKER.service", daemon_reload=True)
    assert command.startswith("systemctl daemon-reload && systemctl restart 'x; touch MARKER.service'")
    assert fast_paths.restart_command("a.service", daemon_reload=False).startswith("systemctl restart a.service && ")
    assert "'/etc/a b'" in fast_paths.file_check_command("/etc/a b")
    assert "'x; y'" in fast_paths.service_state_command("x; y")


# --- directories and the app user -------------------------------------------------------------------


def test_directories_check_prints_one_line_per_path(tmp_path: Path) -> None:
    there, absent, link = tmp_path / "a dir", tmp_path / "absent", tmp_path / "link"
    there.mkdir()
    there.chmod(0o750)
    link.symlink_to(there)
    answer = LocalShell().query(fast_paths.directories_check_command([str(there), str(absent), str(link)]))
    assert answer.stdout.splitlines() == [owner_group_mode(there), "missing", "missing"]


def test_directories_report_only_what_differs() -> None:
    wanted = [("/srv/a", "app", "750"), ("/srv/b", "app", "755"), ("/srv/c", "app", "755"), ("/srv/d", "app", "755")]
    answer = LocalShell("app app 750\napp app 777\nmissing\nroot app 755\n")
    assert fast_paths.unsettled_directories(answer, wanted) == wanted[1:]
    assert len(answer.commands) == 1
    assert fast_paths.unsettled_directories(LocalShell("app app 750\n"), wanted) == wanted  # an answer short: all
    assert fast_paths.unsettled_directories(LocalShell(""), []) == []


def test_user_settled_needs_home_shell_and_ownership() -> None:
    settled = "/home/app\n/bin/bash\napp app\n"
    assert fast_paths.user_is_settled(LocalShell(settled), "app", home="/home/app", login_shell="/bin/bash")
    assert not fast_paths.user_is_settled(LocalShell("/home/app\n/bin/sh\napp app\n"), "app", home="/home/app", login_shell="/bin/bash")
    assert not fast_paths.user_is_settled(LocalShell("/home/app\n/bin/bash\nroot root\n"), "app", home="/home/app", login_shell="/bin/bash")
    assert not fast_paths.user_is_settled(LocalShell("/srv/app\n/bin/bash\napp app\n"), "app", home="/home/app", login_shell="/bin/bash")
    assert not fast_paths.user_is_settled(LocalShell(settled, ok=False), "app", home="/home/app", login_shell="/bin/bash")


def test_user_check_reads_a_real_account() -> None:
    me = pwd.getpwuid(os.getuid())
    lines = LocalShell().query(fast_paths.user_check_command(me.pw_name)).stdout.splitlines()
    assert lines[:2] == [me.pw_dir, me.pw_shell]
    assert LocalShell().query(fast_paths.user_check_command("no-such-user-x; true")).stdout == ""


# --- PyinfraPlan: pyinfra only when the answer settles nothing ----------------------------------------


class Plan(PyinfraPlan):
    """PyinfraPlan with the host replaced by canned answers; what would go to pyinfra is recorded."""

    def __init__(self, answer: str, *, dry_run: bool = False) -> None:
        self.dry_run, self.answer = dry_run, answer
        self.queries: list[str] = []
        self.ran: list[str] = []
        self.ops: list[tuple[str, dict[str, Any]]] = []
        self.recorded: list[tuple[str, bool]] = []

    def query(self, command: str, *, as_user: str | None = None, sudo: bool | None = None) -> CommandResult:
        self.queries.append(command)
        return CommandResult(True, self.answer)

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        self.ran.append(command)
        return CommandResult(True, self.answer)

    def _op(self, step: str, op_func: Any, *args: Any, **kwargs: Any) -> bool:
        self.ops.append((op_func.__name__, kwargs))
        return True

    def record(self, step: str, changed: bool, started: float, ok: bool = True) -> None:
        self.recorded.append((step, changed))


def test_an_unchanged_file_is_one_query_and_no_operation() -> None:
    plan = Plan(f"root root 644\n{hashlib.sha1(b'x').hexdigest()}\n")
    assert plan.put_text("site", "/etc/nginx/site", "x") is False
    assert (plan.ops, plan.recorded, len(plan.queries)) == ([], [("site", False)], 1)
    assert plan.put_text("site", "/etc/nginx/site", "y") is True
    assert [name for name, _ in plan.ops] == ["put"]


def test_a_settled_service_is_one_query_and_no_operation() -> None:
    plan = Plan("active\nenabled\n")
    assert plan.service("nginx running", "nginx") is False
    assert (plan.ops, plan.recorded) == ([], [("nginx running", False)])
    assert plan.service("socket", "a.socket", daemon_reload=True) is True  # changed units: pyinfra decides
    assert [kwargs["daemon_reload"] for _, kwargs in plan.ops] == [True]


def test_a_restart_asks_nothing_first_and_enables_only_when_needed() -> None:
    plan = Plan("enabled\n")
    assert plan.service("restart", "app", restarted=True) is True
    assert plan.ran == ["systemctl restart app.service && { systemctl is-enabled app.service || true; }"]
    assert (plan.queries, plan.ops) == ([], [])
    disabled = Plan("disabled\n")
    assert disabled.service("restart", "app", restarted=True) is True
    assert disabled.ops == [("service", {"service": "app", "enabled": True})]


def test_a_dry_run_restart_goes_to_pyinfra() -> None:
    plan = Plan("enabled\n", dry_run=True)
    assert plan.service("restart", "app", restarted=True) is True
    assert plan.ran == [] and plan.ops[0][1]["restarted"] is True


def test_a_settled_user_is_one_query_and_no_operation() -> None:
    plan = Plan("/home/app\n/bin/bash\napp app\n")
    assert plan.user("app user", "app", home="/home/app") is False
    assert (plan.ops, plan.recorded) == ([], [("app user", False)])
    assert Plan("").user("app user", "app", home="/home/app") is True


# --- core: a configured host's directories in one query ---------------------------------------------


@dataclass
class SettledHost(RecordingPlan):
    """A host whose app directories are all there as core wants them (or, `loose`, one is not)."""

    loose: str = ""

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        if command.startswith("if [ -d "):
            self.calls.append(("query", command))
            paths = [line.split("stat -c '%U %G %a' ")[1] for line in command.split("; else echo missing; fi")[:-1]]
            app = make_ctx().paths
            modes = ["750" if p in (app.data_dir, app.meta_dir, app.uploads_dir) else "755" for p in paths]
            return CommandResult(True, "".join("shop shop 777\n" if self.loose and p.endswith(self.loose)
                                               else f"shop shop {mode}\n" for p, mode in zip(paths, modes, strict=True)))
        return super().query(command, as_user=as_user)


def test_configureserver_checks_the_app_directories_in_one_query() -> None:
    settled = SettledHost(dry_run=True)  # dry: the python provider asks nothing more of the fake host
    Core().configure_server(make_ctx(plan=settled))
    assert [step for method, step in settled.calls if method == "directory" and step.startswith("core:")] == []
    assert sum(1 for method, command in settled.calls if method == "query" and command.startswith("if [ -d ")) == 1
    loose = SettledHost(dry_run=True, loose="/shared")
    Core().configure_server(make_ctx(plan=loose))
    assert [step for method, step in loose.calls if method == "directory" and step.startswith("core:")] == [
        f"core: directory {make_ctx().paths.shared}"]
