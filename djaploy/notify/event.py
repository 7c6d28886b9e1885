"""The one event every notifier gets: what happened, to which release, where, and (on failure) why.

Its `payload()` is the generic webhook's JSON body (documented in docs/versioning.md); Slack
and the user's own notifiers read the same fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

EVENTS = ("deploy.succeeded", "deploy.failed", "activate.succeeded", "activate.failed",
          "rollback.succeeded", "rollback.failed")


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
