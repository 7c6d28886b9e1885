"""bootstrap's pure parts: the sshd drop-in and its safe install (in a real sh), the firewall for a
host's roles, the swap rule, and the order of the hardening steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from djaploy.bootstrap import firewall, sshd, steps
from djaploy.config import DjaployConfig, HostConfig
from djaploy.context import CommandResult
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from tests.unit.conftest import RecordingPlan
from tests.unit.recording_shell import RecordingShell

FAILING_SSHD = "#!/bin/sh\necho '/etc/ssh/sshd_config line 3: Bad configuration option: Nonsense' >&2\nexit 255\n"


def target(modules: list[str] | None = None, **host):
    config = DjaployConfig(project_name="shop", **({"modules": modules} if modules else {}))
    hosts = [HostConfig("web1", ssh_host="192.0.2.10", ssh_user="deploy", **host)]
    return resolve_targets(config, hosts, "production", environ={}, source_file="inventory/production.py")[0]


# --- sshd -------------------------------------------------------------------------------------


def test_the_dropin_turns_off_root_and_passwords_and_wins_over_other_dropins() -> None:
    text = sshd.hardening_dropin()
    for line in ("PermitRootLogin no", "PasswordAuthentication no", "KbdInteractiveAuthentication no"):
        assert line in text.splitlines()
    # sshd keeps the first value it reads, in file name order: ours sorts before a provider's
    assert sorted([Path(sshd.DROPIN_PATH).name, "50-cloud-init.conf"])[0] == Path(sshd.DROPIN_PATH).name


@pytest.fixture
def rsh(tmp_path: Path) -> RecordingShell:
    return RecordingShell(tmp_path, programs=("sshd", "systemctl"))


def test_a_valid_dropin_is_installed_then_sshd_reloaded(rsh: RecordingShell, tmp_path: Path) -> None:
    path = tmp_path / "00-djaploy.conf"
    run = rsh.run(sshd.install_dropin("PermitRootLogin no\n", str(path)))
    assert run.returncode == 0, run.stderr
    assert path.read_text() == "PermitRootLogin no\n"
    assert run.argv_of("sshd") == [["-t"]]
    assert run.argv_of("systemctl") == [["reload", "ssh"]]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("00-")) == ["00-djaploy.conf"]


@pytest.mark.parametrize("before", [None, "PermitRootLogin prohibit-password\n"])
def test_a_dropin_sshd_refuses_leaves_the_config_as_it_was(rsh: RecordingShell, tmp_path: Path, before) -> None:
    (rsh.bin / "sshd").write_text(FAILING_SSHD)
    path = tmp_path / "00-djaploy.conf"
    if before is not None:
        path.write_text(before)
    run = rsh.run(sshd.install_dropin("Nonsense yes\n", str(path)))
    assert run.returncode != 0
    assert "left as it was" in run.stderr and "Bad configuration option" in run.stderr
    assert (path.read_text() if path.exists() else None) == before
    assert run.argv_of("systemctl") == []  # never reloaded
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("00-")) == ([path.name] if before else [])


# --- firewall ---------------------------------------------------------------------------------


def test_a_web_host_opens_ssh_and_http_and_https_only() -> None:
    web = target()  # the default modules include nginx
    assert firewall.host_roles(web) == ["web"]
    assert [rule.port for rule in firewall.allowed(web)] == [22, 80, 443]


def test_a_host_without_a_web_server_opens_only_its_ssh_port() -> None:
    worker = target(modules=["djaploy.modules.core", "djaploy.modules.systemd"], ssh_port=2222)
    assert firewall.host_roles(worker) == []
    assert [rule.port for rule in firewall.allowed(worker)] == [2222]


def test_fleet_roles_open_their_ports_and_postgres_only_to_the_app_hosts() -> None:
    config = DjaployConfig(project_name="shop", modules=["djaploy.modules.core", "djaploy.modules.nginx",
                                                         "djaploy.modules.systemd", "djaploy.modules.postgres"],
                           module_options={"postgres": {"password": "env:SHOP_DB_PASSWORD"}})
    hosts = [HostConfig("web1", ssh_host="192.0.2.11", private_address="10.0.0.11"),
             HostConfig("work1", ssh_host="192.0.2.12", private_address="10.0.0.12", roles=["worker"]),
             HostConfig("lb1", ssh_host="192.0.2.13", private_address="10.0.0.13", roles=["lb"]),
             HostConfig("db1", ssh_host="192.0.2.20", private_address="10.0.0.20", roles=["db"])]
    web, worker, lb, db = resolve_targets(config, hosts, "production", environ={}, source_file="inventory/production.py")
    fleet = [web, worker, lb, db]
    assert firewall.allowed(db, fleet) == [firewall.Allow(22), firewall.Allow(5432, ("10.0.0.11", "10.0.0.12"))]
    assert [rule.port for rule in firewall.allowed(lb, fleet)] == [22, 80, 443]
    assert [rule.port for rule in firewall.allowed(worker, fleet)] == [22]  # nginx listed, but no web role
    assert [rule.port for rule in firewall.allowed(web, fleet)] == [22, 80, 443]
    alone = firewall.allowed(db, [db])  # no app host but itself: PostgreSQL stays closed from outside
    assert alone == [firewall.Allow(22)]


def test_the_ruleset_drops_everything_but_the_allowed_ports() -> None:
    text = firewall.nftables_ruleset([firewall.Allow(22), firewall.Allow(5432, ("10.0.0.5", "10.0.1.0/24"))])
    assert "policy drop;" in text
    accepts = [line.strip() for line in text.splitlines() if line.strip().endswith("dport 22 accept")
               or "dport 5432" in line]
    assert accepts == ["tcp dport 22 accept", "ip saddr { 10.0.0.5, 10.0.1.0/24 } tcp dport 5432 accept"]
    assert "flush ruleset" not in text  # only djaploy's own table is replaced
    assert text.index("delete table inet djaploy") < text.index("table inet djaploy {")


# --- swap and the order of the steps ----------------------------------------------------------


@pytest.mark.parametrize(("memory_mb", "swaps", "swap_mb", "wanted"), [
    (1024, 0, 1024, True), (4096, 0, 1024, False), (1024, 1, 1024, False), (1024, 0, 0, False)])
def test_swap_goes_only_on_small_hosts_without_swap(memory_mb: int, swaps: int, swap_mb: int, wanted: bool) -> None:
    assert steps.needs_swap(memory_mb * 1024, swaps, swap_mb) is wanted


class HostPlan(RecordingPlan):
    """A host with `memory_kb` of memory and no swap, whose files are read back by `cat`."""

    memory_kb: int = 1024 * 1024

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        if "MemTotal" in command:
            self.calls.append(("query", command))
            return CommandResult(True, f"{self.memory_kb}\n0\n")
        if command.startswith("grep "):
            self.calls.append(("query", command))
            return CommandResult(False, "")
        return super().query(command, as_user=as_user)


def test_harden_ends_with_sshd_after_the_firewall_and_sets_what_is_configured() -> None:
    plan = HostPlan()
    steps.harden(plan, target(timezone="Europe/Berlin", hostname="web1.example.com"))
    order = plan.steps
    assert order.index("firewall rules") < order.index("load firewall") < order.index("sshd: keys only, no root login")
    assert order[-1] == "sshd: keys only, no root login"
    assert "swap file (1024 MB)" in order and "time zone" in order and "hostname" in order
    assert "tcp dport 443 accept" in plan.files[firewall.NFTABLES_CONF][0]
    assert plan.files["/etc/timezone"][0] == "Europe/Berlin\n"


def test_create_login_user_authorizes_the_key_once_and_gives_passwordless_sudo() -> None:
    plan = HostPlan()
    steps.create_login_user(plan, "deploy", "ssh-ed25519 AAAA deployer@laptop")
    assert plan.files["/etc/sudoers.d/djaploy-deploy"] == ("deploy ALL=(ALL:ALL) NOPASSWD:ALL\n", "root", "440")
    assert [c for c in plan.commands if "authorized_keys" in c] == [
        "printf '%s\\n' 'ssh-ed25519 AAAA deployer@laptop' >> /home/deploy/.ssh/authorized_keys && "
        "chown deploy: /home/deploy/.ssh/authorized_keys && chmod 600 /home/deploy/.ssh/authorized_keys"]


def test_bootstrap_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="time zone"):
        target(timezone="Europe/Berlin; reboot")
    with pytest.raises(ConfigError, match="host name"):
        target(hostname="web_1 !")
    assert target(swap_mb=0).swap_mb == 0
