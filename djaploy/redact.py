"""Secret values out of everything djaploy prints or logs.

Its own module, with no imports, so anything that prints (a hook, verify, the engine) can
redact without pulling in pyinfra.
"""

from __future__ import annotations

from collections.abc import Iterable


class Redactor:
    """Replaces secret values with a placeholder in everything djaploy prints or logs."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Every secret, however short: inventory loading refuses ones too short to hide readably.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text
