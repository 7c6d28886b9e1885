"""The generic JSON webhook: the event's payload, signed with HMAC-SHA256 when a secret is set.

    X-Djaploy-Event: deploy.succeeded
    X-Djaploy-Signature: sha256=<hex HMAC-SHA256 of the exact body, keyed by the secret>
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Protocol

from djaploy.notify.http import post


class Event(Protocol):
    """A DeployEvent or a BackupEvent: its name and its JSON payload."""

    @property
    def event(self) -> str: ...

    def payload(self) -> dict[str, Any]: ...


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body(event: Event) -> bytes:
    return json.dumps(event.payload(), sort_keys=True).encode()


def headers(event: Event, data: bytes, secret: str | None) -> dict[str, str]:
    """The event's name, and its signature of `data` when there is a secret."""
    found = {"X-Djaploy-Event": event.event}
    if secret:
        found["X-Djaploy-Signature"] = signature(data, secret)
    return found


def send(url: str, secret: str | None, event: Event, timeout: float) -> None:
    data = body(event)
    post(url, data, headers(event, data, secret), timeout)
