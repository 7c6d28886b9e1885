"""Build a release tarball from git: a tag, HEAD, or the working tree.

The tarball holds the whole git tree at that ref (a nested project ships its repository), so
the server sees exactly what git has. It is built in a temporary folder and deleted after the
deploy: nothing piles up in the repository.
"""

from __future__ import annotations

import gzip
import io
import re
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

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
    requirements_text: str
    dependency_hash: str


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


def _write_local_tarball(git_root: Path, destination: Path) -> None:
    with tarfile.open(destination, "w:gz") as tar:
        for name in _local_files(git_root):
            tar.add(git_root / name, arcname=name, recursive=False)


def _write_git_tarball(git_root: Path, commit: str, destination: Path) -> None:
    result = _git(git_root, "archive", "--format=tar", commit, binary=True)
    if result.returncode != 0:
        raise ArtifactError(f"git archive {commit} failed: {result.stderr.decode(errors='replace').strip()}")
    with gzip.open(destination, "wb", compresslevel=6) as out:
        out.write(result.stdout)


def _read_requirements(project: Project, spec: RefSpec, commit: str) -> str:
    if spec.mode == "local":
        return (project.git_root / project.requirements).read_text()
    result = _git(project.git_root, "show", f"{commit}:{project.requirements}")
    if result.returncode != 0:
        raise ArtifactError(
            f"{project.requirements} is not in commit {commit[:8]} ({spec.describe()}); commit it first"
        )
    return result.stdout


def build_release(project: Project, spec: RefSpec, workdir: Path, python_version: str) -> Release:
    """Build the tarball for `spec` into `workdir` (a temporary folder the caller removes)."""
    commit = resolve_commit(project.git_root, spec)
    name = release_name(spec, commit)
    tarball = workdir / f"{name}.tar.gz"
    if spec.mode == "local":
        _write_local_tarball(project.git_root, tarball)
    else:
        _write_git_tarball(project.git_root, commit, tarball)
    _check_manage_py_inside(tarball, project.manage_py, spec)
    requirements = _read_requirements(project, spec, commit)
    return Release(
        name=name,
        ref=spec.describe(),
        commit=commit,
        tarball=tarball,
        requirements_text=requirements,
        dependency_hash=dependency_hash(requirements, python_version),
    )


def _check_manage_py_inside(tarball: Path, manage_py: str, spec: RefSpec) -> None:
    with tarfile.open(tarball, "r:gz") as tar:
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
