"""What a command prints while it runs: progress lines per host and step, and the run log.

Separate from the engine so the output side needs no pyinfra; the engine reports each step here.
Everything written goes through the `Redactor` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from djaploy.redact import Redactor


@dataclass
class StepRecord:
    host: str
    step: str
    changed: bool
    seconds: float
    ok: bool = True


@dataclass
class Reporter:
    """Progress lines per host and step, written as they happen."""

    out: TextIO
    redact: Redactor = field(default_factory=Redactor)
    verbosity: int = 1
    records: list[StepRecord] = field(default_factory=list)
    log: TextIO | None = None  # the run log: everything, remote output included, redacted

    def line(self, text: str) -> None:
        text = self.redact(text)
        self.out.write(text + "\n")
        self.out.flush()
        self.detail(text)

    def detail(self, text: str) -> None:
        """Only to the run log (remote commands and their output)."""
        if self.log is not None and text:
            self.log.write(self.redact(text).rstrip("\n") + "\n")
            self.log.flush()

    def step(self, record: StepRecord, dry_run: bool) -> None:
        self.records.append(record)
        if record.ok:
            word = ("would change" if dry_run else "changed") if record.changed else "ok"
        else:
            word = "FAILED"
        if self.verbosity >= 1 and (record.changed or not record.ok or self.verbosity >= 2 or dry_run):
            self.line(f"[{record.host}] {record.step}: {word} ({record.seconds:.1f}s)")

    def changed_steps(self, host: str | None = None) -> list[StepRecord]:
        return [r for r in self.records if r.changed and (host is None or r.host == host)]
