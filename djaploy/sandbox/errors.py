"""The sandbox's own error type, so the CLI can print it cleanly and exit non-zero."""

from __future__ import annotations

from djaploy.errors import DjaployError


class SandboxError(DjaployError):
    """A sandbox operation failed; the message says what and, where possible, why."""
