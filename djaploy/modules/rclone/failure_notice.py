"""The failed-backup notice on the host: run as root by <app>-backup-failed.service (the backup
service's OnFailure=), right after that unit logged the failure at priority crit.

    python3 backup-<app>-failed.py NOTICE.json

It tells the environment's Slack and generic webhook (djaploy's `notifications`) itself, because
the machine djaploy deploys from, where the deploy notifications are sent, is not there at night.
Standard library only (hosts have no djaploy). The URLs and the webhook secret come from
NOTICE.json (0600, root's), never from a command line; values listed under "hide" (the backup's
credentials) never leave in the error text. The Slack text, the webhook body and its signature
are djaploy.notify's (slack.backup_message, webhook.body and headers of a BackupEvent): the unit
tests run this program against a local server and hold them equal.

Proxies are urllib's, from the environment: a systemd unit has none unless the host's admin set
one (DefaultEnvironment=), and then no_proxy is honoured. A channel that fails is logged and the
next still runs; the exit status is 1 when one failed, so the failure unit shows as failed too.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timezone

EVENT = "backup.failed"
#: as many journal lines as a failed deploy's error tail
ERROR_LINES = 15
HIDDEN = "********"


# --- pure: unit tested, and held equal to djaploy.notify's ------------------------------------------


def payload(notice: dict, error: str | None, at: str) -> dict:
    """A BackupEvent's payload: the deploy events' field names, those that apply."""
    return {"event": EVENT, "project": notice["project"], "environment": notice["environment"],
            "hosts": [notice["host"]], "error": error, "failed_host": notice["host"],
            "failed_step": notice["service"], "at": at}


def body(event: dict) -> bytes:
    return json.dumps(event, sort_keys=True).encode()


def signature(data: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def slack_text(event: dict) -> str:
    lines = [f":x: *{event['project']}* backup FAILED on *{event['environment']}* (host {event['failed_host']}, "
             f"{event['failed_step']}); the last complete backups are kept"]
    if event["error"]:
        lines.append(f"```{event['error']}```")
    return "\n".join(lines)


def hide(text: str, secrets: list[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


# --- on the host -------------------------------------------------------------------------------------


def journal_tail(service: str, invocation: str) -> str:
    """The failed run's last lines: that run's alone when systemd names it ($MONITOR_INVOCATION_ID,
    systemd 251 and later), else the service's last lines."""
    if invocation:
        match = [f"_SYSTEMD_INVOCATION_ID={invocation}", "+", f"INVOCATION_ID={invocation}"]
    else:
        match = ["-u", service]
    try:
        result = subprocess.run(["journalctl", *match, "-n", str(ERROR_LINES), "--no-pager", "-o", "cat"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


def post(url: str, data: bytes, headers: dict, timeout: float) -> str | None:
    """None when delivered, else why not (never the URL: it carries the channel's token)."""
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "djaploy", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except urllib.error.URLError as error:
        return f"cannot reach it ({type(error.reason).__name__})"
    except (OSError, ValueError) as error:
        return type(error).__name__
    return None


def send(notice: dict, event: dict) -> list[str]:
    """POST to every channel in `notice`; one line per channel that failed."""
    failures = []
    timeout = float(notice.get("timeout") or 10)
    if notice.get("slack_webhook_url"):
        problem = post(notice["slack_webhook_url"], json.dumps({"text": slack_text(event)}).encode(), {}, timeout)
        failures += [f"slack failed ({problem})"] if problem else []
    if notice.get("webhook_url"):
        data = body(event)
        headers = {"X-Djaploy-Event": event["event"]}
        if notice.get("webhook_secret"):
            headers["X-Djaploy-Signature"] = signature(data, notice["webhook_secret"])
        problem = post(notice["webhook_url"], data, headers, timeout)
        failures += [f"webhook failed ({problem})"] if problem else []
    return failures


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        notice = json.load(handle)
    tail = journal_tail(notice["service"], os.environ.get("MONITOR_INVOCATION_ID", ""))
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = payload(notice, hide(tail, notice.get("hide", [])) or None, at)
    failures = send(notice, event)
    for failure in failures:
        print(f"backup notice: {failure}; the failure is in the journal at priority crit", file=sys.stderr, flush=True)
    if not failures:
        print(f"backup notice: sent {EVENT} for {notice['service']}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
