"""The app service's restart: a failed start that systemd's Restart=on-failure recovers goes on
with a note; one it does not recover fails with the service's journal in the error."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from djaploy import shell
from djaploy.context import CommandResult
from djaploy.errors import RemoteError
from djaploy.modules.systemd import restart
from tests.unit.conftest import RecordingPlan, make_ctx
from tests.unit.recording_shell import RecordingShell

HOSTILE = "app'$(touch MARKER)`touch MARKER2`;x.service"


@dataclass
class FailingRestartPlan(RecordingPlan):
    """The restart step fails; queries answer from `answers` (a substring of the command -> stdout)."""

    answers: dict[str, str] = field(default_factory=dict)

    def service(self, step: str, name: str, **kwargs) -> bool:
        super().service(step, name, **kwargs)
        raise RemoteError("web1", step, "Job for app.service failed because the control process exited")

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        self.calls.append(("query", command))
        return CommandResult(True, next((out for key, out in self.answers.items() if key in command), ""))


def test_a_restart_systemd_recovers_goes_on_and_the_summary_says_so() -> None:
    plan = FailingRestartPlan(answers={"ActiveState": "active\n"})
    ctx = make_ctx(plan)
    service = ctx.paths.service_for("in_place")
    restart(ctx, service)
    assert any(service.service in note and "Restart=on-failure" in note for note in ctx.notes), ctx.notes
    assert not any("journalctl" in command for kind, command in plan.calls if kind == "query")


def test_a_restart_that_stays_down_fails_with_the_services_journal() -> None:
    plan = FailingRestartPlan(answers={"ActiveState": "activating\n", "journalctl": "ImportError: no module named shop\n"})
    ctx = make_ctx(plan)
    with pytest.raises(RemoteError) as raised:
        restart(ctx, ctx.paths.service_for("in_place"))
    message = str(raised.value)
    assert "control process exited" in message and "ImportError: no module named shop" in message
    assert raised.value.step.startswith("systemd: restart ")
    assert not ctx.notes


SHOW_STATES = """#!/bin/sh
# systemctl stand-in: `show -p ActiveState` answers the next line of $STATES, then its last one
count=$(cat "$0.count" 2>/dev/null || echo 0); count=$((count+1)); echo "$count" > "$0.count"
echo "$STATES" | tr ' ' '\\n' | sed -n "${count}p;\\$p" | head -n 1
"""


@pytest.mark.parametrize(("states", "seconds", "expected", "calls"), [
    ("activating activating active", 8, "active", 3),  # up again after two polls
    ("activating", 1, "activating", 2),  # never up: gives up after its bound (1 s: 2 polls)
])
def test_wait_active_polls_until_active_or_its_bound(tmp_path, monkeypatch, states: str, seconds: float, expected: str,
                                                     calls: int) -> None:
    sh = RecordingShell(tmp_path, programs=())
    sh._install("systemctl", SHOW_STATES)
    monkeypatch.setenv("STATES", states)
    run = sh.run(shell.wait_active(HOSTILE, seconds=seconds))
    assert run.returncode == 0 and run.stdout.strip() == expected
    assert int((tmp_path / "bin" / "systemctl.count").read_text()) == calls
    assert not sh.injected()


def test_journal_tail_quotes_the_unit_and_never_fails(tmp_path) -> None:
    sh = RecordingShell(tmp_path, programs=("journalctl",))
    run = sh.run(shell.journal_tail(HOSTILE, lines=5))
    assert run.returncode == 0
    assert run.calls and run.calls[0]["argv"] == ["-u", HOSTILE, "-n", "5", "--no-pager", "-o", "cat"]
    assert not sh.injected()
