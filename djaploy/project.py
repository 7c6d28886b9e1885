"""What the local Django project is: git root, manage.py, settings, WSGI application, dependencies.

Everything here is read on the deploying machine before any connection is made.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from djaploy.dependencies import DependencySpec, detect_dependencies
from djaploy.errors import ConfigError

SETTINGS_DEFAULT_RE = re.compile(r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([A-Za-z_][\w.]*)['"]""")


@dataclass(frozen=True)
class Project:
    """The local project, with paths relative to the git root (as they appear in a release)."""

    git_root: Path
    manage_py: str  # relative to git_root, posix
    wsgi_application: str  # "package.wsgi:application"
    dependencies: DependencySpec | None = None  # None when the command does not need them
    settings_module: str | None = None  # manage.py's DJANGO_SETTINGS_MODULE default

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
    found = _manage_py_files(git_root)
    if len(found) == 1:
        return found[0]
    listing = f"found several: {', '.join(found)}" if found else "found none in the repository"
    raise ConfigError(
        f"could not find manage.py next to {config_dir} or at {git_root} ({listing}); "
        "set manage_py_path (relative to the git root) in config.py",
        field="manage_py_path",
    )


def _manage_py_files(git_root: Path) -> list[str]:
    """manage.py files git knows of (tracked or not ignored), so virtualenvs are never searched."""
    result = subprocess.run(
        ["git", "-C", str(git_root), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
         "--", ":(glob)**/manage.py"],
        capture_output=True, text=True,
    )
    names = {name for name in result.stdout.split("\0") if name and (git_root / name).is_file()}
    return sorted(names)


def settings_module_of(manage_py: Path) -> str | None:
    """The settings module manage.py falls back to (`os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)`)."""
    try:
        match = SETTINGS_DEFAULT_RE.search(manage_py.read_text(errors="replace"))
    except OSError:
        return None
    return match.group(1) if match else None


def wsgi_from_setting(setting: str | None, git_root: Path, manage_py: str, settings_module: str | None = None) -> str:
    """gunicorn's "pkg.wsgi:application": from Django's WSGI_APPLICATION, else the wsgi.py of the
    settings module's package (``mysite.settings`` -> ``mysite/wsgi.py``), else the only */wsgi.py."""
    if setting:
        module, _, attr = setting.rpartition(".")
        return f"{module}:{attr}"
    project_dir = (git_root / manage_py).parent
    if settings_module:
        parts = settings_module.split(".")[:-1]
        while parts:
            if (project_dir.joinpath(*parts) / "wsgi.py").is_file():
                return f"{'.'.join(parts)}.wsgi:application"
            parts.pop()
    found = sorted(project_dir.glob("*/wsgi.py"))
    if len(found) == 1:
        return f"{found[0].parent.name}.wsgi:application"
    raise ConfigError(
        f"could not tell which WSGI application to serve (no single */wsgi.py in {project_dir}); set "
        'wsgi_application in config.py (for example "mysite.wsgi:application")',
        field="wsgi_application",
    )


def inspect_project(
    config_dir: Path,
    *,
    manage_py_path: str | None = None,
    wsgi_application: str | None = None,
    wsgi_setting: str | None = None,
    dependency_manager: str | None = None,
    with_dependencies: bool = True,
) -> Project:
    """Inspect the local project that lives around `config_dir` (the infra folder).

    `with_dependencies=False` skips dependency detection, for commands that ship nothing
    (activate, rollback): a half-edited pyproject.toml must never block a rollback.
    """
    git_root = find_git_root(config_dir)
    manage_py = find_manage_py(config_dir, git_root, manage_py_path)
    settings_module = settings_module_of(git_root / manage_py)
    project_dir = (git_root / manage_py).parent
    return Project(
        git_root=git_root,
        manage_py=manage_py,
        wsgi_application=wsgi_application or wsgi_from_setting(wsgi_setting, git_root, manage_py, settings_module),
        dependencies=detect_dependencies(project_dir, git_root, dependency_manager) if with_dependencies else None,
        settings_module=settings_module,
    )


def dependency_hash(pinned_requirements: str, python_version: str) -> str:
    """Key for venv reuse: the same pinned list on the same Python gives the same venv."""
    digest = hashlib.sha256(f"python{python_version}\n{pinned_requirements}".encode()).hexdigest()
    return digest[:12]
