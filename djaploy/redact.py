"""Secret values out of everything djaploy prints or logs.

Its own module, with no imports, so anything that prints (a hook, verify, the engine) can
redact without pulling in pyinfra.

Most secrets reach a Redactor from the hosts' `secrets`. A value a module reads itself (the
postgres module's password, from the deployer's environment) is registered once with
`hide_everywhere`: every Redactor, made before or after, hides it from then on.
"""

from __future__ import annotations

from collections.abc import Iterable

#: values every Redactor hides, whoever made it (see hide_everywhere)
_EVERYWHERE: set[str] = set()


def hide_everywhere(*values: str) -> None:
    """Hide these values in all output and logs of this process, in every Redactor."""
    _EVERYWHERE.update(value for value in values if value)


class Redactor:
    """Replaces secret values with a placeholder in everything djaploy prints or logs."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Every secret, however short: inventory loading refuses ones too short to hide readably.
        self._own = {s for s in secrets if s}
        self._secrets: list[str] = []
        self._seen = -1  # how many registered values _secrets includes

    def __call__(self, text: str) -> str:
        if self._seen != len(_EVERYWHERE):
            self._seen = len(_EVERYWHERE)
            self._secrets = sorted(self._own | _EVERYWHERE, key=len, reverse=True)
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text
