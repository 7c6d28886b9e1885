"""What a module hook sees: one host's resolved config, its remote paths, and its plan.

`Plan` is the only way modules change a host. The engine implements it with pyinfra; tests
can implement it with a recorder. Each method takes a short step name shown in progress
output and errors, and returns whether the host changed (or would, in a dry run).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from djaploy import shell
from djaploy.layout import ENV_FILE_NAME, AppPaths, AppService, project_subdir

if TYPE_CHECKING:
    from djaploy.artifact import Release
    from djaploy.config import Target
    from djaploy.project import Project


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    stdout: str
    stderr: str = ""


class Plan(Protocol):
    """Changes to one host. Built-in and custom modules use only these methods."""

    dry_run: bool

    def packages(self, step: str, packages: Sequence[str]) -> bool: ...

    def user(self, step: str, name: str, *, home: str) -> bool: ...

    def directory(self, step: str, path: str, *, owner: str = "root", mode: str = "755") -> bool: ...

    def put_text(self, step: str, path: str, content: str, *, owner: str = "root", mode: str = "644") -> bool: ...

    def put_file(self, step: str, local_path: str, remote_path: str, *, owner: str = "root", mode: str = "644") -> bool: ...

    def link(self, step: str, path: str, target: str) -> bool: ...

    def absent(self, step: str, path: str) -> bool: ...

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult: ...

    def service(
        self,
        step: str,
        name: str,
        *,
        running: bool = True,
        enabled: bool = True,
        restarted: bool = False,
        reloaded: bool = False,
        daemon_reload: bool = False,
    ) -> bool: ...

    def query(self, command: str, *, as_user: str | None = None) -> CommandResult: ...

    def direct_operations(self, label: str) -> AbstractContextManager[object]:
        """Around each hook call: pyinfra operations the hook calls itself (``apt.packages(...)``)
        run on this host, in order, reported and failing like the plan's own steps."""
        ...


@dataclass
class HostContext:
    """Everything one host's hooks need; strategies fill in the release fields during a deploy."""

    env: str
    target: Target
    plan: Plan
    config_dir: Path | None = None  # the local infra folder (deploy_files/ lives there)
    project: Project | None = None
    release: Release | None = None
    code_dir: str | None = None  # where this deploy's release lives on the host
    service: AppService | None = None  # the gunicorn service this operation starts or restarts
    state: dict = field(default_factory=dict)  # the host's .djaploy/state.json, read at the start
    notes: list[str] = field(default_factory=list)  # lines for the final summary
    timings: dict[str, float] = field(default_factory=dict)  # seconds per deploy phase, for the summary
    #: every host of the environment, this one included, in inventory order (read-only): modules that
    #: serve other hosts (a load balancer, a database) read their roles and private addresses here
    fleet: tuple[Target, ...] = ()

    @property
    def paths(self) -> AppPaths:
        return AppPaths.for_target(self.target)

    @property
    def project_dir(self) -> str:
        """manage.py's folder inside this deploy's release."""
        assert self.code_dir and self.project
        return project_subdir(self.code_dir, self.project.manage_py)

    @property
    def venv_dir(self) -> str:
        assert self.release
        return self.paths.venv_dir(self.release.dependency_hash, self.target.python_version)

    @property
    def env_file(self) -> str:
        """This release's environment file (the service reads it through its code link)."""
        assert self.code_dir
        return f"{self.code_dir}/{ENV_FILE_NAME}"

    @property
    def wsgi_application(self) -> str:
        assert self.project
        return self.target.wsgi_application or self.project.wsgi_application

    @property
    def python(self) -> str:
        return f"python{self.target.python_version}"

    def app_environment(self) -> dict[str, str]:
        """The variables every service and every remote manage.py call gets."""
        paths = self.paths
        variables = {
            "DJAPLOY_ENV": self.env,
            "DJAPLOY_RELEASE": self.release.name if self.release else "",
            "DJAPLOY_VERSION": (self.release.version or "") if self.release else "",
            "DJAPLOY_STATIC_ROOT": paths.static_root,
            "DJAPLOY_MEDIA_ROOT": paths.media_root,
            "DJAPLOY_DATA_DIR": paths.data_dir,
        }
        variables.update(self.target.env_vars)
        variables.update(self.target.secrets)
        return variables

    def manage(self, step: str, *args: str) -> CommandResult:
        """Run manage.py in this deploy's release as the app user, with the app's environment."""
        command = shell.manage_py(self.env_file, self.project_dir, self.venv_dir, args)
        return self.plan.run(step, command, as_user=self.target.app_user)

    @property
    def health_host(self) -> str:
        """The Host header for health checks: the first domain, so ALLOWED_HOSTS applies."""
        return self.target.domains[0] if self.target.domains else "localhost"
