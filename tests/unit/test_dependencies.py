"""Pinned requirements from each lock format: main dependencies only, markers kept, stable."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from djaploy import shell
from djaploy.dependencies import (
    DependencySpec,
    find_uv,
    pin_requirements,
    pipenv_requirements,
    poetry_requirements,
    python_marker,
    requirement_names,
    uv_compile,
)
from djaploy.errors import ArtifactError
from djaploy.project import dependency_hash
from tests.conftest import missing_prerequisite

PYPROJECT = """
[tool.poetry]
name = "shop"
version = "0.1.0"
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
Django = ">=5.2,<5.3"
requests = {version = "*", extras = ["socks"]}
legacy-lib = {version = "*", python = "<3.9"}
docs-only = {version = "*", optional = true}

[tool.poetry.group.dev.dependencies]
pytest = "*"
"""

# A Poetry 2 lock (lock-version 2.1): every package says its groups and, per group, its markers.
LOCK_21 = """
[[package]]
name = "asgiref"
version = "3.13.0"
groups = ["main"]

[[package]]
name = "colorama"
version = "0.4.6"
groups = ["dev"]
markers = "sys_platform == \\"win32\\""

[[package]]
name = "Django"
version = "5.2.19"
groups = ["main"]

[package.dependencies]
asgiref = ">=3.8.1"
sqlparse = ">=0.3.1"
tzdata = {version = "*", markers = "sys_platform == \\"win32\\""}

[package.extras]
argon2 = ["argon2-cffi (>=19.1.0)"]

[[package]]
name = "legacy-lib"
version = "1.0"
groups = ["main"]
markers = "python_full_version < \\"3.9\\""

[[package]]
name = "PySocks"
version = "1.7.1"
groups = ["main"]

[[package]]
name = "pytest"
version = "8.4.0"
groups = ["dev"]

[package.dependencies]
colorama = {version = ">=0.4", markers = "sys_platform == \\"win32\\""}

[[package]]
name = "requests"
version = "2.34.2"
groups = ["main", "dev"]
markers = {main = "python_version >= \\"3.10\\"", dev = "sys_platform == \\"linux\\""}

[package.dependencies]
PySocks = {version = ">=1.5.6,!=1.5.7", optional = true, markers = "extra == \\"socks\\""}
chardet = {version = ">=3.0.2,<8", optional = true, markers = "extra == \\"use-chardet-on-py3\\""}

[package.extras]
socks = ["PySocks (>=1.5.6,!=1.5.7)"]
use-chardet-on-py3 = ["chardet (>=3.0.2,<8)"]

[package.source]
type = "legacy"
url = "https://pypi.org/simple"
reference = "pypi-simple"

[[package]]
name = "sqlparse"
version = "0.6.1"
groups = ["main"]

[package.source]
type = "legacy"
url = "https://packages.example.com/simple/"
reference = "private"

[[package]]
name = "tzdata"
version = "2026.6"
groups = ["main"]
markers = "sys_platform == \\"win32\\""

[metadata]
lock-version = "2.1"
python-versions = "^3.11"
"""

EXPECTED_POETRY = [
    "--extra-index-url https://packages.example.com/simple",
    "asgiref==3.13.0",
    'django==5.2.19',
    'legacy-lib==1.0 ; python_full_version < "3.9"',
    "pysocks==1.7.1",
    'requests==2.34.2 ; python_version >= "3.10"',
    "sqlparse==0.6.1",
    'tzdata==2026.6 ; sys_platform == "win32"',
]


def _names(lines: list[str]) -> list[str]:
    return [line.split("==")[0].split(" ")[0].lower() for line in lines if not line.startswith("-")]


def test_poetry_2_lock_uses_its_groups_and_main_markers() -> None:
    lines = poetry_requirements(LOCK_21, PYPROJECT)
    lines = [line.replace("Django", "django").replace("PySocks", "pysocks") for line in lines]
    assert lines == EXPECTED_POETRY


def test_older_poetry_lock_is_walked_from_the_main_dependencies() -> None:
    """Without groups (Poetry 1.x locks) the walk finds the same main set, markers combined."""
    old = "\n".join(line for line in LOCK_21.splitlines()
                    if not line.startswith(("groups =", "markers =")) and "lock-version" not in line)
    lines = poetry_requirements(old, PYPROJECT)
    assert _names(lines) == _names(EXPECTED_POETRY)  # dev (pytest, colorama) and unused extras (chardet) left out
    assert 'legacy-lib==1.0 ; python_full_version < "3.9"' in lines  # the python key of a root dependency
    assert 'tzdata==2026.6 ; sys_platform == "win32"' in lines  # an edge marker
    assert "PySocks==1.7.1" in lines  # switched on by requests[socks]; its `extra ==` marker resolved


def test_poetry_walk_combines_markers_along_paths_and_across_them() -> None:
    pyproject = '[tool.poetry.dependencies]\npython = "^3.11"\na = {version = "*", markers = "os_name == \\"posix\\""}\nb = "*"\n'
    lock = """
[[package]]
name = "a"
version = "1"
[package.dependencies]
c = {version = "*", markers = "sys_platform == \\"linux\\""}
[[package]]
name = "b"
version = "1"
[package.dependencies]
c = {version = "*", python = ">=3.12"}
[[package]]
name = "c"
version = "1"
"""
    lines = poetry_requirements(lock, pyproject)
    assert 'a==1 ; os_name == "posix"' in lines
    assert ('c==1 ; (os_name == "posix" and sys_platform == "linux") or (python_full_version >= "3.12")') in lines


def test_poetry_lock_missing_a_dependency_says_to_relock() -> None:
    with pytest.raises(ArtifactError, match="does not lock django.*poetry lock"):
        poetry_requirements('[[package]]\nname = "x"\nversion = "1"\n', '[tool.poetry.dependencies]\ndjango = "*"\n')


def test_poetry_git_and_path_sources() -> None:
    lock = """
[[package]]
name = "lib"
version = "1.0"
groups = ["main"]
[package.source]
type = "git"
url = "https://git.example.com/lib.git"
reference = "main"
resolved_reference = "abc123"
[[package]]
name = "local"
version = "0.1"
groups = ["main"]
[package.source]
type = "directory"
url = "libs/local"
"""
    assert poetry_requirements(lock, "") == ["lib @ git+https://git.example.com/lib.git@abc123", "./libs/local"]


PIPFILE_LOCK = {
    "_meta": {"sources": [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True},
                          {"name": "private", "url": "https://${USER}:${PASS}@private.example.com/simple"}]},
    "default": {
        "django": {"hashes": ["sha256:x"], "index": "pypi", "markers": "python_version >= '3.10'", "version": "==5.2.19"},
        "requests": {"extras": ["socks"], "version": "==2.34.2"},
        "lib": {"git": "https://git.example.com/lib.git", "ref": "abc123"},
        "local": {"path": "libs/local", "editable": True},
    },
    "develop": {"pytest": {"version": "==8.4.0"}},
}


def test_pipenv_default_section_only_with_markers_and_extras() -> None:
    lines = pipenv_requirements(json.dumps(PIPFILE_LOCK))
    assert lines == [
        "django==5.2.19 ; python_version >= '3.10'",
        "lib @ git+https://git.example.com/lib.git@abc123",
        "./libs/local",
        "requests[socks]==2.34.2",
    ]  # no pytest; the index with credentials is not written into the release


def test_pipenv_lock_that_is_not_one_is_a_clear_error() -> None:
    with pytest.raises(ArtifactError, match="not a Pipfile.lock.*pipenv lock"):
        pipenv_requirements("{}", source="web/Pipfile.lock")


@pytest.mark.parametrize("constraint, marker", [
    ("^3.8", 'python_full_version >= "3.8" and python_full_version < "4"'),
    ("~3.8", 'python_full_version >= "3.8" and python_full_version < "3.9"'),
    (">=3.6,<4.0", 'python_full_version >= "3.6" and python_full_version < "4.0"'),
    ("3.9.*", 'python_full_version == "3.9.*"'),
    ("<3.8 || >=3.10", '(python_full_version < "3.8") or (python_full_version >= "3.10")'),
    ("*", ""),
])
def test_poetry_python_constraints_become_markers(constraint: str, marker: str) -> None:
    assert python_marker(constraint) == marker


class Files:
    """A SourceTree over a dict (the real one reads the release tar)."""

    def __init__(self, files: dict[str, str], root: Path | None = None) -> None:
        self.files, self.root = files, root

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def directory(self) -> Path:
        assert self.root is not None
        return self.root


def test_pinned_text_and_hash_are_stable() -> None:
    spec = DependencySpec("poetry", "web", ("web/pyproject.toml", "web/poetry.lock"))
    tree = Files({"web/pyproject.toml": PYPROJECT, "web/poetry.lock": LOCK_21})
    first, second = pin_requirements(spec, tree, "3.11"), pin_requirements(spec, tree, "3.11")
    assert first == second
    assert first.text.startswith("# Pinned by djaploy from web/pyproject.toml, web/poetry.lock (Poetry)")
    assert dependency_hash(first.hash_input, "3.11") == dependency_hash(second.hash_input, "3.11")
    assert dependency_hash(first.hash_input, "3.11") != dependency_hash(first.hash_input, "3.12")
    changed = Files({"web/pyproject.toml": PYPROJECT, "web/poetry.lock": LOCK_21.replace("0.6.1", "0.6.2")})
    assert pin_requirements(spec, changed, "3.11").hash_input != first.hash_input
    # a dev-only change does not change what the server installs, so the venv is reused
    dev_changed = Files({"web/pyproject.toml": PYPROJECT, "web/poetry.lock": LOCK_21.replace("8.4.0", "8.5.0")})
    assert pin_requirements(spec, dev_changed, "3.11").hash_input == first.hash_input
    assert DependencySpec("poetry", "web", ()).pinned_path == "web/.djaploy-requirements.txt"


def test_requirement_names_skip_options_paths_and_comments() -> None:
    text = ("# header\n--extra-index-url https://x/simple\nDjango==5.2 ; python_version >= '3.10'\n"
            "./libs/a\ngunicorn[gevent]==23\n")
    assert requirement_names(text) == {"django", "gunicorn"}


UV_PYPROJECT = """
[project]
name = "blog"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["six", "tzdata ; sys_platform == 'win32'"]

[dependency-groups]
dev = ["iniconfig"]
lint = ["ruff"]

[tool.uv]
default-groups = ["dev", "lint"]
package = false
"""

UV_LOCK = """
version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "blog"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "six" },
    { name = "tzdata", marker = "sys_platform == 'win32'" },
]

[package.dev-dependencies]
dev = [{ name = "iniconfig" }]
lint = [{ name = "ruff" }]

[package.metadata]
requires-dist = [
    { name = "six" },
    { name = "tzdata", marker = "sys_platform == 'win32'" },
]

[package.metadata.requires-dev]
dev = [{ name = "iniconfig" }]
lint = [{ name = "ruff" }]
""" + "".join(f"""
[[package]]
name = "{name}"
version = "{version}"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.example.com/{name}-{version}.tar.gz", hash = "sha256:{'0' * 64}" }}
""" for name, version in [("iniconfig", "2.1.0"), ("ruff", "0.9.0"), ("six", "1.17.0"), ("tzdata", "2025.2")])

@pytest.fixture
def uv() -> str:
    """The uv binary, found the way djaploy finds it (the `uv` package first, then PATH)."""
    try:
        return find_uv()
    except ArtifactError as error:
        missing_prerequisite(str(error))


def test_uv_lock_is_exported_offline_without_any_default_group(tmp_path: Path, uv: str) -> None:
    (tmp_path / "pyproject.toml").write_text(UV_PYPROJECT)
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    spec = DependencySpec("uv", "", ("pyproject.toml", "uv.lock"))
    pinned = pin_requirements(spec, Files({"pyproject.toml": UV_PYPROJECT, "uv.lock": UV_LOCK}, tmp_path), "3.11")
    lines = [line for line in pinned.text.splitlines() if not line.startswith("#")]
    assert lines == ["six==1.17.0", "tzdata==2025.2 ; sys_platform == 'win32'"]  # dev and lint groups left out


def test_broken_uv_lock_names_the_step(tmp_path: Path, uv: str) -> None:
    (tmp_path / "pyproject.toml").write_text(UV_PYPROJECT)
    (tmp_path / "uv.lock").write_text("version = [\n")
    spec = DependencySpec("uv", "", ("pyproject.toml", "uv.lock"))
    with pytest.raises(ArtifactError, match="uv export .* failed in"):
        pin_requirements(spec, Files({"pyproject.toml": "", "uv.lock": ""}, tmp_path), "3.11")


def _wheel(folder: Path, name: str, version: str) -> None:
    """A minimal real wheel, so uv can resolve from a local folder without any network."""
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", "")
        wheel.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{dist}/RECORD", "")


def test_pep621_project_without_a_lock_is_resolved_once_on_the_deploying_machine(tmp_path: Path, monkeypatch, uv: str) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for version in ("1.0", "1.2"):
        _wheel(wheels, "tinylib", version)
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_FIND_LINKS", str(wheels))
    monkeypatch.setenv("UV_NO_CACHE", "1")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "site"\nversion = "0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinylib<1.5", "tinylib ; sys_platform == \'win32\'"]\n'
        '[dependency-groups]\ndev = ["pytest"]\n'
    )
    lines = uv_compile(tmp_path, "3.11")
    assert lines == ["tinylib==1.2"]


@pytest.mark.parametrize("with_uv", [True, False])
def test_pinned_list_installs_with_uv_or_falls_back_to_pip(tmp_path: Path, with_uv: bool, uv: str) -> None:
    """The server's install step, run for real: relative paths resolve beside the pinned list."""

    release = tmp_path / "release" / "web"
    release.mkdir(parents=True)
    _wheel(release, "tinylib", "1.2")
    (release / ".djaploy-requirements.txt").write_text("./tinylib-1.2-py3-none-any.whl\n")
    venv = tmp_path / "venv"
    command = shell.ensure_venv(str(venv), sys.executable, str(release / ".djaploy-requirements.txt"), ".done",
                                uv=uv if with_uv else str(tmp_path / "no-uv-here"), cwd=str(release))
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "UV_NO_CACHE": "1"})
    assert result.returncode == 0, result.stderr
    assert ("installed with uv" if with_uv else "installed with pip") in result.stdout
    assert (venv / ".done").exists()
    assert (venv / "bin" / "pip").exists() is not with_uv  # uv installs into a venv made without pip
    subprocess.run([str(venv / "bin" / "python"), "-c", "import tinylib"], check=True)
    again = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert "venv reused" in again.stdout
