"""The generic JSON webhook: the event's payload, signed with HMAC-SHA256 when a secret is set.

    X-Djaploy-Event: deploy.succeeded
    X-Djaploy-Signature: sha256=<hex HMAC-SHA256 of the exact body, keyed by the secret>
"""

from __future__ import annotations

import hashlib
import hmac
import json

from djaploy.notify.event import DeployEvent
from djaploy.notify.http import post


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(url: str, secret: str | None, event: DeployEvent, timeout: float) -> None:
    body = json.dumps(event.payload(), sort_keys=True).encode()
    headers = {"X-Djaploy-Event": event.event}
    if secret:
        headers["X-Djaploy-Signature"] = signature(body, secret)
    post(url, body, headers, timeout)
