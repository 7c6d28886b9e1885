"""Semantic versions from git: decide the next one before a deploy, tag it once the release serves.

The version comes from the latest `<prefix>X.Y.Z` tag reachable from the commit actually
deployed, bumped by the configured increment (or --bump-*); a repository without one starts
at 0.1.0. A commit that already carries a version tag reuses it, and its changelog from the
tag's annotation, so every environment announces the same text. `decide_version` runs before
any host is touched (its problems stop the deploy there); `create_tag` and `push_tag` run only
after every host serves the release. A failed push leaves the tag local and says how to retry.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from djaploy.changelog import Commit, write_changelog
from djaploy.errors import ArtifactError, DjaployError
from djaploy.release_settings import VersioningSettings

FIRST_VERSION = (0, 1, 0)
FIELD, RECORD = "\x1f", "\x1e"


class TagError(DjaployError):
    """The release serves, but its tag could not be created or pushed."""


@dataclass(frozen=True)
class Version:
    """What a deploy announces and records; `tag_needed` when this deploy should create the tag."""

    name: str
    commit: str
    changelog: str
    previous: str | None = None
    existing: bool = False  # the commit already carries this version's tag
    local: bool = False  # --local: the working tree, never tagged
    warnings: tuple[str, ...] = ()

    def tag_needed(self, settings: VersioningSettings, env: str) -> bool:
        return settings.tags(env) and not self.existing and not self.local


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def _checked(root: Path, *args: str) -> str:
    result = _git(root, *args)
    if result.returncode != 0:
        raise ArtifactError(f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}")
    return result.stdout


def parse_version(tag: str, prefix: str) -> tuple[int, int, int] | None:
    match = re.fullmatch(re.escape(prefix) + r"(\d+)\.(\d+)\.(\d+)", tag)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def bump(version: tuple[int, int, int] | None, increment: str) -> tuple[int, int, int]:
    """The next version after `version`; the very first one is always 0.1.0."""
    if version is None:
        return FIRST_VERSION
    major, minor, patch = version
    if increment == "major":
        return (major + 1, 0, 0)
    if increment == "minor":
        return (major, minor + 1, 0)
    return (major, minor, patch + 1)


def _versions(tags: str, prefix: str) -> list[tuple[tuple[int, int, int], str]]:
    found = [(parse_version(tag, prefix), tag) for tag in tags.split()]
    return sorted((number, tag) for number, tag in found if number is not None)


def commits_between(root: Path, previous: str | None, commit: str) -> list[Commit]:
    """Newest first: what `commit` adds to `previous` (everything, without one)."""
    span = f"{previous}..{commit}" if previous else commit
    text = _checked(root, "log", f"--format=%H{FIELD}%s{FIELD}%an{FIELD}%P{RECORD}", span)
    commits = []
    for record in text.split(RECORD):
        parts = record.strip("\n").split(FIELD)
        if len(parts) == 4:
            commits.append(Commit(sha=parts[0], subject=parts[1], author=parts[2], merge=len(parts[3].split()) > 1))
    return commits


def tag_annotation(root: Path, tag: str) -> str | None:
    """The changelog an annotated version tag holds; None for a lightweight tag."""
    kind = _checked(root, "for-each-ref", f"refs/tags/{tag}", "--format=%(objecttype)").strip()
    if kind != "tag":
        return None
    text = _checked(root, "for-each-ref", f"refs/tags/{tag}", "--format=%(contents)").strip("\n")
    subject, _, body = text.partition("\n\n")
    return (body if subject.strip() == tag else text).strip()


def _previous_of(root: Path, tag: str, prefix: str) -> str | None:
    """The latest version tag reachable from `tag`'s commit, other than `tag` itself."""
    number = parse_version(tag, prefix)
    earlier = [t for n, t in _versions(_checked(root, "tag", "--merged", f"{tag}^{{commit}}"), prefix) if n != number]
    return earlier[-1] if earlier else None


def decide_version(root: Path, commit: str, settings: VersioningSettings, *, project: str,
                   increment: str | None = None, release_tag: str | None = None, local: bool = False) -> Version:
    """The version `commit` deploys as, and its changelog (before any host is touched)."""
    prefix = settings.tag_prefix
    own = [tag for _, tag in _versions(_checked(root, "tag", "--points-at", commit), prefix)]
    if release_tag and parse_version(release_tag, prefix):
        own = [release_tag]
    if own and not local:
        return existing_version(root, own[-1], commit, settings, project=project)
    reachable = _versions(_checked(root, "tag", "--merged", commit), prefix)
    previous = reachable[-1] if reachable else None
    major, minor, patch = bump(previous[0] if previous else None, increment or settings.increment)
    name = f"{prefix}{major}.{minor}.{patch}"
    if not local and _git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{name}").returncode == 0:
        raise ArtifactError(f"the next version {name} is already a tag, on a commit the deployed one does not "
                            f"contain; deploy that tag (--release {name}) or bump further (--bump-minor/--bump-major)")
    changelog = write_changelog(settings.changelog, commits_between(root, previous[1] if previous else None, commit),
                                version=name, project=project, root=str(root))
    return Version(name + ("+local" if local else ""), commit, changelog.text, previous[1] if previous else None,
                   local=local, warnings=changelog.warnings)


def existing_version(root: Path, tag: str, commit: str, settings: VersioningSettings, *, project: str) -> Version:
    """A version that is already a tag: its changelog is the annotation, or made again from git."""
    previous = _previous_of(root, tag, settings.tag_prefix)
    text = tag_annotation(root, tag)
    warnings: tuple[str, ...] = ()
    if text is None:
        changelog = write_changelog(settings.changelog, commits_between(root, previous, commit),
                                    version=tag, project=project, root=str(root))
        text, warnings = changelog.text, changelog.warnings
    return Version(tag, commit, text, previous, existing=True, warnings=warnings)


def with_recorded(root: Path, name: str, commit: str, settings: VersioningSettings, *, project: str) -> Version:
    """The version a host recorded for a release (activate, rollback): reused if tagged, else rebuilt."""
    if _git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{name}").returncode == 0:
        return existing_version(root, name, commit, settings, project=project)
    reachable = _versions(_checked(root, "tag", "--merged", commit), settings.tag_prefix)
    previous = reachable[-1][1] if reachable else None
    changelog = write_changelog(settings.changelog, commits_between(root, previous, commit),
                                version=name, project=project, root=str(root))
    return Version(name, commit, changelog.text, previous, local=name.endswith("+local"), warnings=changelog.warnings)


def create_tag(root: Path, version: Version) -> None:
    """An annotated tag on the deployed commit; its message is the changelog, reused by later deploys."""
    message = f"{version.name}\n\n{version.changelog}\n"
    result = _git(root, "tag", "-a", "--cleanup=verbatim", "-m", message, version.name, version.commit)
    if result.returncode != 0:
        raise TagError(f"the release serves, but creating tag {version.name} failed: {result.stderr.strip()}\n"
                       f"create it by hand: git -C {shlex.quote(str(root))} tag -a {version.name} {version.commit}")


def push_tag(root: Path, tag: str, remote: str) -> None:
    """Push one tag; on failure the tag stays local and the error gives the exact command to retry."""
    result = _git(root, "push", remote, f"refs/tags/{tag}")
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise TagError(
            f"the release serves, and tag {tag} was created locally, but pushing it to {remote} failed:\n{tail}\n"
            f"retry: git -C {shlex.quote(str(root))} push {shlex.quote(remote)} refs/tags/{tag}")
