import subprocess
from pathlib import Path

import pytest

from djaploy.artifact import RefSpec, build_release, release_name, tarball_listing
from djaploy.errors import ArtifactError
from djaploy.project import Project, inspect_project


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Project:
    root = tmp_path / "repo"
    (root / "site" / "mysite").mkdir(parents=True)
    (root / "site" / "manage.py").write_text("# manage\n")
    (root / "site" / "mysite" / "wsgi.py").write_text("application = None\n")
    (root / "site" / "requirements.txt").write_text("Django==5.2\n")
    (root / "site" / "infra").mkdir()
    (root / ".gitignore").write_text("secret.txt\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.email=a@b", "-c", "user.name=a", "add", "-A")
    _git(root, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "one")
    _git(root, "tag", "v1")
    return inspect_project(root / "site" / "infra")


def test_inspect_nested_project(repo: Project) -> None:
    assert repo.manage_py == "site/manage.py"
    assert repo.project_dir == "site"
    assert repo.requirements == "site/requirements.txt"
    assert repo.wsgi_application == "mysite.wsgi:application"


def test_release_of_tag_contains_committed_files_only(repo: Project, tmp_path: Path) -> None:
    (repo.git_root / "site" / "new.txt").write_text("uncommitted")
    release = build_release(repo, RefSpec("release", "v1"), tmp_path, "3.11")
    assert release.name == "v1"
    names = tarball_listing(release.tarball)
    assert "site/manage.py" in names and "site/new.txt" not in names
    assert release.requirements_text == "Django==5.2\n"


def test_local_release_has_untracked_files_but_not_ignored_ones(repo: Project, tmp_path: Path) -> None:
    (repo.git_root / "site" / "new.txt").write_text("uncommitted")
    (repo.git_root / "secret.txt").write_text("ignored")
    (repo.git_root / "site" / "requirements.txt").write_text("Django==5.2\ngunicorn\n")
    release = build_release(repo, RefSpec("local"), tmp_path, "3.11")
    names = tarball_listing(release.tarball)
    assert "site/new.txt" in names and "secret.txt" not in names
    assert release.name.endswith("-local")
    assert "gunicorn" in release.requirements_text


def test_dependency_hash_changes_with_requirements_and_python(repo: Project, tmp_path: Path) -> None:
    a = build_release(repo, RefSpec("latest"), tmp_path, "3.11")
    b = build_release(repo, RefSpec("latest"), tmp_path, "3.12")
    (repo.git_root / "site" / "requirements.txt").write_text("Django==5.1\n")
    c = build_release(repo, RefSpec("local"), tmp_path, "3.11")
    assert len({a.dependency_hash, b.dependency_hash, c.dependency_hash}) == 3


def test_missing_tag_lists_existing_tags(repo: Project, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"tag 'v9' does not exist.*tags there: v1"):
        build_release(repo, RefSpec("release", "v9"), tmp_path, "3.11")


def test_release_names_sort_by_time() -> None:
    spec = RefSpec("latest")
    assert release_name(spec, "0123456789abcdef", now=0) == "19700101-000000-01234567"
    assert release_name(RefSpec("local"), "0123456789abcdef", now=0).endswith("-local")
