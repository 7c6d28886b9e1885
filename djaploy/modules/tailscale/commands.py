"""The shell commands and files the tailscale module puts on a host, built as text (pure: unit
tested): the apt repository with its signed-by keyring, `tailscale up` with the auth key read
from a file, the node's state, and the nftables table that keeps public SSH out."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from djaploy import shell
from djaploy.modules.tailscale.options import Settings

KEYRING = "/usr/share/keyrings/tailscale-archive-keyring.gpg"
SOURCES = "/etc/apt/sources.list.d/tailscale.list"
#: the auth key while `tailscale up` reads it (0600, root); removed right after
AUTH_KEY_FILE = "/etc/tailscale-djaploy-authkey"
TAILNET_INTERFACE = "tailscale0"
SSH_RULES = "/etc/djaploy-tailscale-ssh.nft"
SSH_RULES_UNIT = "djaploy-tailscale-ssh.service"


def os_release_command() -> str:
    """Prints the host's distribution id and codename ("debian bookworm")."""
    return '. /etc/os-release && echo "$ID $VERSION_CODENAME"'


def repository_url(settings: Settings, os_id: str) -> str:
    return f"{settings.repository}/{os_id}"


def key_url(settings: Settings, os_id: str, codename: str) -> str:
    return settings.key_url or f"{repository_url(settings, os_id)}/{codename}.noarmor.gpg"


def sources_line(settings: Settings, os_id: str, codename: str) -> str:
    return f"deb [signed-by={KEYRING}] {repository_url(settings, os_id)} {codename} main\n"


def keyring_command(url: str) -> str:
    """Download the repository's signing key to the keyring file: a file, never a script to run."""
    partial = f"{KEYRING}.download"
    return (f"curl -fsSL --retry 3 -o {shell.q(partial)} {shell.q(url)} && chmod 644 {shell.q(partial)} && "
            f"mv -f {shell.q(partial)} {shell.q(KEYRING)}")


def up_arguments(settings: Settings) -> list[str]:
    """`tailscale up`'s arguments: the key by file (never its value), then the options."""
    args = ["up", f"--auth-key=file:{AUTH_KEY_FILE}"]
    if settings.ssh:
        args.append("--ssh")
    if settings.tags:
        args.append("--advertise-tags=" + ",".join(settings.tags))
    if settings.hostname:
        args.append(f"--hostname={settings.hostname}")
    return args


def up_command(settings: Settings) -> str:
    """Bring the node up, then remove the key file whatever happened."""
    return f"status=0; tailscale {shell.join(up_arguments(settings))} || status=$?; rm -f {shell.q(AUTH_KEY_FILE)}; exit $status"


@dataclass(frozen=True)
class NodeState:
    """What `tailscale status --json` says: up (BackendState Running) and the node's addresses."""

    up: bool
    addresses: tuple[str, ...] = ()


def parse_status(output: str) -> NodeState:
    """A daemon that is not running, or output that is not JSON, is a node that is not up."""
    try:
        data = json.loads(output)
    except ValueError:
        return NodeState(False)
    if not isinstance(data, dict):
        return NodeState(False)
    addresses = tuple((data.get("Self") or {}).get("TailscaleIPs") or ())
    return NodeState(data.get("BackendState") == "Running", addresses)


def connected_over(ssh_connection: str, addresses: tuple[str, ...]) -> bool:
    """Whether this SSH session ($SSH_CONNECTION: client, port, server address, port) came in
    on one of the node's tailnet addresses: only then can closing public SSH not lock us out."""
    words = ssh_connection.split()
    if len(words) != 4:
        return False
    try:
        server = ipaddress.ip_address(words[2])
        return any(server == ipaddress.ip_address(address) for address in addresses)
    except ValueError:
        return False


def ssh_rules(port: int) -> str:
    """An nftables table of its own, besides bootstrap's: new SSH connections that do not come in
    over the tailnet are dropped (a drop in any table is final); everything else is untouched."""
    return "\n".join([
        "#!/usr/sbin/nft -f",
        "# Written by djaploy (module tailscale, restrict_ssh): SSH only over the tailnet.",
        "table inet djaploy_tailscale",
        "delete table inet djaploy_tailscale",
        "table inet djaploy_tailscale {",
        "\tchain input {",
        "\t\ttype filter hook input priority filter - 1; policy accept;",
        f'\t\tiifname != "{TAILNET_INTERFACE}" tcp dport {int(port)} ct state new drop',
        "\t}",
        "}",
        "",
    ])


def ssh_rules_unit() -> str:
    """Loads the table at boot, once tailscaled is up (its interface exists)."""
    return "\n".join([
        "# Written by djaploy (module tailscale, restrict_ssh).",
        "[Unit]",
        "Description=SSH only over the tailnet (djaploy)",
        "After=nftables.service tailscaled.service",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart=/usr/sbin/nft -f {SSH_RULES}",
        "ExecStop=/usr/sbin/nft delete table inet djaploy_tailscale",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])
