"""The tailscale module's steps on a host, in the order configure_server runs them."""

from __future__ import annotations

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.modules.tailscale.commands import (
    AUTH_KEY_FILE,
    KEYRING,
    SOURCES,
    SSH_RULES,
    SSH_RULES_UNIT,
    NodeState,
    connected_over,
    key_url,
    keyring_command,
    os_release_command,
    parse_status,
    sources_line,
    ssh_rules,
    ssh_rules_unit,
    up_command,
)
from djaploy.modules.tailscale.options import Settings


def install(ctx: HostContext, settings: Settings) -> None:
    """Tailscale's apt repository, trusted through its own keyring only (signed-by), then the package."""
    plan = ctx.plan
    os_id, _, codename = plan.query(os_release_command()).stdout.strip().partition(" ")
    if not plan.query(f"test -s {shell.q(KEYRING)}").ok:
        plan.packages("tailscale: curl", ["curl", "ca-certificates"])
        plan.run("tailscale: repository signing key", keyring_command(key_url(settings, os_id, codename)))
    if plan.put_text("tailscale: apt repository", SOURCES, sources_line(settings, os_id, codename)):
        plan.run("tailscale: read the repository", "apt-get update -qq")
    plan.packages("tailscale: the tailscale package", ["tailscale"])
    plan.service("tailscale: tailscaled running", "tailscaled")


def node_state(ctx: HostContext) -> NodeState:
    return parse_status(ctx.plan.query("tailscale status --json 2>/dev/null").stdout)


def bring_up(ctx: HostContext, settings: Settings) -> NodeState:
    """`tailscale up` with the auth key from a 0600 file, only when the node is not up already."""
    state = node_state(ctx)
    if state.up or ctx.plan.dry_run:
        return state
    ctx.plan.put_text("tailscale: auth key (removed after use)", AUTH_KEY_FILE, settings.auth_key + "\n", mode="600")
    ctx.plan.run("tailscale: bring the node up", up_command(settings))
    return node_state(ctx)


def restrict_ssh(ctx: HostContext, state: NodeState) -> None:
    """SSH only over the tailnet, but only once this very session came in over it: the same
    rule as bootstrap's, nothing closes a way in before the other one is proven."""
    plan = ctx.plan
    session = plan.query('echo "$SSH_CONNECTION"').stdout.strip()
    if not plan.dry_run and not connected_over(session, state.addresses):
        raise DjaployError(
            f"[{ctx.target.name}] tailscale: refusing restrict_ssh: djaploy is not connected over the tailnet "
            f"(this session: {session or 'unknown'}; the node's tailnet addresses: {', '.join(state.addresses) or 'none'}), "
            "so closing public SSH could lock you out. Set the host's ssh_host to its tailnet address, check that "
            "you can log in that way, then run configureserver again. SSH was left open.")
    changed = plan.put_text("tailscale: SSH only over the tailnet (rules)", SSH_RULES, ssh_rules(ctx.target.ssh_port))
    changed |= plan.put_text(f"tailscale: {SSH_RULES_UNIT}", f"/etc/systemd/system/{SSH_RULES_UNIT}", ssh_rules_unit())
    plan.service(f"tailscale: {SSH_RULES_UNIT}", SSH_RULES_UNIT, daemon_reload=changed, restarted=changed)
