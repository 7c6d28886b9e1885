import gzip
import io
import tarfile
from pathlib import Path

import pytest

from djaploy.artifact import RefSpec, build_release, release_name, tarball_listing
from djaploy.errors import ArtifactError
from djaploy.project import Project, inspect_project
from tests.unit.conftest import commit, make_repo

POETRY_PYPROJECT = """
[tool.poetry]
name = "shop"
version = "0.1.0"
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
django = "*"
"""

POETRY_LOCK = """
[[package]]
name = "django"
version = "5.2.1"
groups = ["main"]

[[package]]
name = "pytest"
version = "8.0.0"
groups = ["dev"]

[metadata]
lock-version = "2.1"
"""


@pytest.fixture
def repo(tmp_path: Path) -> Project:
    root = make_repo(tmp_path / "repo", {"site/manage.py": "# manage\n", "site/mysite/wsgi.py": "application = None\n",
                                         "site/requirements.txt": "Django==5.2\n", ".gitignore": "secret.txt\ndist/\n"})
    (root / "site" / "infra").mkdir()
    commit(root, tag="v1")
    return inspect_project(root / "site" / "infra")


def shop_repo(tmp_path: Path, committed: dict[str, str]) -> Path:
    """A non-nested Poetry project at tmp/shop: its Django files and `committed`, tagged v1."""
    root = make_repo(tmp_path / "shop", {"manage.py": 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")\n',
                                         "shop/wsgi.py": "", "pyproject.toml": POETRY_PYPROJECT, **committed})
    (root / "infra").mkdir()
    commit(root, tag="v1")
    return root


def _member(tarball: Path, name: str) -> str:
    with tarfile.open(tarball, "r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read().decode()


def test_inspect_nested_project(repo: Project) -> None:
    assert repo.manage_py == "site/manage.py"
    assert repo.project_dir == "site"
    assert repo.dependencies is not None
    assert (repo.dependencies.manager, repo.dependencies.files) == ("pip", ("site/requirements.txt",))
    assert repo.wsgi_application == "mysite.wsgi:application"


def test_release_of_tag_contains_committed_files_only(repo: Project, tmp_path: Path) -> None:
    (repo.git_root / "site" / "new.txt").write_text("uncommitted")
    release = build_release(repo, RefSpec("release", "v1"), tmp_path, "3.11")
    assert release.name == "v1"
    names = tarball_listing(release.tarball)
    assert "site/manage.py" in names and "site/new.txt" not in names
    assert release.requirements_text == "Django==5.2\n"


def test_pinned_list_is_shipped_beside_the_dependency_files(repo: Project, tmp_path: Path) -> None:
    release = build_release(repo, RefSpec("latest"), tmp_path, "3.11")
    assert release.requirements_path == "site/.djaploy-requirements.txt"
    assert _member(release.tarball, "site/.djaploy-requirements.txt") == "Django==5.2\n"
    assert release.tarball.name.endswith(".tar.gz") and not list(tmp_path.glob("*.tar"))
    with gzip.open(release.tarball) as raw:  # a valid gzip of a valid tar
        assert tarfile.open(fileobj=io.BytesIO(raw.read())).getmember("site/manage.py")


def test_local_release_has_untracked_files_but_not_ignored_ones(repo: Project, tmp_path: Path) -> None:
    (repo.git_root / "site" / "new.txt").write_text("uncommitted")
    (repo.git_root / "secret.txt").write_text("ignored")
    (repo.git_root / "site" / "requirements.txt").write_text("Django==5.2\ngunicorn\n")
    release = build_release(repo, RefSpec("local"), tmp_path, "3.11")
    names = tarball_listing(release.tarball)
    assert "site/new.txt" in names and "secret.txt" not in names
    assert release.name.endswith("-local")
    assert "gunicorn" in release.requirements_text
    assert "gunicorn" in _member(release.tarball, "site/.djaploy-requirements.txt")


def test_prepared_paths_are_shipped_even_when_ignored(repo: Project, tmp_path: Path) -> None:
    (repo.git_root / "dist").mkdir()
    (repo.git_root / "dist" / "app.js").write_text("built")
    release = build_release(repo, RefSpec("release", "v1"), tmp_path, "3.11", extra_paths=["dist"])
    assert _member(release.tarball, "dist/app.js") == "built"
    with pytest.raises(ArtifactError, match="missing.*does not exist"):
        build_release(repo, RefSpec("release", "v1"), tmp_path, "3.11", extra_paths=["missing"])


def test_dependency_hash_changes_with_requirements_and_python(repo: Project, tmp_path: Path) -> None:
    a = build_release(repo, RefSpec("latest"), tmp_path, "3.11")
    again = build_release(repo, RefSpec("local"), tmp_path, "3.11")
    b = build_release(repo, RefSpec("latest"), tmp_path, "3.12")
    (repo.git_root / "site" / "requirements.txt").write_text("Django==5.1\n")
    c = build_release(repo, RefSpec("local"), tmp_path, "3.11")
    assert a.dependency_hash == again.dependency_hash  # same pinned list, same Python: the venv is reused
    assert len({a.dependency_hash, b.dependency_hash, c.dependency_hash}) == 3


def test_included_requirements_files_change_the_hash(repo: Project, tmp_path: Path) -> None:
    site = repo.git_root / "site"
    (site / "requirements.txt").write_text("-r base.txt\ngunicorn==23.0\n")
    (site / "base.txt").write_text("Django==5.2\n")
    a = build_release(repo, RefSpec("local"), tmp_path, "3.11")
    (site / "base.txt").write_text("Django==5.1\n")
    b = build_release(repo, RefSpec("local"), tmp_path, "3.11")
    assert a.requirements_text == b.requirements_text  # shipped as is: -r resolves beside it on the server
    assert a.dependency_hash != b.dependency_hash
    (site / "base.txt").unlink()
    with pytest.raises(ArtifactError, match="includes base.txt, which is not part of this release"):
        build_release(repo, RefSpec("local"), tmp_path, "3.11")


def test_lock_is_read_at_the_shipped_ref_not_the_working_tree(tmp_path: Path) -> None:
    root = shop_repo(tmp_path, {"poetry.lock": POETRY_LOCK})
    (root / "poetry.lock").write_text(POETRY_LOCK.replace("5.2.1", "5.2.9"))
    project = inspect_project(root / "infra")
    tagged = build_release(project, RefSpec("release", "v1"), tmp_path, "3.11")
    local = build_release(project, RefSpec("local"), tmp_path, "3.11")
    assert "django==5.2.1" in tagged.requirements_text and "pytest" not in tagged.requirements_text
    assert "django==5.2.9" in local.requirements_text
    assert tagged.dependency_manager == "poetry" and tagged.requirements_path == ".djaploy-requirements.txt"
    assert _member(tagged.tarball, ".djaploy-requirements.txt") == tagged.requirements_text
    assert tagged.dependency_hash != local.dependency_hash


def test_lock_missing_at_the_ref_names_the_file(tmp_path: Path) -> None:
    root = shop_repo(tmp_path, {})
    (root / "poetry.lock").write_text(POETRY_LOCK)
    project = inspect_project(root / "infra")
    with pytest.raises(ArtifactError, match=r"tag v1: poetry.lock is not part of this release; commit it"):
        build_release(project, RefSpec("release", "v1"), tmp_path, "3.11")


def test_missing_tag_lists_existing_tags(repo: Project, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"tag 'v9' does not exist.*tags there: v1"):
        build_release(repo, RefSpec("release", "v9"), tmp_path, "3.11")


def test_release_names_sort_by_time() -> None:
    spec = RefSpec("latest")
    assert release_name(spec, "0123456789abcdef", now=0) == "19700101-000000-01234567"
    assert release_name(RefSpec("local"), "0123456789abcdef", now=0).endswith("-local")


def _prepare(repo: Project, body: str) -> Path:
    infra = repo.git_root / "site" / "infra"
    (infra / "prepare.py").write_text(body)
    return infra


def test_prepare_runs_in_the_git_root_and_its_outputs_are_shipped(repo: Project, tmp_path: Path) -> None:
    from djaploy.prepare import run_prepare

    infra = _prepare(repo, "from pathlib import Path\n\ndef prepare():\n"
                           "    Path('dist').mkdir(exist_ok=True)\n    Path('dist/app.js').write_text('built')\n"
                           "    return ['dist']\n")
    out = io.StringIO()
    paths = run_prepare(infra, out)
    assert paths == ["dist"] and (repo.git_root / "dist" / "app.js").read_text() == "built"
    assert "prepare: running prepare()" in out.getvalue()
    release = build_release(repo, RefSpec("latest"), tmp_path, "3.11", extra_paths=paths)
    assert _member(release.tarball, "dist/app.js") == "built"  # ignored by git, shipped all the same


def test_failing_prepare_stops_with_a_short_message(repo: Project) -> None:
    from djaploy.prepare import PrepareFailed, run_prepare

    infra = _prepare(repo, "import subprocess\n\ndef prepare():\n    subprocess.run(['false'], check=True)\n")
    out = io.StringIO()
    with pytest.raises(PrepareFailed, match=r"infra/prepare.py: prepare\(\) failed, nothing was deployed: "
                                            r"CalledProcessError: Command '\['false'\]'.*-v 2") as error:
        run_prepare(infra, out)
    assert "Traceback" not in str(error.value) + out.getvalue()
    verbose = io.StringIO()
    with pytest.raises(PrepareFailed):
        run_prepare(infra, verbose, verbosity=2)
    assert "Traceback" in verbose.getvalue()


@pytest.mark.parametrize("body, message", [
    ("import sys\ndef prepare():\n    sys.exit(3)\n", "it exited with status 3"),
    ("def prepare(:\n", "SyntaxError"),
    ("def prepare():\n    return ['../outside']\n", "return paths inside the repository"),
    ("def prepare():\n    return 'dist'\n", "must return None or a list of paths"),
])
def test_prepare_mistakes_are_reported(repo: Project, body: str, message: str) -> None:
    from djaploy.prepare import PrepareFailed, run_prepare

    with pytest.raises(PrepareFailed, match=message):
        run_prepare(_prepare(repo, body), io.StringIO())


def test_no_prepare_file_or_function_is_fine(repo: Project) -> None:
    from djaploy.prepare import run_prepare

    infra = repo.git_root / "site" / "infra"
    assert run_prepare(infra, io.StringIO()) == []
    assert run_prepare(_prepare(repo, "X = 1\n"), io.StringIO()) == []
