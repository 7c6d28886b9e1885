"""Notifications against real local HTTP servers: Slack's incoming webhook, the generic webhook with
its signature verified, a user's notifier; a failing channel is a warning, never an exception."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from djaploy.notify import DeployEvent, notify
from djaploy.release_settings import NotificationSettings
from tests.local_http import local_server

SECRET = "webhook-signing-secret"


def event(name: str = "deploy.succeeded", **fields: object) -> DeployEvent:
    base = dict(event=name, project="ledger", environment="production", version="v0.1.1", commit="0123456789abcdef",
                changelog="- add export", hosts=("web1", "web2"), release="v0.1.1", deployed_by="dev@laptop",
                duration_seconds=42.0, tagged=True)
    return DeployEvent(**{**base, **fields})  # type: ignore[arg-type]


def test_slack_gets_a_readable_message() -> None:
    with local_server(200, "ok") as slack:
        warnings = notify(NotificationSettings(slack_webhook_url=f"{slack.url}/services/T/B/X"), event())
    assert warnings == []
    text = slack.requests[0].json()["text"]
    assert slack.requests[0].path == "/services/T/B/X"
    for part in ("*ledger*", "v0.1.1", "`01234567`", "*production*", "dev@laptop", "42s", "web1, web2", "- add export"):
        assert part in text, (part, text)


def test_slack_failure_message_names_host_step_and_error() -> None:
    failed = event("deploy.failed", error="HTTP 500 from /health/", failed_host="web2",
                   failed_step="health gate /health/", tagged=False)
    with local_server() as slack:
        notify(NotificationSettings(slack_webhook_url=slack.url), failed)
    text = slack.requests[0].json()["text"]
    assert "FAILED on web2 at step 'health gate /health/'" in text and "HTTP 500 from /health/" in text


def test_webhook_payload_and_a_signature_that_verifies() -> None:
    with local_server(204, b"") as hook:
        warnings = notify(NotificationSettings(webhook_url=f"{hook.url}/deploys", webhook_secret=SECRET), event())
    assert warnings == []
    request = hook.requests[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Djaploy-Signature"] == expected
    assert request.headers["X-Djaploy-Event"] == "deploy.succeeded"
    payload = request.json()
    assert {k: payload[k] for k in ("event", "project", "environment", "version", "commit", "changelog", "hosts")} == {
        "event": "deploy.succeeded", "project": "ledger", "environment": "production", "version": "v0.1.1",
        "commit": "0123456789abcdef", "changelog": "- add export", "hosts": ["web1", "web2"]}
    assert "error" not in payload


def test_webhook_without_a_secret_is_unsigned_and_failures_carry_the_error() -> None:
    with local_server() as hook:
        notify(NotificationSettings(webhook_url=hook.url), event("deploy.failed", error="boom", failed_host="web1",
                                                                 failed_step="migrate"))
    request = hook.requests[0]
    assert "X-Djaploy-Signature" not in request.headers
    assert (request.json()["error"], request.json()["failed_host"], request.json()["failed_step"]) == ("boom", "web1", "migrate")


def test_a_backup_event_carries_the_deploy_fields_that_apply_signed_the_same_way() -> None:
    from djaploy.notify import slack, webhook
    from djaploy.notify.event import BackupEvent

    failed = BackupEvent(project="ledger", environment="production", failed_host="web1",
                         failed_step="ledger-backup.service", error="rclone copy exited with 1")
    with local_server() as hook:
        webhook.send(hook.url, SECRET, failed, timeout=5)
    request = hook.requests[0]
    assert request.json() == {"event": "backup.failed", "project": "ledger", "environment": "production",
                              "hosts": ["web1"], "error": "rclone copy exited with 1", "failed_host": "web1",
                              "failed_step": "ledger-backup.service", "at": failed.at}
    assert request.headers["X-Djaploy-Event"] == "backup.failed"
    assert request.headers["X-Djaploy-Signature"] == "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    text = slack.backup_message(failed)["text"]
    assert "*ledger* backup FAILED on *production* (host web1, ledger-backup.service)" in text
    assert "```rclone copy exited with 1```" in text


def test_no_failure_notice_when_notify_on_failure_is_off() -> None:
    with local_server() as hook:
        notify(NotificationSettings(webhook_url=hook.url, notify_on_failure=False), event("deploy.failed", error="x"))
        notify(NotificationSettings(webhook_url=hook.url, notify_on_failure=False), event())
    assert [r.json()["event"] for r in hook.requests] == ["deploy.succeeded"]


def test_a_failing_channel_is_a_warning_that_hides_the_url_and_others_still_get_it() -> None:
    with local_server(500, "no") as broken, local_server() as hook:
        token_url = f"{broken.url}/services/T000/SECRET-TOKEN"
        warnings = notify(NotificationSettings(slack_webhook_url=token_url, webhook_url=hook.url), event())
    assert len(hook.requests) == 1
    assert warnings == ["notification: slack failed (HTTP 500); the deploy itself is not affected"]
    assert "SECRET-TOKEN" not in warnings[0]


def test_a_users_notifier_gets_the_event_and_its_errors_are_warnings(tmp_path: Path, forget_new_modules: None) -> None:
    package = tmp_path / "infra"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tell.py").write_text(
        "SEEN = []\n\ndef record(event):\n    SEEN.append(event)\n\ndef explode(event):\n    raise RuntimeError('chat is down')\n")
    settings = NotificationSettings(notifiers=("infra.tell.record", "infra.tell:explode"))
    warnings = notify(settings, event(), root=str(tmp_path))
    import infra.tell  # type: ignore[import-not-found]

    assert [e.version for e in infra.tell.SEEN] == ["v0.1.1"]
    assert warnings == ["notification: infra.tell:explode failed (RuntimeError: chat is down); the deploy itself is not affected"]
