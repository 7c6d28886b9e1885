"""Slack incoming webhooks: one readable message per event."""

from __future__ import annotations

import json

from djaploy.notify.event import BackupEvent, DeployEvent
from djaploy.notify.http import post

MAX_CHANGELOG = 2500  # Slack truncates long texts; the tag annotation keeps the whole changelog


def message(event: DeployEvent) -> dict[str, str]:
    """{"text": ...} in Slack's mrkdwn: app, environment, version, commit, who, how long, what changed."""
    version = event.version or event.release or "release"
    commit = f" (commit `{event.commit[:8]}`)" if event.commit else ""
    took = f" in {event.duration_seconds:.0f}s" if event.duration_seconds is not None else ""
    who = f" by {event.deployed_by}" if event.deployed_by else ""
    hosts = ", ".join(event.hosts)
    if event.succeeded:
        verb = {"deploy": "deployed to", "activate": "activated on", "rollback": "rolled back on"}[event.action]
        lines = [f":white_check_mark: *{event.project}* {version}{commit} {verb} *{event.environment}*{who}{took}",
                 f"hosts: {hosts}"]
        if event.changelog:
            text = event.changelog if len(event.changelog) <= MAX_CHANGELOG else event.changelog[:MAX_CHANGELOG] + "…"
            lines += ["*Changes:*", text]
    else:
        where = f" on {event.failed_host}" if event.failed_host else ""
        step = f" at step '{event.failed_step}'" if event.failed_step else ""
        lines = [f":x: *{event.project}* {event.action} of {version}{commit} to *{event.environment}* "
                 f"FAILED{where}{step}{who}{took}"]
        if event.error:
            lines.append(f"```{event.error}```")
    return {"text": "\n".join(lines)}


def backup_message(event: BackupEvent) -> dict[str, str]:
    """A failed nightly backup, as the host sends it (its failure_notice.py writes the same text)."""
    lines = [f":x: *{event.project}* backup FAILED on *{event.environment}* (host {event.failed_host}, "
             f"{event.failed_step}); the last complete backups are kept"]
    if event.error:
        lines.append(f"```{event.error}```")
    return {"text": "\n".join(lines)}


def send(url: str, event: DeployEvent, timeout: float) -> None:
    post(url, json.dumps(message(event)).encode(), {}, timeout)
