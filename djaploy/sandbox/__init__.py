"""Throwaway local Debian VPS hosts for rehearsing deploys and for end-to-end tests.

    from djaploy.sandbox import Sandbox, sandbox_hosts
    hosts = Sandbox(name="e2e").up(count=2)

Needs root and systemd-nspawn, debootstrap, tinyproxy, iproute2 and openssh-client on the host.
"""

from __future__ import annotations

from .core import Sandbox, sandbox_hosts
from .errors import SandboxError
from .host import SandboxHost

__all__ = ["Sandbox", "SandboxError", "SandboxHost", "sandbox_hosts"]
