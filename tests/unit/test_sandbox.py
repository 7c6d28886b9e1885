"""Pure-logic tests of djaploy.sandbox: no root, no network, no containers."""

from __future__ import annotations

import os
from dataclasses import FrozenInstanceError
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from djaploy.sandbox import (
    Sandbox,
    SandboxError,
    SandboxHost,
    keys,
    mounts,
    network,
    procs,
    proxy,
    rootfs,
    sandbox_hosts,
    settings,
)
from djaploy.sandbox import __main__ as cli
from djaploy.sandbox.state import HostRecord, SandboxState, all_recorded_subnets, load_state, save_state


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never look at the machine's real sandbox state from a unit test."""
    monkeypatch.setenv("DJAPLOY_SANDBOX_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DJAPLOY_SANDBOX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DJAPLOY_SANDBOX_NAME", raising=False)
    return tmp_path / "run"


# ------------------------------------------------------------------ subnets


def test_allocate_first_free_subnets_skips_the_notes_block() -> None:
    assert network.allocate_subnets([], 2) == [
        IPv4Network("10.231.1.0/30"),
        IPv4Network("10.231.1.4/30"),
    ]


def test_allocate_skips_used_and_overlapping_networks() -> None:
    used = [IPv4Network("10.231.1.0/30"), IPv4Network("10.231.1.8/29"), IPv4Network("192.168.1.0/24")]
    assert network.allocate_subnets(used, 2) == [
        IPv4Network("10.231.1.4/30"),
        IPv4Network("10.231.1.16/30"),
    ]


def test_allocate_treats_a_wide_network_on_the_host_as_used() -> None:
    assert network.allocate_subnets([IPv4Network("10.231.0.0/23")], 1) == [IPv4Network("10.231.2.0/30")]


def test_allocate_skips_subnets_whose_interface_names_exist() -> None:
    first_index = network.subnet_index(IPv4Network("10.231.1.0/30"))
    taken = [network.veth_names(first_index)[0]]
    assert network.allocate_subnets([], 1, taken_ifnames=taken) == [IPv4Network("10.231.1.4/30")]


def test_allocate_raises_when_the_pool_is_full() -> None:
    with pytest.raises(ValueError):
        network.allocate_subnets([IPv4Network("10.231.0.0/16")], 1)


def test_allocate_zero_is_empty() -> None:
    assert network.allocate_subnets([], 0) == []


def test_addresses_index_and_interface_names() -> None:
    subnet = IPv4Network("10.231.1.4/30")
    assert network.host_addresses(subnet) == ("10.231.1.5", "10.231.1.6")
    assert network.subnet_index(subnet) == 65
    last = network.subnet_index(IPv4Network("10.231.255.252/30"))
    assert last == 16383
    for name in network.veth_names(last):
        assert len(name) <= 15


def test_parse_ip_outputs() -> None:
    addr = (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
        "7: djsb64h    inet 10.231.1.1/30 scope global djsb64h\\       valid_lft forever\n"
    )
    assert network.parse_ipv4_networks(addr) == [IPv4Network("127.0.0.0/8"), IPv4Network("10.231.1.0/30")]
    links = "1: lo: <LOOPBACK,UP> mtu 65536\n9: djsb64h@if8: <BROADCAST> mtu 1500\n"
    assert network.parse_link_names(links) == ["lo", "djsb64h"]


# ------------------------------------------------------------------ state


def _record(name: str = "vps1", subnet: str = "10.231.1.0/30") -> HostRecord:
    net = IPv4Network(subnet)
    host_side, address = network.host_addresses(net)
    return HostRecord(
        name=name,
        index=int(name.removeprefix("vps")),
        subnet=subnet,
        address=address,
        host_side_address=host_side,
        netns=f"djsb-t-{name}",
        veth_host="djsb64h",
        veth_peer="djsb64c",
        machine=f"djsb-t-{name}",
        host_dir=f"/x/{name}",
        rootfs=rootfs.RootfsPaths("overlay", "/x/root", "/base", "/x/upper", "/x/work"),
        nspawn=procs.ProcRef(123, 456),
        tinyproxy=procs.ProcRef(124, 457),
        host_keys=["ssh-ed25519 AAAAC3Nz"],
    )


def test_state_round_trip(tmp_path: Path) -> None:
    state = SandboxState("t", "/k", "/kh", [_record("vps2", "10.231.1.4/30"), _record()])
    path = tmp_path / "s" / "state.json"
    save_state(path, state)
    loaded = load_state(path)
    assert loaded is not None
    assert (loaded.name, loaded.key_path, loaded.known_hosts_path) == ("t", "/k", "/kh")
    assert loaded.hosts == state.sorted_hosts()  # saved in host order, every field intact
    assert [h.name for h in loaded.hosts] == ["vps1", "vps2"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]  # no temp files left


def test_state_records_plain_pids_for_humans(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, SandboxState("t", "/k", "/kh", [_record()]))
    text = path.read_text()
    assert '"nspawn_pid": 123' in text and '"tinyproxy_pid": 124' in text


def test_load_state_missing_or_corrupt(tmp_path: Path) -> None:
    assert load_state(tmp_path / "nope.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert load_state(bad) is None


def test_all_recorded_subnets(tmp_path: Path) -> None:
    save_state(tmp_path / "a" / "state.json", SandboxState("a", "/k", "/kh", [_record()]))
    save_state(
        tmp_path / "b" / "state.json", SandboxState("b", "/k", "/kh", [_record("vps1", "10.231.1.4/30")])
    )
    assert sorted(all_recorded_subnets(tmp_path)) == [
        IPv4Network("10.231.1.0/30"),
        IPv4Network("10.231.1.4/30"),
    ]


# ------------------------------------------------------------------ known_hosts and ssh


def test_known_hosts_lines_default_port_and_comment_dropped() -> None:
    lines = keys.known_hosts_lines("10.231.1.2", ["ssh-ed25519 AAAA root@vps1", "ecdsa-sha2-nistp256 BBBB"])
    assert lines == ["10.231.1.2 ssh-ed25519 AAAA", "10.231.1.2 ecdsa-sha2-nistp256 BBBB"]


def test_known_hosts_lines_other_port_uses_brackets() -> None:
    assert keys.known_hosts_lines("10.231.1.2", ["ssh-ed25519 AAAA"], port=2222) == [
        "[10.231.1.2]:2222 ssh-ed25519 AAAA"
    ]


def test_write_known_hosts(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    keys.write_known_hosts(path, [("10.231.1.2", 22, ["ssh-ed25519 A"]), ("10.231.1.6", 22, ["ssh-rsa B"])])
    assert path.read_text() == "10.231.1.2 ssh-ed25519 A\n10.231.1.6 ssh-rsa B\n"


def test_ssh_command_uses_only_sandbox_key_and_strict_checking() -> None:
    host = SandboxHost("vps1", "10.231.1.2", "10.231.1.1", key_path="/k", known_hosts_path="/kh")
    argv = host.ssh_command("deployer")
    assert argv[0] == "ssh" and argv[-1] == "deployer@10.231.1.2"
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/kh" in argv
    assert argv[argv.index("-i") + 1] == "/k"
    assert host.pyinfra_data()["ssh_known_hosts_file"] == "/kh"


def test_sandbox_host_is_frozen_with_defaults() -> None:
    host = SandboxHost("vps1", "10.231.1.2", "10.231.1.1", key_path="/k", known_hosts_path="/kh")
    assert (host.ssh_port, host.root_user, host.sudo_user) == (22, "root", "deployer")
    with pytest.raises(FrozenInstanceError):
        host.address = "x"  # type: ignore[misc]


# ------------------------------------------------------------------ per-host files


def test_hosts_file_has_the_line_sudo_needs() -> None:
    assert "127.0.1.1\tvps3\n" in rootfs.hosts_file("vps3")


def test_environment_and_apt_proxy() -> None:
    env = rootfs.environment_file("http://10.231.1.1:8888")
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        assert f"{var}=http://10.231.1.1:8888\n" in env
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n" in env
    assert 'Acquire::http::Proxy "http://10.231.1.1:8888";' in rootfs.apt_proxy_conf("http://10.231.1.1:8888")
    assert "SSL_CERT_FILE" in rootfs.KEEP_PROXY_SUDOERS


def test_tinyproxy_conf_is_scoped_to_one_vps() -> None:
    conf = proxy.tinyproxy_conf("10.231.1.1", IPv4Network("10.231.1.0/30"))
    assert "Listen 10.231.1.1\n" in conf and "Allow 10.231.1.0/30\n" in conf and "Port 8888\n" in conf


def test_overlay_options_refuse_unsafe_paths() -> None:
    assert rootfs._overlay_options(Path("/a"), Path("/b"), Path("/c")) == "lowerdir=/a,upperdir=/b,workdir=/c"
    assert rootfs._overlay_options(Path("/a,b"), Path("/b"), Path("/c")) is None


# ------------------------------------------------------------------ processes and mounts


def test_parse_stat_with_awkward_comm() -> None:
    fields = ["S", "1"] + ["0"] * 17 + ["98765", "0"]
    text = "42 (we (ird) name) " + " ".join(fields)
    assert procs.parse_stat(text) == ("S", 98765)


def test_is_alive_checks_start_time() -> None:
    stat = procs._read_stat(os.getpid())
    assert stat is not None
    assert procs.is_alive(procs.ProcRef(os.getpid(), stat[1]))
    assert not procs.is_alive(procs.ProcRef(os.getpid(), stat[1] + 1))  # a reused PID
    assert not procs.is_alive(None)


def test_mounts_under_deepest_first_and_unescaped() -> None:
    info = (
        "22 1 0:1 / / rw - ext4 /dev/vda rw\n"
        "30 22 0:2 / /var/tmp/sb/vps1/root rw - overlay overlay rw\n"
        "31 30 0:3 / /var/tmp/sb/vps1/root/proc rw - proc proc rw\n"
        "32 22 0:4 / /var/tmp/sb/vps10/root rw - overlay overlay rw\n"
        "33 22 0:5 / /var/tmp/with\\040space rw - tmpfs tmpfs rw\n"
    )
    assert mounts.mounts_under(Path("/var/tmp/sb/vps1"), info) == [
        "/var/tmp/sb/vps1/root/proc",
        "/var/tmp/sb/vps1/root",
    ]
    assert mounts.mounts_under(Path("/var/tmp/with space"), info) == ["/var/tmp/with space"]


# ------------------------------------------------------------------ settings, API without root


def test_parse_mirror() -> None:
    text = "Types: deb\n# URIs: http://commented\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
    assert settings.parse_mirror(text) == "http://mirror.example/debian"
    assert settings.parse_mirror("Types: deb\n") is None


@pytest.mark.parametrize("name", ["demo", "e2e", "a-b_c", "x" * 32])
def test_valid_names(name: str) -> None:
    assert settings.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "Demo", "../x", "-x", "a b", "x" * 33])
def test_invalid_names(name: str) -> None:
    with pytest.raises(SandboxError):
        settings.validate_name(name)


def test_name_from_environment(monkeypatch: pytest.MonkeyPatch, isolated_dirs: Path) -> None:
    monkeypatch.setenv("DJAPLOY_SANDBOX_NAME", "ci")
    sb = Sandbox()
    assert sb.name == "ci" and sb.dir == isolated_dirs / "ci"


def test_sandbox_hosts_empty_without_state() -> None:
    assert sandbox_hosts("nothing") == []
    assert sandbox_hosts("Not Valid") == []


def test_status_lists_only_hosts_whose_process_runs(isolated_dirs: Path) -> None:
    me = procs._read_stat(os.getpid())
    assert me is not None
    alive = _record()
    alive.nspawn = procs.ProcRef(os.getpid(), me[1])
    dead = _record("vps2", "10.231.1.4/30")
    dead.nspawn = procs.ProcRef(os.getpid(), me[1] + 1)
    sb = Sandbox("t")
    save_state(sb.state_path, SandboxState("t", str(sb.key_path), str(sb.known_hosts_path), [dead, alive]))
    hosts = sb.status()
    assert [h.name for h in hosts] == ["vps1"]
    assert hosts[0].address == "10.231.1.2" and hosts[0].key_path == str(sb.key_path)
    assert sandbox_hosts("t") == hosts
    assert [(h.name, up) for h, up in sb.recorded()] == [("vps1", True), ("vps2", False)]


def test_cli_describe_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    host = SandboxHost("vps1", "10.231.1.2", "10.231.1.1", key_path="/k", known_hosts_path="/kh")
    text = cli.describe(host)
    for part in ("10.231.1.2", "root, deployer", "/k", "/kh", "ssh -i /k", "root@10.231.1.2"):
        assert part in text
    assert cli.main(["ssh", "1", "--name", "empty", "--", "true"]) == 1
    assert "no host 1" in capsys.readouterr().err
    assert cli.main(["status", "--", "x"]) == 2


def test_a_password_only_host_is_described_as_such_and_up_needs_its_variable(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    host = SandboxHost("vps1", "10.231.1.2", "10.231.1.1", key_path="/k", known_hosts_path="/kh",
                       root_password_only=True)
    text = cli.describe(host)
    assert "root (password only; no other user)" in text and "deployer" not in text
    monkeypatch.delenv("NO_SUCH_PASSWORD", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert cli.main(["up", "--name", "empty", "--root-password-env", "NO_SUCH_PASSWORD"]) == 1
    assert "NO_SUCH_PASSWORD" in capsys.readouterr().err


def test_the_record_keeps_whether_root_logs_in_with_a_password_only() -> None:
    record = HostRecord(name="vps1", index=1, subnet="10.231.1.0/30", address="10.231.1.2",
                        host_side_address="10.231.1.1", netns="n", veth_host="a", veth_peer="b", machine="m",
                        host_dir="/d", root_password_only=True)
    assert HostRecord.from_dict(record.to_dict()).root_password_only is True
    legacy = record.to_dict()
    del legacy["root_password_only"]  # a state written before the option existed
    assert HostRecord.from_dict(legacy).root_password_only is False


# ------------------------------------------------------------------ releases (--os)


def test_each_release_has_its_own_suite_and_cached_tarball(tmp_path: Path) -> None:
    assert settings.suite("debian-12") == "bookworm" and settings.suite("debian-13") == "trixie"
    paths = {rootfs.tarball_path(settings.suite(name), tmp_path) for name in settings.RELEASES}
    assert paths == {tmp_path / "bookworm-minbase.tar", tmp_path / "trixie-minbase.tar"}
    with pytest.raises(SandboxError, match="debian-12, debian-13"):
        settings.suite("ubuntu-24.04")


def test_the_release_comes_from_the_argument_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DJAPLOY_SANDBOX_OS", raising=False)
    assert Sandbox("t").os == "debian-12"
    monkeypatch.setenv("DJAPLOY_SANDBOX_OS", "debian-13")
    assert Sandbox("t").os == "debian-13"
    assert Sandbox("t", os="debian-12").os == "debian-12"
    with pytest.raises(SandboxError, match="unknown sandbox OS 'debian-11'"):
        Sandbox("t", os="debian-11")


def test_the_state_records_each_hosts_release_and_older_states_ran_debian_12(isolated_dirs: Path) -> None:
    record = _record()
    record.os = "debian-13"
    assert HostRecord.from_dict(record.to_dict()).os == "debian-13"
    legacy = record.to_dict()
    del legacy["os"]  # a state written before --os existed
    assert HostRecord.from_dict(legacy).os == "debian-12"
    me = procs._read_stat(os.getpid())
    assert me is not None
    record.nspawn = procs.ProcRef(os.getpid(), me[1])
    sb = Sandbox("t")
    save_state(sb.state_path, SandboxState("t", str(sb.key_path), str(sb.known_hosts_path), [record]))
    assert [h.os for h in sb.status()] == ["debian-13"]
    assert "(debian-13;" in cli.describe(sb.status()[0])


def test_up_refuses_to_hand_out_a_running_host_of_another_release(
        isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    me = procs._read_stat(os.getpid())
    assert me is not None
    running = _record()
    running.nspawn = procs.ProcRef(os.getpid(), me[1])
    running.tinyproxy = procs.ProcRef(os.getpid(), me[1])
    sb = Sandbox("t", os="debian-13")
    save_state(sb.state_path, SandboxState("t", str(sb.key_path), str(sb.known_hosts_path), [running]))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(SandboxError, match="asked for debian-13, but vps1 runs debian-12"):
        sb.up(count=1)


def test_cli_offers_the_releases(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["up", "--os", "debian-11"])
    err = capsys.readouterr().err
    assert "invalid choice: 'debian-11'" in err and "debian-12" in err and "debian-13" in err


def test_prepare_builds_each_asked_release_and_needs_root(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built: list[str] = []
    monkeypatch.setattr(rootfs, "ensure_base", lambda suite: built.append(suite) or tmp_path / f"base-{suite}")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["prepare", "--os", "debian-13"]) == 1 and built == []
    assert "needs root" in capsys.readouterr().err
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert cli.main(["prepare", "--os", "debian-12", "--os", "debian-13"]) == 0
    assert built == ["bookworm", "trixie"]
    assert f"debian-13: root filesystem ready at {tmp_path / 'base-trixie'}" in capsys.readouterr().out
    assert cli.main(["prepare"]) == 0 and built[-1] == "bookworm"
