"""The project the peer deploys: infra_example (the ledger) as a Poetry project with a 1.x infra folder.

Same Django app, same /version/ marker as bench/run.py's project; what changes is only what
djaploy 1.6.2 needs: a pyproject.toml + poetry.lock (Poetry installs the dependencies on the
server), settings as a package so 1.x can write ledger/settings/local.py, its apps in
INSTALLED_APPS, and the inventory under an app's infra/ folder, as 1.x discovers it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLE = REPO / "infra_example"
PEER_VERSION = "1.6.2"
CACHE = Path(os.environ.get("DJAPLOY_BENCH_CACHE", "/var/cache/djaploy-bench"))
PEER_VENV = CACHE / "peer-venv"
POETRY_VENV = CACHE / "poetry-venv"


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def ensure_tools() -> None:
    """djaploy 1.6.2 in its own virtualenv, and Poetry (to lock the project) in another."""
    for venv, package in ((PEER_VENV, f"djaploy=={PEER_VERSION}"), (POETRY_VENV, "poetry")):
        if not (venv / "bin" / "python").exists():
            _run(["python3", "-m", "venv", str(venv)])
        if subprocess.run([str(venv / "bin" / "pip"), "show", "-q", package.split("==")[0]],
                          capture_output=True).returncode != 0:
            _run([str(venv / "bin" / "pip"), "install", "-q", package])
    installed = _run([str(PEER_VENV / "bin" / "python"), "-I", "-c",
                      "import importlib.metadata as m; print(m.version('djaploy'))"]).stdout.strip()
    if installed != PEER_VERSION:
        raise SystemExit(f"{PEER_VENV} holds djaploy {installed}, not {PEER_VERSION}: remove it and rerun")


def simple_index_url() -> str:
    """pip's default simple index, the one Poetry can use here (its JSON API is not served)."""
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


@dataclass
class PeerProject:
    """A git repository holding the Poetry version of the ledger, and how to run the peer on it."""

    root: Path
    env: dict[str, str]

    def manage(self, *args: str, timeout: int = 1800) -> tuple[subprocess.CompletedProcess[str], float]:
        """Run manage.py with djaploy 1.6.2's interpreter; returns the result and its wall seconds."""
        started = time.monotonic()
        result = subprocess.run(
            [str(PEER_VENV / "bin" / "python"), "manage.py", *args],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        return result, time.monotonic() - started

    def git(self, *args: str) -> str:
        return _run(["git", *args], cwd=self.root).stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def set_version(self, version: str) -> None:
        (self.root / "ledger" / "version.py").write_text(f'APP_VERSION = "{version}"\n')


def _settings_package(root: Path) -> None:
    """ledger/settings.py -> ledger/settings/__init__.py (one level deeper), plus the 1.x block."""
    source = (root / "ledger" / "settings.py").read_text()
    old = "BASE_DIR = Path(__file__).resolve().parent.parent\n"
    if old not in source:
        raise SystemExit("infra_example/ledger/settings.py no longer defines BASE_DIR as expected")
    source = source.replace(old, "BASE_DIR = Path(__file__).resolve().parent.parent.parent\n")
    package = root / "ledger" / "settings"
    package.mkdir()
    (package / "__init__.py").write_text(source + (HERE / "settings_peer.py").read_text())
    (root / "ledger" / "settings.py").unlink()


def write_inventory(root: Path, values: dict[str, str]) -> None:
    """ops/infra/inventory/sandbox.py for the bench host, from the .in template."""
    inventory = root / "ops" / "infra" / "inventory"
    text = (inventory / "sandbox.py.in").read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    (inventory / "sandbox.py").write_text(text)
    (inventory / "sandbox.py.in").unlink()


def make_peer_project(directory: Path, inventory: dict[str, str], op_dir: Path) -> PeerProject:
    """Copy infra_example, turn it into the peer's form, lock it with Poetry, commit it (tag v1)."""
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns(
        "__pycache__", "*.sqlite3", "staticfiles", "media", "infra", "requirements.txt"))
    shutil.copytree(HERE / "ops", directory / "ops", ignore=shutil.ignore_patterns("__pycache__"))
    _settings_package(directory)
    write_inventory(directory, inventory)
    pyproject = (HERE / "pyproject.toml.in").read_text()
    pyproject = pyproject.replace("{djaploy_version}", PEER_VERSION).replace("{index_url}", simple_index_url())
    (directory / "pyproject.toml").write_text(pyproject)
    # 1.x writes its artifacts into GIT_DIR/deployment/: keep them out of the repository.
    (directory / ".gitignore").write_text("deployment/\n__pycache__/\n*.sqlite3\nstaticfiles/\n")
    _run([str(POETRY_VENV / "bin" / "poetry"), "lock", "-q"], cwd=directory)

    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(op_dir), str(PEER_VENV / "bin"), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    op_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "op", op_dir / "op")
    project = PeerProject(directory, env)
    project.git("init", "-q", "-b", "main")
    project.git("config", "user.email", "bench@djaploy.invalid")
    project.git("config", "user.name", "bench")
    project.commit("initial")
    project.git("tag", "v1")
    return project
