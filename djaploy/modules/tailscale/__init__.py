"""tailscale: put the host on a tailnet (private networking for the fleet's db and lb traffic).

    module_options={"tailscale": {
        "auth_key": "env:TS_AUTHKEY",   # read from your environment; reaches the host as a 0600 file
        "ssh": True,                    # tailscale up --ssh
        "tags": ["tag:web"],            # --advertise-tags
        "hostname": "shop-web1",        # --hostname
        "restrict_ssh": False,          # public SSH closed: only over the tailnet (proven first)
        "install": True,                # False: tailscale is already there (the tests' recording one)
        "repository": "https://pkgs.tailscale.com/stable",   # + /debian or /ubuntu
        "key_url": "",                  # default <repository>/<os>/<codename>.noarmor.gpg
    }}

configure_server installs Tailscale from its apt repository (signed-by keyring, no script piped
into a shell), brings the node up when `tailscale status --json` says it is not (the auth key in
a file that `tailscale up --auth-key=file:` reads, never in argv), and with restrict_ssh closes
public SSH once djaploy's own session runs over the tailnet. A host's `private_address` may be
its tailnet address.

One concern a file: options.py (Settings), commands.py (commands and files, pure), steps.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError
from djaploy.modules.base import BaseModule
from djaploy.modules.tailscale.options import NAME, settings_for
from djaploy.modules.tailscale.steps import bring_up, install, restrict_ssh


class Module(BaseModule):
    """configure_server: install, bring the node up (once), optionally restrict SSH to the tailnet."""

    name = NAME

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        settings_for(target, config_dir, environ=None)

    def secret_values(self, target: Target, config_dir: Path | None) -> list[str]:
        """The auth key: out of every line djaploy prints or logs."""
        try:
            return [settings_for(target, None, os.environ).auth_key]
        except ConfigError:  # a missing variable: the command that needs it says so
            return []

    def configure_server(self, ctx: HostContext) -> None:
        settings = settings_for(ctx.target, ctx.config_dir)
        if settings.install:
            install(ctx, settings)
        state = bring_up(ctx, settings)
        if settings.restrict_ssh:
            restrict_ssh(ctx, state)
