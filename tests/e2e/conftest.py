"""End-to-end fixtures: real sandbox VPS hosts and a git copy of infra_example to deploy.

The tests drive djaploy the way a user does: `manage.py <command>` in a subprocess, then
check what a user would check (HTTP answers through nginx, files, services) over real SSH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from djaploy.loadgen import LoadReport
from tests.conftest import missing_prerequisite

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "infra_example"
#: one sandbox per pytest-xdist worker (gw0, gw1...), so test modules run side by side without sharing hosts
SANDBOX_NAME = os.environ.get("DJAPLOY_E2E_SANDBOX", "e2e") + os.environ.get("PYTEST_XDIST_WORKER", "")
SECRET_KEY = "e2e-secret-" + "k" * 40


def _can_boot_sandbox() -> str | None:
    if os.geteuid() != 0:
        return "end-to-end tests need root (network namespaces, systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "tinyproxy", "ip", "ssh", "ssh-keygen", "git"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run scripts/setup.sh)"
    return None


@pytest.fixture(scope="session", autouse=True)
def djaploy_of_this_checkout() -> Iterator[None]:
    """manage.py runs in subprocesses: they must import the djaploy of this checkout, not the one
    the venv's editable install points at (another worktree's, say)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@contextmanager
def fresh_sandbox(name: str = SANDBOX_NAME, count: int = 2, os_release: str | None = None) -> Iterator[list]:
    """`count` fresh hosts of sandbox `name` running `os_release` (default: the sandbox's default
    release), removed afterwards unless DJAPLOY_E2E_KEEP is set."""
    reason = _can_boot_sandbox()
    if reason:
        missing_prerequisite(reason)
    from djaploy.sandbox import Sandbox

    sandbox = Sandbox(name=name, os=os_release)
    sandbox.down()  # a leftover of an interrupted run must not leak into this module
    hosts = sandbox.up(count=count)
    try:
        yield hosts
    finally:
        if not os.environ.get("DJAPLOY_E2E_KEEP"):
            sandbox.down()


@pytest.fixture(scope="module")
def sandbox_hosts():
    """Two fresh sandbox VPS hosts per test module (they boot from the cached root filesystem in
    seconds), so no module depends on what another left on a host."""
    with fresh_sandbox() as hosts:
        yield hosts


@dataclass
class Project:
    """A git repository holding a copy of infra_example, and how to run its manage.py."""

    root: Path
    env: dict[str, str]

    def manage(self, *args: str, check: bool = False, timeout: int = 900) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        print(f"$ manage.py {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout

    def commit(self, message: str, tag: str | None = None) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        if tag:
            self.git("tag", tag)

    def write(self, relative: str, content: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)

    def set_version(self, version: str) -> None:
        self.write("ledger/version.py", f'APP_VERSION = "{version}"\n')


def make_project(directory: Path, sandbox_name: str = SANDBOX_NAME) -> Project:
    """Copy infra_example into `directory` as a fresh git repository (manage.py at its root)."""
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3", "staticfiles", "media"))
    env = {
        **os.environ,
        "DJAPLOY_SANDBOX_NAME": sandbox_name,
        "LEDGER_SECRET_KEY": SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    project = Project(directory, env)
    project.git("init", "-q", "-b", "main")
    project.git("config", "user.email", "e2e@djaploy.invalid")
    project.git("config", "user.name", "e2e")
    project.commit("initial", tag="v1")
    return project


def http_get(url: str, host: str | None = None, timeout: float = 10) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def http_post_json(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def assert_one_clean_switch(report: LoadReport, old: str, new: str) -> None:
    """No failed request, and the served version changed exactly once, from old to new, never back.

    "Once" is judged causally: requests queued in the socket backlog are answered out of start
    order, so start order alone can look like 1,2,1,2 while nothing flipped back. What must hold
    is a switch instant: the first completed answer from `new`. Every request that ended before
    it saw `old` (it is the first), and every request that started after it saw `new`.
    """
    assert report.failures == 0, report.failure_reasons
    assert report.bodies_in_order[0] == old and report.bodies_in_order[-1] == new, report.bodies_in_order
    assert set(report.bodies_in_order) == {old, new}, report.bodies_in_order
    switched = min(sample.end for sample in report.samples if sample.body == new)
    old_after_switch = [sample for sample in report.samples if sample.body == old and sample.start > switched]
    assert not old_after_switch, f"{len(old_after_switch)} requests saw {old} again after {new} was served: {report.summary()}"
    assert report.regressions == 0, report.summary()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sandbox_hosts) -> Iterator[Project]:
    yield make_project(tmp_path_factory.mktemp("ledger") / "ledger")
