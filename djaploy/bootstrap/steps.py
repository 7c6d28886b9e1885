"""What bootstrap changes on a host, step by step through a `Plan`; every step is idempotent,
so a second run (or a run that completes a half-done one) reports no change where none is due."""

from __future__ import annotations

from collections.abc import Sequence

from djaploy.bootstrap import firewall, sshd
from djaploy.config import Target
from djaploy.context import Plan
from djaploy.shell import q

AUTO_UPGRADES_PATH = "/etc/apt/apt.conf.d/20auto-upgrades"
#: Debian's unattended-upgrades installs security updates only, unless told otherwise
AUTO_UPGRADES = 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'
SWAP_FILE = "/swapfile"
#: hosts with less memory than this get a swap file (builds and migrations run out otherwise)
SMALL_HOST_MB = 2048


def sudoers_line(user: str) -> str:
    return f"{user} ALL=(ALL:ALL) NOPASSWD:ALL\n"


def create_login_user(plan: Plan, user: str, public_key: str) -> None:
    """Run as root: the deploy user, the deployer's key among its authorized keys, passwordless sudo.
    A key already there (or others the user had) stays; nothing else is touched yet."""
    home = f"/home/{user}"
    keys = f"{home}/.ssh/authorized_keys"
    plan.user(f"create user {user}", user, home=home)
    plan.directory("ssh folder", f"{home}/.ssh", owner=user, mode="700")
    if not plan.query(f"grep -qxF {q(public_key)} {q(keys)}").ok:
        plan.run("authorize the deployer's key",
                 f"printf '%s\\n' {q(public_key)} >> {q(keys)} && chown {q(user)}: {q(keys)} && chmod 600 {q(keys)}")
    plan.put_text("passwordless sudo", f"/etc/sudoers.d/djaploy-{user}", sudoers_line(user), mode="440")


def harden(plan: Plan, target: Target, fleet: Sequence[Target] = ()) -> None:
    """Run as the proven deploy user: packages, upgrades, firewall, host settings, then sshd last.
    `fleet`: every host of the environment (a db host lets its app hosts in)."""
    plan.packages("security packages", ["nftables", "unattended-upgrades", *(["tzdata"] if target.timezone else [])])
    plan.put_text("unattended security upgrades", AUTO_UPGRADES_PATH, AUTO_UPGRADES)
    ruleset = firewall.nftables_ruleset(firewall.allowed(target, fleet))
    if plan.put_text("firewall rules", firewall.NFTABLES_CONF, ruleset, mode="755"):
        plan.run("load firewall", f"nft -f {q(firewall.NFTABLES_CONF)}")
    plan.service("firewall at boot", "nftables", running=True, enabled=True)
    make_swap(plan, target.swap_mb)
    if target.timezone:
        plan.link("time zone", "/etc/localtime", f"/usr/share/zoneinfo/{target.timezone}")
        plan.put_text("time zone name", "/etc/timezone", target.timezone + "\n")
    if target.hostname:
        set_hostname(plan, target.hostname)
    wanted = sshd.hardening_dropin()
    if plan.query(f"cat {q(sshd.DROPIN_PATH)} 2>/dev/null").stdout.strip() != wanted.strip():
        plan.run("sshd: keys only, no root login", sshd.install_dropin(wanted))


def needs_swap(memory_kb: int, swap_devices: int, swap_mb: int) -> bool:
    """A small host with no swap at all, and swap not turned off (swap_mb=0)."""
    return swap_mb > 0 and swap_devices == 0 and memory_kb < SMALL_HOST_MB * 1024


def make_swap(plan: Plan, swap_mb: int) -> None:
    facts = plan.query("awk '/^MemTotal:/ {print $2}' /proc/meminfo; swapon --noheadings --show=NAME | wc -l")
    memory_kb, swap_devices = (int(value) for value in facts.stdout.split()[:2])
    if needs_swap(memory_kb, swap_devices, swap_mb):
        plan.run(f"swap file ({swap_mb} MB)", swap_commands(swap_mb))


def swap_commands(swap_mb: int, path: str = SWAP_FILE) -> str:
    return (f"set -e; [ -e {q(path)} ] || {{ fallocate -l {int(swap_mb)}M {q(path)} || "
            f"dd if=/dev/zero of={q(path)} bs=1M count={int(swap_mb)}; }}; chmod 600 {q(path)}; "
            f"mkswap {q(path)} >/dev/null; swapon {q(path)}; "
            f"grep -q {q(f'^{path} ')} /etc/fstab || echo {q(f'{path} none swap sw 0 0')} >> /etc/fstab")


def set_hostname(plan: Plan, name: str) -> None:
    if plan.query("hostname").stdout.strip() != name:
        plan.run("hostname", f"hostnamectl set-hostname {q(name)}")
    if not plan.query(f"grep -qE {q(f'^127[.]0[.]1[.]1[[:space:]]+{name}([[:space:]]|$)')} /etc/hosts").ok:
        # sudo resolves the host's own name: without this line every sudo waits for DNS
        plan.run("hostname in /etc/hosts", f"sed -i '/^127[.]0[.]1[.]1[[:space:]]/d' /etc/hosts && "
                                          f"printf '127.0.1.1\\t%s\\n' {q(name)} >> /etc/hosts")
