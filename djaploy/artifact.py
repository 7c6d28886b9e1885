"""Build a release tarball from git: a tag, HEAD, or the working tree.

The tarball holds the whole git tree at that ref (a nested project ships its repository), so
the server sees exactly what git has, plus the pinned requirements list made from the
project's lock file at that same ref (``.djaploy-requirements.txt`` beside the lock file), and
any files infra/prepare.py built. It is built in a temporary folder and deleted after the
deploy: nothing piles up in the repository.
"""

from __future__ import annotations

import gzip
import io
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from djaploy.dependencies import PINNED_NAME, pin_requirements
from djaploy.errors import ArtifactError
from djaploy.project import Project, dependency_hash

RELEASE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


@dataclass(frozen=True)
class RefSpec:
    """What to ship: exactly one of latest / release tag / local working tree."""

    mode: str  # "latest" | "release" | "local"
    tag: str | None = None

    def describe(self) -> str:
        return {"latest": "HEAD", "release": f"tag {self.tag}", "local": "working tree"}[self.mode]


@dataclass(frozen=True)
class Release:
    """A built release, ready to upload."""

    name: str
    ref: str
    commit: str
    tarball: Path
    requirements_text: str  # the pinned list the hosts install
    dependency_hash: str  # venv key: the pinned list (and its includes) + the Python version
    requirements_path: str = PINNED_NAME  # where the pinned list is inside the release
    dependency_manager: str = "pip"
    version: str | None = None  # the semantic version it deploys as (djaploy.versioning), when versioned
    version_file: str | None = None  # the file in the release folder that says so (VERSION)


def _git(git_root: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(git_root), *args], capture_output=True, text=not binary)


def resolve_commit(git_root: Path, spec: RefSpec) -> str:
    """The commit a spec points at; a missing tag is a clear error listing the tags there are."""
    if spec.mode == "release":
        if not spec.tag or not RELEASE_NAME_RE.match(spec.tag):
            raise ArtifactError(f"--release {spec.tag!r} is not a valid tag name")
        result = _git(git_root, "rev-parse", "--verify", "--quiet", f"refs/tags/{spec.tag}^{{commit}}")
        if result.returncode != 0:
            tags = _git(git_root, "tag", "--list", "--sort=-creatordate").stdout.split()
            listing = ", ".join(tags[:10]) if tags else "none (create one with `git tag v1.0`)"
            raise ArtifactError(f"tag {spec.tag!r} does not exist in {git_root}; tags there: {listing}")
        return result.stdout.strip()
    result = _git(git_root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if result.returncode != 0:
        raise ArtifactError(f"{git_root} has no commits yet; commit your project first")
    return result.stdout.strip()


def release_name(spec: RefSpec, commit: str, now: float | None = None) -> str:
    """Tags name their release; other releases are named by time and commit, sortable."""
    if spec.mode == "release" and spec.tag:
        return spec.tag
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    suffix = "-local" if spec.mode == "local" else ""
    return f"{stamp}-{commit[:8]}{suffix}"


def _local_files(git_root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files that exist in the working tree."""
    result = _git(git_root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if result.returncode != 0:
        raise ArtifactError(f"git ls-files failed in {git_root}: {result.stderr.strip()}")
    names = sorted({name for name in result.stdout.split("\0") if name})
    return [name for name in names if (git_root / name).is_file() or (git_root / name).is_symlink()]


def _write_local_tar(git_root: Path, destination: Path) -> None:
    with tarfile.open(destination, "w") as tar:
        for name in _local_files(git_root):
            tar.add(git_root / name, arcname=name, recursive=False)


def _write_git_tar(git_root: Path, commit: str, destination: Path) -> None:
    result = _git(git_root, "archive", "--format=tar", "-o", str(destination), commit)
    if result.returncode != 0:
        raise ArtifactError(f"git archive {commit} failed: {result.stderr.strip()}")


def _add_paths(tar_path: Path, git_root: Path, paths: Sequence[str]) -> None:
    """Add files built before the release (infra/prepare.py's outputs), even git-ignored ones."""
    with tarfile.open(tar_path, "a") as tar:
        for name in paths:
            source = git_root / name
            if not source.exists():
                raise ArtifactError(f"{name} (returned by prepare()) does not exist in {git_root}")
            tar.add(source, arcname=Path(name).as_posix())


def _add_text(tar_path: Path, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    with tarfile.open(tar_path, "a") as tar:
        tar.addfile(info, io.BytesIO(data))


def _gzip(tar_path: Path) -> Path:
    tarball = tar_path.with_name(tar_path.name + ".gz")
    with tar_path.open("rb") as source, gzip.open(tarball, "wb", compresslevel=6) as out:
        shutil.copyfileobj(source, out, 1 << 20)
    tar_path.unlink()
    return tarball


class ReleaseTree:
    """The release's files as the dependency tools see them: read from the tar being built;
    on disk, the working tree for --local, else the tar extracted once into a scratch folder."""

    def __init__(self, tar_path: Path, scratch: Path, work_tree: Path | None = None) -> None:
        self._tar_path, self._scratch, self._work_tree = tar_path, scratch, work_tree

    def read(self, path: str) -> str | None:
        with tarfile.open(self._tar_path) as tar:
            try:
                member = tar.getmember(path)
            except KeyError:
                return None
            handle = tar.extractfile(member)
            return handle.read().decode(errors="replace") if handle else None

    def directory(self) -> Path:
        if self._work_tree is not None:
            return self._work_tree
        if not self._scratch.exists():
            with tarfile.open(self._tar_path) as tar:
                tar.extractall(self._scratch, filter="data")
        return self._scratch


def build_release(project: Project, spec: RefSpec, workdir: Path, python_version: str,
                  extra_paths: Sequence[str] = ()) -> Release:
    """Build the tarball for `spec` into `workdir` (a temporary folder the caller removes).

    `extra_paths` (relative to the git root) are added as they are on disk: what prepare() built.
    """
    if project.dependencies is None:
        raise ArtifactError("the project's dependencies were not inspected (inspect_project(with_dependencies=True))")
    commit = resolve_commit(project.git_root, spec)
    name = release_name(spec, commit)
    tar_path = workdir / f"{name}.tar"
    if spec.mode == "local":
        _write_local_tar(project.git_root, tar_path)
    else:
        _write_git_tar(project.git_root, commit, tar_path)
    if extra_paths:
        _add_paths(tar_path, project.git_root, extra_paths)
    _check_manage_py_inside(tar_path, project.manage_py, spec)
    tree = ReleaseTree(tar_path, workdir / f"{name}-tree", project.git_root if spec.mode == "local" else None)
    try:
        pinned = pin_requirements(project.dependencies, tree, python_version)
    except ArtifactError as error:
        raise ArtifactError(f"{spec.describe()}: {error}") from None
    _add_text(tar_path, project.dependencies.pinned_path, pinned.text)
    shutil.rmtree(workdir / f"{name}-tree", ignore_errors=True)
    return Release(
        name=name,
        ref=spec.describe(),
        commit=commit,
        tarball=_gzip(tar_path),
        requirements_text=pinned.text,
        dependency_hash=dependency_hash(pinned.hash_input, python_version),
        requirements_path=project.dependencies.pinned_path,
        dependency_manager=project.dependencies.manager,
    )


def _check_manage_py_inside(tar_path: Path, manage_py: str, spec: RefSpec) -> None:
    with tarfile.open(tar_path) as tar:
        try:
            tar.getmember(manage_py)
        except KeyError:
            raise ArtifactError(
                f"{manage_py} is not part of the release built from {spec.describe()}; "
                "is it committed (or, for --local, not ignored by .gitignore)?"
            ) from None


def tarball_listing(tarball: Path) -> list[str]:
    """Names inside a release tarball (used by tests and the dry-run summary)."""
    with tarfile.open(fileobj=io.BytesIO(tarball.read_bytes()), mode="r:gz") as tar:
        return tar.getnames()
