"""Tell people about deploys: Slack, a generic signed webhook, and the user's own notifiers.

`notify` sends one event to every configured channel and returns a line per channel that
failed: failing to notify never fails a deploy, the summary says it happened instead.
"""

from __future__ import annotations

from djaploy.dotted import load_callable
from djaploy.notify import slack, webhook
from djaploy.notify.event import EVENTS, DeployEvent
from djaploy.notify.http import NotifyError
from djaploy.release_settings import NotificationSettings

__all__ = ["EVENTS", "DeployEvent", "notify"]


def notify(settings: NotificationSettings, event: DeployEvent, *, root: str | None = None) -> list[str]:
    """Send `event` everywhere configured; the returned warnings name the channel, never its URL."""
    if not event.succeeded and not settings.notify_on_failure:
        return []
    warnings = []
    channels = []
    if settings.slack_webhook_url:
        url = settings.slack_webhook_url
        channels.append(("slack", lambda: slack.send(url, event, settings.timeout)))
    if settings.webhook_url:
        hook = settings.webhook_url
        channels.append(("webhook", lambda: webhook.send(hook, settings.webhook_secret, event, settings.timeout)))
    for path in settings.notifiers:
        channels.append((path, lambda path=path: load_callable(path, field="notifications['notifiers']", root=root)(event)))
    for name, send in channels:
        try:
            send()
        except NotifyError as error:
            warnings.append(f"notification: {name} failed ({error}); the {event.action} itself is not affected")
        except Exception as error:  # noqa: BLE001 - a user's notifier can raise anything; it must not fail a deploy
            warnings.append(f"notification: {name} failed ({type(error).__name__}: {error}); "
                            f"the {event.action} itself is not affected")
    return warnings
