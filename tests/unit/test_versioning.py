"""Versions from a real git repository, tags created and pushed to a real bare `origin` (and to one
whose pre-receive hook refuses every push)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from djaploy.errors import ArtifactError
from djaploy.release_settings import VersioningSettings, versioning_for
from djaploy.versioning import (
    TagError,
    bump,
    commits_between,
    create_tag,
    decide_version,
    parse_version,
    push_tag,
    tag_annotation,
    with_recorded,
)
from tests.unit.conftest import git

SETTINGS = versioning_for({}, "production")


def change(root: Path, subject: str) -> str:
    name = "".join(c if c.isalnum() else "_" for c in subject)
    (root / f"{name}.txt").write_text(subject + "\n")  # a file per change: merges never conflict
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", subject)
    return git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.invalid")
    git(root, "config", "user.name", "dev")
    return root


def with_origin(repo: Path, tmp_path: Path, refuse: bool = False) -> Path:
    bare = tmp_path / ("refusing.git" if refuse else "origin.git")
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    if refuse:
        hook = bare / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'pushes are frozen today' >&2\nexit 1\n")
        hook.chmod(0o755)
    git(repo, "remote", "add", "origin", str(bare))
    return bare


def test_semantic_versions_are_parsed_with_their_prefix_only() -> None:
    assert parse_version("v1.4.2", "v") == (1, 4, 2)
    assert parse_version("1.4.2", "v") is None and parse_version("v1.4", "v") is None
    assert parse_version("release-2.0.10", "release-") == (2, 0, 10)


def test_bumps_and_the_first_version() -> None:
    assert bump(None, "major") == (0, 1, 0)
    assert bump((1, 4, 2), "patch") == (1, 4, 3)
    assert bump((1, 4, 2), "minor") == (1, 5, 0)
    assert bump((1, 4, 2), "major") == (2, 0, 0)


def test_first_version_then_the_next_with_the_commits_between(repo: Path) -> None:
    change(repo, "start the ledger")
    first = change(repo, "add entries")
    version = decide_version(repo, first, SETTINGS, project="ledger")
    assert (version.name, version.previous, version.existing) == ("v0.1.0", None, False)
    assert version.changelog == "- add entries\n- start the ledger"
    create_tag(repo, version)
    assert tag_annotation(repo, "v0.1.0") == version.changelog

    change(repo, "fix totals")
    second = change(repo, "fixup! fix totals")
    version = decide_version(repo, second, SETTINGS, project="ledger")
    assert (version.name, version.previous) == ("v0.1.1", "v0.1.0")
    assert version.changelog == "- fix totals"  # the fixup is folded into what it fixes
    assert decide_version(repo, second, SETTINGS, project="ledger", increment="minor").name == "v0.2.0"
    assert decide_version(repo, second, SETTINGS, project="ledger", increment="major").name == "v1.0.0"


def test_the_version_comes_from_the_deployed_commit_not_head(repo: Path) -> None:
    old = change(repo, "one")
    create_tag(repo, decide_version(repo, old, SETTINGS, project="p"))
    middle = change(repo, "two")
    create_tag(repo, decide_version(repo, middle, SETTINGS, project="p"))  # v0.1.1 on HEAD~1
    change(repo, "three")
    git(repo, "checkout", "-q", "-b", "hotfix", old)
    fix = change(repo, "hotfix")
    # HEAD of main is tagged v0.1.1, but the hotfix branch only reaches v0.1.0; its next is taken.
    with pytest.raises(ArtifactError, match="v0.1.1 is already a tag"):
        decide_version(repo, fix, SETTINGS, project="p")
    assert decide_version(repo, fix, SETTINGS, project="p", increment="minor").name == "v0.2.0"


def test_a_tagged_commit_reuses_its_version_and_changelog(repo: Path) -> None:
    commit = change(repo, "first feature")
    create_tag(repo, decide_version(repo, commit, SETTINGS, project="p"))
    git(repo, "tag", "-f", "-a", "--cleanup=verbatim", "-m", "v0.1.0\n\n# Notes\n- hand-written", "v0.1.0", commit)
    again = decide_version(repo, commit, SETTINGS, project="p")
    assert (again.name, again.existing, again.changelog) == ("v0.1.0", True, "# Notes\n- hand-written")
    assert not again.tag_needed(SETTINGS, "production")
    by_release = decide_version(repo, commit, SETTINGS, project="p", release_tag="v0.1.0")
    assert by_release.name == "v0.1.0" and by_release.existing


def test_local_deploys_are_never_tagged(repo: Path) -> None:
    commit = change(repo, "x")
    version = decide_version(repo, commit, SETTINGS, project="p", local=True)
    assert version.name == "v0.1.0+local" and not version.tag_needed(SETTINGS, "production")


def test_only_tag_environments_tag() -> None:
    settings = versioning_for({"tag_environments": ["production"]}, "staging")
    assert settings and not settings.tags("staging") and settings.tags("production")


def test_merges_are_left_out_of_the_commits(repo: Path) -> None:
    change(repo, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    change(repo, "feature work")
    git(repo, "checkout", "-q", "main")
    change(repo, "main work")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'feature'", "feature")
    commits = commits_between(repo, None, "HEAD")
    assert [c.merge for c in commits if c.subject.startswith("Merge")] == [True]
    version = decide_version(repo, git(repo, "rev-parse", "HEAD").strip(), SETTINGS, project="p")
    assert "Merge" not in version.changelog and "feature work" in version.changelog


def test_a_recorded_version_gets_its_tag_and_changelog_later(repo: Path) -> None:
    commit = change(repo, "staged change")
    later = with_recorded(repo, "v0.1.0", commit, SETTINGS, project="p")
    assert later.changelog == "- staged change" and later.tag_needed(SETTINGS, "production")


def test_the_tag_is_pushed_to_origin(repo: Path, tmp_path: Path) -> None:
    bare = with_origin(repo, tmp_path)
    version = decide_version(repo, change(repo, "ship it"), SETTINGS, project="p")
    create_tag(repo, version)
    push_tag(repo, version.name, "origin")
    pushed = subprocess.run(["git", "-C", str(bare), "for-each-ref", "refs/tags", "--format=%(refname:short) %(objecttype)"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert pushed == ["v0.1.0", "tag"]


def test_a_refused_push_keeps_the_tag_local_and_says_how_to_retry(repo: Path, tmp_path: Path) -> None:
    with_origin(repo, tmp_path, refuse=True)
    version = decide_version(repo, change(repo, "ship it"), SETTINGS, project="p")
    create_tag(repo, version)
    with pytest.raises(TagError) as caught:
        push_tag(repo, version.name, "origin")
    message = str(caught.value)
    assert "pushes are frozen today" in message and "the release serves" in message
    assert f"retry: git -C {repo} push origin refs/tags/v0.1.0" in message
    assert git(repo, "tag", "--list").split() == ["v0.1.0"]


def test_creating_a_tag_that_exists_is_a_tag_error(repo: Path) -> None:
    commit = change(repo, "x")
    version = decide_version(repo, commit, SETTINGS, project="p")
    create_tag(repo, version)
    with pytest.raises(TagError, match="creating tag v0.1.0 failed"):
        create_tag(repo, version)


def test_a_custom_prefix(repo: Path) -> None:
    settings = VersioningSettings(tag_prefix="release-")
    commit = change(repo, "x")
    git(repo, "tag", "v9.9.9")  # another scheme's tag is not a version here
    assert decide_version(repo, commit, settings, project="p").name == "release-0.1.0"
