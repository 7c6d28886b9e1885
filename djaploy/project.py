"""What the local Django project is: git root, manage.py, requirements, WSGI application.

Everything here is read on the deploying machine before any connection is made.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from djaploy.errors import ConfigError


@dataclass(frozen=True)
class Project:
    """The local project, with paths relative to the git root (as they appear in a release)."""

    git_root: Path
    manage_py: str  # relative to git_root, posix
    requirements: str  # relative to git_root, posix
    wsgi_application: str  # "package.wsgi:application"

    @property
    def project_dir(self) -> str:
        """manage.py's folder relative to the git root ("" for a non-nested layout)."""
        parent = Path(self.manage_py).parent.as_posix()
        return "" if parent == "." else parent


def find_git_root(start: Path) -> Path:
    """The top of the git work tree containing `start`; a clear error when there is none."""
    result = subprocess.run(
        ["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ConfigError(
            f"{start} is not inside a git repository; djaploy ships releases from git "
            "(run `git init` and commit your project)",
        )
    return Path(result.stdout.strip()).resolve()


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root).as_posix()


def find_manage_py(config_dir: Path, git_root: Path, configured: str | None) -> str:
    """manage.py relative to the git root: the configured path, or beside the infra folder."""
    if configured:
        if not (git_root / configured).is_file():
            raise ConfigError(
                f"manage.py not found at {git_root / configured}; manage_py_path is relative to the "
                f"git root {git_root}",
                field="manage_py_path",
            )
        return Path(configured).as_posix()
    for candidate in (config_dir.parent / "manage.py", git_root / "manage.py"):
        if candidate.is_file():
            return _relative(candidate, git_root)
    raise ConfigError(
        f"could not find manage.py next to {config_dir} or at {git_root}; "
        "set manage_py_path (relative to the git root) in config.py",
        field="manage_py_path",
    )


def find_requirements(git_root: Path, manage_py: str) -> str:
    """requirements.txt beside manage.py, else at the git root."""
    project_dir = (git_root / manage_py).parent
    for candidate in (project_dir / "requirements.txt", git_root / "requirements.txt"):
        if candidate.is_file():
            return _relative(candidate, git_root)
    raise ConfigError(
        f"no requirements.txt found in {project_dir} or {git_root}; list the packages the server "
        "needs (Django, gunicorn, ...) in requirements.txt",
    )


def wsgi_from_setting(setting: str | None, git_root: Path, manage_py: str) -> str:
    """Turn Django's WSGI_APPLICATION ("pkg.wsgi.application") into gunicorn's "pkg.wsgi:application"."""
    if setting:
        module, _, attr = setting.rpartition(".")
        return f"{module}:{attr}"
    project_dir = (git_root / manage_py).parent
    found = sorted(project_dir.glob("*/wsgi.py"))
    if len(found) == 1:
        return f"{found[0].parent.name}.wsgi:application"
    raise ConfigError(
        "could not tell which WSGI application to serve; set wsgi_application in config.py "
        '(for example "mysite.wsgi:application")',
        field="wsgi_application",
    )


def inspect_project(
    config_dir: Path,
    *,
    manage_py_path: str | None = None,
    wsgi_application: str | None = None,
    wsgi_setting: str | None = None,
) -> Project:
    """Inspect the local project that lives around `config_dir` (the infra folder)."""
    git_root = find_git_root(config_dir)
    manage_py = find_manage_py(config_dir, git_root, manage_py_path)
    return Project(
        git_root=git_root,
        manage_py=manage_py,
        requirements=find_requirements(git_root, manage_py),
        wsgi_application=wsgi_application or wsgi_from_setting(wsgi_setting, git_root, manage_py),
    )


def dependency_hash(pinned_requirements: str, python_version: str) -> str:
    """Key for venv reuse: the same pinned list on the same Python gives the same venv."""
    digest = hashlib.sha256(f"python{python_version}\n{pinned_requirements}".encode()).hexdigest()
    return digest[:12]
