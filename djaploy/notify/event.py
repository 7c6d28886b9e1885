"""The event every notifier gets: what happened, to which release, where, and (on failure) why.

Its `payload()` is the generic webhook's JSON body (documented in docs/versioning.md); Slack
and the user's own notifiers read the same fields. `BackupEvent` is the one a host sends itself
(a failed nightly backup, djaploy.modules.rclone): the deploy fields that apply, nothing else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

EVENTS = ("deploy.succeeded", "deploy.failed", "activate.succeeded", "activate.failed",
          "rollback.succeeded", "rollback.failed")
#: sent by a host, not by djaploy: the rclone module's failure notice (its failure_notice.py)
BACKUP_FAILED = "backup.failed"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DeployEvent:
    event: str  # one of EVENTS
    project: str
    environment: str
    version: str | None
    commit: str | None
    changelog: str | None
    hosts: tuple[str, ...]
    release: str | None = None
    deployed_by: str = ""
    duration_seconds: float | None = None
    tagged: bool = False  # this deploy created the version's tag
    error: str | None = None  # failures: the redacted tail of the error
    failed_host: str | None = None
    failed_step: str | None = None
    at: str = field(default_factory=_now)

    @property
    def succeeded(self) -> bool:
        return self.event.endswith(".succeeded")

    @property
    def action(self) -> str:
        return self.event.split(".", 1)[0]

    def payload(self) -> dict[str, Any]:
        body = asdict(self)
        body["hosts"] = list(self.hosts)
        if self.succeeded:
            for key in ("error", "failed_host", "failed_step"):
                body.pop(key)
        return body


@dataclass(frozen=True)
class BackupEvent:
    """A nightly backup failed on a host. The host sends it with the standard library (djaploy is
    not installed there): tests hold that program's body and signature equal to these."""

    project: str
    environment: str
    failed_host: str
    failed_step: str  # the backup's systemd service
    error: str | None  # the failed run's last journal lines, secrets hidden
    at: str = field(default_factory=_now)
    event: str = BACKUP_FAILED

    @property
    def hosts(self) -> tuple[str, ...]:
        return (self.failed_host,)

    def payload(self) -> dict[str, Any]:
        return {"event": self.event, "project": self.project, "environment": self.environment,
                "hosts": list(self.hosts), "error": self.error, "failed_host": self.failed_host,
                "failed_step": self.failed_step, "at": self.at}
