"""What the unit tests share: throwaway git repositories, a `Plan` that records what strategies
and modules ask of a host (`RecordingPlan`), modules whose hooks show up in it, and a fixture
that keeps modules imported from tmp folders from leaking into the next test.

Helpers are imported from here (`from tests.unit.conftest import ...`); fixtures need no import.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from djaploy import shell
from djaploy.artifact import Release
from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import CommandResult, HostContext, Plan
from djaploy.inventory import resolve_targets
from djaploy.modules.base import HOOKS, BaseModule
from djaploy.project import Project
from djaploy.python.naming import Interpreter

# --- git repositories ---------------------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    """git in `root` with a throwaway identity, so commits work on a machine without one."""
    return subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout


def commit(root: Path, tag: str | None = None) -> None:
    """Commit everything in the work tree, and tag it if asked."""
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "change")
    if tag:
        git(root, "tag", tag)


def make_repo(root: Path, files: dict[str, str]) -> Path:
    """A fresh git repository (branch main) at `root` holding `files` (path -> text), uncommitted."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", "main")
    return root


# --- modules imported from tmp folders ----------------------------------------------------------


@pytest.fixture
def forget_new_modules() -> Iterator[None]:
    """Every tmp infra folder is a package named `infra`: never let one leak into the next test."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


# --- a Plan that records ------------------------------------------------------------------------


@dataclass
class RecordingPlan:
    """`Plan` over an in-memory host: calls in order, and the files it was given by path."""

    dry_run: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, step or command)
    files: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # path -> (content, owner, mode)
    commands: list[str] = field(default_factory=list)
    live_link: str = ""  # where the host's live.sock points (zero_downtime reads it to pick a lane)
    enabled: dict[str, bool] = field(default_factory=dict)  # service -> enabled=... it was last asked for

    def _put(self, method: str, step: str, path: str, content: str, owner: str, mode: str) -> bool:
        self.calls.append((method, step))
        changed = self.files.get(path) != (content, owner, mode)
        self.files[path] = (content, owner, mode)
        return changed

    def packages(self, step: str, packages: Sequence[str]) -> bool:
        self.calls.append(("packages", step))
        return True

    def user(self, step: str, name: str, *, home: str) -> bool:
        self.calls.append(("user", step))
        return True

    def directory(self, step: str, path: str, *, owner: str = "root", mode: str = "755") -> bool:
        self.calls.append(("directory", step))
        return True

    def put_text(self, step: str, path: str, content: str, *, owner: str = "root", mode: str = "644") -> bool:
        return self._put("put_text", step, path, content, owner, mode)

    def put_file(self, step: str, local_path: str, remote_path: str, *, owner: str = "root", mode: str = "644") -> bool:
        return self._put("put_file", step, remote_path, Path(local_path).read_bytes().decode("latin-1"), owner, mode)

    def fetch_file(self, step: str, remote_path: str, local_path: str) -> bool:
        self.calls.append(("fetch_file", step))
        Path(local_path).write_bytes(self.files.get(remote_path, ("",))[0].encode("latin-1"))
        return True

    def link(self, step: str, path: str, target: str) -> bool:
        self.calls.append(("link", step))
        return True

    def absent(self, step: str, path: str) -> bool:
        self.calls.append(("absent", step))
        return True

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        self.calls.append(("run", step))
        self.commands.append(command)
        words = shlex.split(command) if command.startswith("printf ") else []
        if len(words) == 10 and command == shell.write_file_atomically(words[-1], words[2]):
            self.files[words[-1]] = (words[2] + "\n", "root", "644")  # state.json: later reads see it
        return CommandResult(True, "")

    def service(self, step: str, name: str, *, running: bool = True, enabled: bool = True, restarted: bool = False,
                reloaded: bool = False, daemon_reload: bool = False) -> bool:
        self.calls.append(("service", step))
        self.commands.append(f"service {name} daemon_reload={daemon_reload}")
        self.enabled[name] = enabled
        return True

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult:
        self.calls.append(("query", command))
        state = self.files.get(shlex.split(command)[1], ("",))[0] if command.startswith("cat ") else ""
        if "readlink" in command:  # zero_downtime: state.json, the releases on disk, the live link
            return CommandResult(True, f"{state}==djaploy-releases\n{self.releases_on_disk()}==djaploy-live\n{self.live_link}\n")
        if command.startswith("cat "):  # read back a file it holds (state.json)
            return CommandResult(True, state)
        return CommandResult(True, "")

    def releases_on_disk(self) -> str:
        """The folders zero_downtime finds in releases/ (none here)."""
        return ""

    def direct_operations(self, label: str) -> AbstractContextManager[object]:
        return nullcontext()

    @property
    def steps(self) -> list[str]:
        """What changed the host, in order (queries only read it)."""
        return [step for method, step in self.calls if method != "query"]


def _is_a_plan(plan: Plan) -> Plan:  # mypy: RecordingPlan must satisfy the Protocol
    return plan


_is_a_plan(RecordingPlan())



# --- contexts: host web1 of project shop, with both recording modules ---------------------------


def make_target(**host: Any) -> Target:
    """Host web1 of project shop in production, with the recording modules; `host` overrides fields."""
    config = DjaployConfig(project_name="shop", modules=[MODULE_A, MODULE_B])
    hosts = [HostConfig("web1", ssh_host="192.0.2.10", domains=["shop.example.com"], **host)]
    return resolve_targets(config, hosts, "production", environ={}, source_file="inventory/production.py")[0]


def make_ctx(plan: RecordingPlan | None = None, target: Target | None = None, **fields: Any) -> HostContext:
    # The recording plan reads what it uploads; any local file stands in for the tarball.
    release = Release(name="v7", ref="v7", commit="c0ffee" * 6 + "c0ff", tarball=Path(__file__),
                      requirements_text="Django\n", dependency_hash="abc123")
    project = Project(git_root=Path("/src/shop"), manage_py="manage.py", wsgi_application="shop.wsgi:application")
    # Configureserver's record of the app's interpreter, as a deploy reads it from the host.
    python = Interpreter("system", "3.11.2", "/usr/bin/python3.11")
    fields = {"env": "production", "project": project, "release": release, "interpreter": python, **fields}
    return HostContext(target=target or make_target(), plan=plan or RecordingPlan(), **fields)


# --- recording modules --------------------------------------------------------------------------


class Recording(BaseModule):
    """Every hook shows up in the plan's steps as '<name>.<hook>'."""


for _hook in HOOKS:
    setattr(Recording, _hook, lambda self, ctx, _hook=_hook: ctx.plan.run(f"{self.name}.{_hook}", "true"))


class ModuleA(Recording):
    name = "a"


class ModuleB(Recording):
    name = "b"


MODULE_A = f"{__name__}.ModuleA"
MODULE_B = f"{__name__}.ModuleB"
