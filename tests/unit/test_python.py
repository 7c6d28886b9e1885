"""djaploy.python: choosing the provider, naming interpreters and venvs, the commands (hostile values
quoted, the checksum and build failure run for real in a local shell), option validation, the
cache, and configure_server's steps over a recording plan (build once, upload to the rest)."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult
from djaploy.errors import ConfigError, RemoteError
from djaploy.inventory import resolve_targets
from djaploy.python import cache, choice, source, uv
from djaploy.python.naming import (
    Interpreter,
    build_name,
    executable,
    install_dir,
    version_in_url,
)
from djaploy.python.provide import provide_python
from djaploy.python.record import parse_record, read_command, record_text
from djaploy.python.settings import python_settings
from djaploy.verify.host_facts import python_plan, remote_findings
from tests.unit.conftest import RecordingPlan, make_ctx

DEBIAN_ORIG = "http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz"
SHA = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"


def target(config: dict[str, Any] | None = None, **host: Any) -> Target:
    made = DjaployConfig(project_name="shop", **(config or {}))
    hosts = [HostConfig("web1", ssh_host="192.0.2.10", **host)]
    return resolve_targets(made, hosts, "production", environ={}, source_file="inventory/production.py")[0]


SOURCE = {"python_version": "3.13", "python_provider": "source", "python_source": {"url": DEBIAN_ORIG, "sha256": SHA},
          "python_build_flags": []}


# --- naming ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "version"), [
    (DEBIAN_ORIG, "3.13.5"),
    ("https://www.python.org/ftp/python/3.13.5/Python-3.13.5.tar.xz", "3.13.5"),
    ("https://example.com/Python-3.14.0rc1.tgz", "3.14.0rc1"),
    ("https://example.com/python3.13.tar.xz", None),
    ("https://example.com/cpython-main.tar.gz", None),
])
def test_the_version_comes_from_the_tarball_name(url: str, version: str | None) -> None:
    assert version_in_url(url) == version


def test_each_interpreter_has_its_own_folder_off_the_path_and_venvs_carry_its_full_version() -> None:
    assert install_dir("source", "3.13.5") == "/opt/djaploy/python/source-3.13.5"
    assert executable("source", "3.13.5") == "/opt/djaploy/python/source-3.13.5/bin/python3.13"
    assert executable("uv", "3.12.11") == "/opt/djaploy/python/uv-3.12.11/bin/python3.12"
    assert executable("system", "3.11.2") == "/usr/bin/python3.11"
    ctx = make_ctx(interpreter=Interpreter("source", "3.13.5", executable("source", "3.13.5")))
    assert ctx.venv_dir == "/home/shop/apps/shop/shared/venv-abc123-py3.13.5-source"
    patched = make_ctx(interpreter=Interpreter("source", "3.13.6", executable("source", "3.13.6")))
    assert patched.venv_dir != ctx.venv_dir
    assert build_name("3.13.5", "debian-12", "x86_64", "0123abcd") == "cpython-3.13.5-debian-12-x86_64-0123abcd"


# --- options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "message"), [
    ({"python_provider": "pyenv"}, "'pyenv' is not a Python provider"),
    ({"python_source": {"url": DEBIAN_ORIG}}, "missing 'sha256'"),
    ({"python_source": {"url": DEBIAN_ORIG, "sha256": SHA, "md5": "x"}}, "unknown key 'md5'"),
    ({"python_source": {"url": DEBIAN_ORIG, "sha256": SHA.upper()}}, "is not a sha256"),
    ({"python_source": {"url": "ftp://example.com/Python-3.13.5.tgz", "sha256": SHA}}, "not an http"),
    ({"python_source": {"url": "https://x.org/Python-3.13.5.tgz;reboot", "sha256": SHA}}, "not an http"),
    ({"python_source": {"url": "https://x.org/python.tgz", "sha256": SHA}}, "does not name a CPython version"),
    ({"python_build_flags": ["--with-lto; reboot"]}, "is not a ./configure option"),
    ({"python_install_mirror": "https://mirror.example.com/$(id)"}, "not an http"),
])
def test_bad_python_options_are_config_errors_naming_the_field(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        DjaployConfig(project_name="shop", **values)
    assert message in str(info.value)
    assert f"python_{next(iter(values)).removeprefix('python_')}" in str(info.value)


def test_a_host_overrides_python_version_and_provider() -> None:
    host = target({"python_version": "3.11"}, python_version="3.13", python_provider="uv",
                  python_downloads_json_url="http://10.0.0.1:8000/downloads.json")
    settings = python_settings(host)
    assert (settings.version, settings.provider, settings.downloads_json_url) == (
        "3.13", "uv", "http://10.0.0.1:8000/downloads.json")
    assert python_settings(target({"python_version": "3.11"})).version == "3.11"


def test_the_source_tarball_must_be_of_the_configured_version() -> None:
    with pytest.raises(ConfigError) as info:
        python_settings(target({**SOURCE, "python_version": "3.12"}))
    assert "python_source" in str(info.value) and "3.13.5" in str(info.value) and "'3.12'" in str(info.value)
    with pytest.raises(ConfigError, match="needs python_source"):
        python_settings(target({"python_provider": "source"}))


def test_the_defaults_build_a_production_grade_interpreter() -> None:
    assert DjaployConfig(project_name="shop").python_build_flags == ["--enable-optimizations", "--with-lto"]
    assert DjaployConfig(project_name="shop").python_provider == "auto"


# --- choosing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "apt", "chosen"), [
    ("auto", True, "system"), ("auto", False, "uv"), ("uv", True, "uv"), ("source", True, "source"),
    ("system", False, "system"),
])
def test_auto_is_the_os_package_when_there_is_one_else_uv(provider: str, apt: bool, chosen: str) -> None:
    assert choice.choose(provider, apt) == chosen


def test_verify_remote_says_which_provider_and_version_a_host_would_use() -> None:
    bookworm = {"python3": "3.11", "apt": "no"}
    assert python_plan(bookworm, target({"python_version": "3.13"})).startswith("python: uv (uv's newest CPython 3.13")
    assert python_plan(bookworm, target()).startswith("python: system (python3.11 from the OS)")
    recorded = record_text(Interpreter("source", "3.13.5", executable("source", "3.13.5"))).strip()
    line = python_plan({**bookworm, "record": recorded}, target(SOURCE))
    assert line == "python: source (CPython 3.13.5 built from python_source); now Python 3.13.5 (source)"
    switching = python_plan({**bookworm, "record": recorded}, target({"python_version": "3.13", "python_provider": "uv"}))
    assert switching.endswith("; now Python 3.13.5 (source): configureserver replaces it")
    assert python_plan(bookworm, target(SOURCE)).endswith("; not provided yet (configureserver provides it)")
    # another provider than the OS's never makes the host unfit
    assert remote_findings({"uid": "0", "os_id": "debian", **bookworm}, target({"python_version": "3.13"}), "w") == []


# --- the record a deploy reads -------------------------------------------------------------------------


def test_the_record_round_trips_and_disagreements_say_what_to_do() -> None:
    interpreter = Interpreter("uv", "3.13.5", executable("uv", "3.13.5"))
    assert parse_record(record_text(interpreter), "3.13", "auto") == interpreter
    assert parse_record(record_text(interpreter), "3.13", "uv") == interpreter
    assert "comes from 'uv', but python_provider is 'source'" in parse_record(record_text(interpreter), "3.13", "source")
    assert "but python_version is '3.12'" in parse_record(record_text(interpreter), "3.12", "auto")
    assert "no Python 3.13" in parse_record("", "3.13", "auto")
    assert "unreadable" in parse_record('{"provider": "conda", "version": "3.13.5"}', "3.13", "auto")


def test_a_host_configured_before_the_record_falls_back_to_its_system_python(tmp_path: Path) -> None:
    command = read_command(str(tmp_path / "it's meta"), "3.11")
    assert shlex.quote(str(tmp_path / "it's meta" / "python.json")) in command
    written = record_text(Interpreter("source", "3.13.5", "/opt/x"))
    (tmp_path / "it's meta").mkdir()
    (tmp_path / "it's meta" / "python.json").write_text(written)
    assert subprocess.run(["sh", "-c", command], check=False, capture_output=True, text=True).stdout == written


def test_a_deploy_reads_the_record_once_and_refuses_without_one() -> None:
    recorded = record_text(Interpreter("source", "3.13.5", executable("source", "3.13.5")))
    plan = RecordingPlan(files={"/home/shop/apps/shop/.djaploy/python.json": (recorded, "root", "644")})
    ctx = make_ctx(plan, target(SOURCE), interpreter=None)
    assert ctx.python == "/opt/djaploy/python/source-3.13.5/bin/python3.13"
    assert ctx.venv_dir.endswith("/venv-abc123-py3.13.5-source")
    assert len([call for call in plan.calls if call[0] == "query"]) == 1
    with pytest.raises(RemoteError, match="run configureserver"):
        _ = make_ctx(RecordingPlan(), target(SOURCE), interpreter=None).venv_dir


# --- commands ------------------------------------------------------------------------------------------


def test_uv_gets_its_store_and_the_configured_mirror_as_single_quoted_words() -> None:
    settings = python_settings(target({"python_version": "3.13"}))
    hostile = type(settings)(**{**settings.__dict__, "downloads_json_url": "http://x/'$(reboot)'.json"})
    show = "printf '%s|%s' \"$UV_PYTHON_DOWNLOADS_JSON_URL\" \"$UV_PYTHON_INSTALL_DIR\""
    result = subprocess.run(["sh", "-c", f"{uv.uv_environment(hostile)} sh -c {shlex.quote(show)}"],
                            check=False, capture_output=True, text=True)
    assert result.stdout == "http://x/'$(reboot)'.json|/opt/djaploy/python/.uv"
    assert uv.install_command("/opt/djaploy-tools/bin/uv", settings).count(" python install --no-bin 3.13") == 1


def _tarball(folder: Path, files: dict[str, str]) -> Path:
    """A release-like tarball: one top folder holding `files` (executable)."""
    top = folder / "Python-3.13.5"
    top.mkdir(parents=True)
    for name, text in files.items():
        (top / name).write_text(text)
        (top / name).chmod(0o755)
    path = folder / "Python-3.13.5.tar.xz"
    with tarfile.open(path, "w:xz") as archive:
        archive.add(top, arcname="Python-3.13.5")
    return path


def test_a_wrong_sha256_stops_before_anything_is_built_naming_both_hashes(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "src", {"configure": "#!/bin/sh\ntouch ../../configured\n"})
    real = hashlib.sha256(tarball.read_bytes()).hexdigest()
    work = str(tmp_path / "work")
    wrong = "0" * 64
    result = subprocess.run(["sh", "-c", source.download_command(tarball.as_uri(), wrong, work)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 1
    assert "python_source['sha256'] does not match" in result.stderr
    assert wrong in result.stderr and real in result.stderr
    assert not (Path(work) / "source.tar").exists()
    ok = subprocess.run(["sh", "-c", source.download_command(tarball.as_uri(), real, work)], check=False, capture_output=True, text=True)
    assert ok.returncode == 0 and (Path(work) / "source.tar").is_file(), ok.stderr


def test_a_failed_build_shows_the_tail_of_its_log_and_where_the_full_log_is(tmp_path: Path) -> None:
    configure = "#!/bin/sh\nfor i in $(seq 1 100); do echo \"checking thing $i\"; done\necho 'no acceptable C compiler'\nexit 1\n"
    tarball = _tarball(tmp_path / "src", {"configure": configure})
    work = tmp_path / "work"
    work.mkdir()
    (work / "source.tar").write_bytes(tarball.read_bytes())
    result = subprocess.run(["sh", "-c", source.build_command("3.13.5", str(work), "/opt/x", ["--with-lto"])],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[-2] == "no acceptable C compiler" and "checking thing 100" in lines
    assert "checking thing 50" not in lines  # the tail, not the whole log
    assert lines[-1] == f"building CPython 3.13.5 failed; the full log is on the host: {work}/build.log"
    assert "checking thing 1\n" in (work / "build.log").read_text()


def test_build_commands_quote_every_configured_value() -> None:
    command = source.build_command("3.13.5", "/opt/djaploy/python/.builds/b.work", "/opt/djaploy/python/source-3.13.5",
                                   ["--with-lto", "CFLAGS=-O2"])
    assert "./configure --prefix=/opt/djaploy/python/source-3.13.5 --with-ensurepip=install --disable-test-modules --with-lto CFLAGS=-O2" in command
    download = source.download_command("https://x.org/a b/Python-3.13.5.tgz", SHA, "/w")
    assert "'https://x.org/a b/Python-3.13.5.tgz'" in download


# --- the local cache -----------------------------------------------------------------------------------


def test_the_cache_folder_is_overridable_for_ci(tmp_path: Path) -> None:
    assert cache.cache_dir({"DJAPLOY_PYTHON_CACHE": str(tmp_path)}) == tmp_path
    assert cache.cache_dir({"XDG_CACHE_HOME": "/xdg"}) == Path("/xdg/djaploy/python")
    build = cache.CachedBuild("cpython-3.13.5-debian-12-x86_64-abc", tmp_path / "new")
    assert not build.exists()
    part = build.incoming()
    part.write_bytes(b"tree")
    build.keep(part, ["libssl3", "libffi8"])
    assert build.exists() and build.packages() == ["libssl3", "libffi8"] and build.archive.read_bytes() == b"tree"


# --- configure_server's steps --------------------------------------------------------------------------


@dataclass
class Host(RecordingPlan):
    """A host that answers the probes: `answers` maps a command's start to its output."""

    answers: dict[str, str] = field(default_factory=dict)

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        for start, output in self.answers.items():
            if start in command:
                self.calls.append(("query", command))
                return CommandResult(True, output)
        return super().query(command, as_user=as_user)


BOOKWORM = "installed=no\nos=debian-12\nmachine=x86_64\n"


def _source_host(installed: str = BOOKWORM) -> Host:
    return Host(answers={"echo installed=yes": installed})


def test_the_first_host_builds_and_keeps_the_build_the_next_gets_it_uploaded(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJAPLOY_PYTHON_CACHE", str(tmp_path))
    first = _source_host()
    first.files["/opt/djaploy/python/.builds/" + _name() + ".tar.gz"] = ("packed tree", "root", "644")
    first.answers["cat /opt/djaploy/python/.builds/"] = "libssl3\nlibffi8\n"
    interpreter = provide_python(make_ctx(first, target(SOURCE)))
    assert interpreter == Interpreter("source", "3.13.5", "/opt/djaploy/python/source-3.13.5/bin/python3.13")
    assert "python: build dependencies" in first.steps
    assert any(step.startswith("python: compile CPython 3.13.5") for step in first.steps)
    assert first.steps.index("python: download " + DEBIAN_ORIG + " and check its sha256") < first.steps.index(
        "python: build dependencies") < next(
        i for i, step in enumerate(first.steps) if step.startswith("python: compile"))
    assert (tmp_path / f"{_name()}.tar.gz").read_text() == "packed tree"
    assert json.loads(first.files["/home/shop/apps/shop/.djaploy/python.json"][0])["version"] == "3.13.5"

    second = _source_host()
    provide_python(make_ctx(second, target(SOURCE)))
    assert "python: upload the cached build " + _name() + " (no compile on this host)" in second.steps
    assert "python: libraries the cached build links against" in second.steps
    assert not any(step.startswith(("python: compile", "python: build dependencies")) for step in second.steps)


def test_configure_server_a_second_time_installs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJAPLOY_PYTHON_CACHE", str(tmp_path))
    host = _source_host("installed=yes\nos=debian-12\nmachine=x86_64\n")
    provide_python(make_ctx(host, target(SOURCE)))
    assert [call for call in host.calls if call[0] == "run"] == []
    assert not any("upload" in step for step in host.steps)


def test_another_os_release_is_another_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJAPLOY_PYTHON_CACHE", str(tmp_path))
    (tmp_path / f"{_name()}.tar.gz").write_text("bookworm's")
    (tmp_path / f"{_name()}.packages").write_text("")
    trixie = _source_host("installed=no\nos=debian-13\nmachine=x86_64\n")
    provide_python(make_ctx(trixie, target(SOURCE)))
    assert any(step.startswith("python: compile") for step in trixie.steps)


def test_uv_installs_only_when_it_has_no_such_python_and_links_it_by_full_version() -> None:
    found = "version=3.13.5\npython=/opt/djaploy/python/.uv/cpython-3.13.5-linux-x86_64-gnu/bin/python3.13\n"
    host = Host(answers={"python find": found})
    interpreter = provide_python(make_ctx(host, target({"python_version": "3.13", "python_provider": "uv"})))
    assert interpreter == Interpreter("uv", "3.13.5", "/opt/djaploy/python/uv-3.13.5/bin/python3.13")
    assert [call for call in host.calls if call[0] == "run"] == []
    assert "python: /opt/djaploy/python/uv-3.13.5 (uv's Python 3.13.5)" in host.steps


def test_system_refuses_a_version_the_os_does_not_have_and_says_what_to_use() -> None:
    host = Host(answers={"apt-cache show": "apt=no\n"})
    with pytest.raises(RemoteError) as info:
        provide_python(make_ctx(host, target({"python_version": "3.13", "python_provider": "system"})))
    assert "python_provider='uv' or 'source'" in str(info.value)


def _name() -> str:
    return build_name("3.13.5", "debian-12", "x86_64", python_settings(target(SOURCE)).build_digest)
