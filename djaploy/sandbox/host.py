"""SSH access to one sandbox VPS: its address and keys, and running a command on it."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from . import keys, settings


@dataclass(frozen=True)
class SandboxHost:
    """What a deploy (or a test) needs to reach one sandbox VPS over SSH."""

    name: str
    address: str
    host_side_address: str
    _: KW_ONLY
    ssh_port: int = 22
    key_path: str
    known_hosts_path: str
    root_user: str = "root"
    sudo_user: str = settings.SUDO_USER
    root_password_only: bool = False  # root logs in with a password only; there is no sudo user
    os: str = settings.DEFAULT_OS  # the release it runs, as `up --os` names it ("debian-13")

    def ssh_command(self, user: str | None = None, *, batch: bool = True) -> list[str]:
        """ssh argv up to and including user@address; append a remote command if wanted."""
        args = keys.ssh_args(self.key_path, self.known_hosts_path, batch=batch)
        return [*args, "-p", str(self.ssh_port), f"{user or self.root_user}@{self.address}"]

    def pyinfra_data(self, user: str | None = None) -> dict[str, object]:
        """Host data for a pyinfra inventory entry (address, data)."""
        return {
            "ssh_user": user or self.root_user,
            "ssh_port": self.ssh_port,
            "ssh_key": self.key_path,
            "ssh_known_hosts_file": self.known_hosts_path,
            "ssh_strict_host_key_checking": "yes",
        }


def ssh_run(
    host: SandboxHost, command: str, user: str = "root", *, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a shell command on a host over SSH; captures text output, does not check."""
    return subprocess.run(
        [*host.ssh_command(user), command],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


#: prints the password ssh asks for; the password itself is in this variable of ssh's environment
_ASKPASS = '#!/bin/sh\nprintf \'%s\\n\' "$DJAPLOY_SANDBOX_SSH_PASSWORD"\n'


def ssh_run_password(
    host: SandboxHost, command: str, user: str, password: str, *, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Like ssh_run, but logging in with a password only (no key is offered).

    The password reaches ssh through SSH_ASKPASS and an environment variable, never argv.
    """
    args = keys.ssh_args(host.key_path, host.known_hosts_path, batch=False)
    args += ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
             "-o", "NumberOfPasswordPrompts=1", "-p", str(host.ssh_port), f"{user}@{host.address}", command]
    with tempfile.TemporaryDirectory(prefix="djaploy-askpass-") as folder:
        askpass = Path(folder) / "askpass"
        askpass.write_text(_ASKPASS)
        askpass.chmod(0o700)
        env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
               "DJAPLOY_SANDBOX_SSH_PASSWORD": password}
        env.pop("DISPLAY", None)
        return subprocess.run(args, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout, env=env, start_new_session=True)
