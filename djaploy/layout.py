"""Every remote path djaploy uses, in one place. Pure functions of the host's config.

On the host, one app lives under ``/home/{app_user}/apps/{project}/``:

    code/                     in_place: the live code (the extracted release tarball)
    releases/<release>/       zero_downtime: immutable releases
    current -> releases/<r>   zero_downtime: the live release
    shared/
      env                     environment file for services and manage.py (0600, secrets)
      data/                   DJAPLOY_DATA_DIR: SQLite database and other app data
      media/                  DJAPLOY_MEDIA_ROOT: user uploads
      staticfiles/            DJAPLOY_STATIC_ROOT: collectstatic output
      venv-<hash>-py<ver>/    virtualenv keyed by the pinned requirements and Python version
    .djaploy/
      uploads/                release tarballs while they are being extracted
      lock/                   deploy lock (mkdir is atomic)
      audit.jsonl             one JSON line per deploy, activate, rollback
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

VENV_COMPLETE_MARKER = ".djaploy-complete"


@dataclass(frozen=True)
class AppPaths:
    """Remote paths for one app on one host."""

    project_name: str
    app_user: str

    @property
    def home(self) -> str:
        return f"/home/{self.app_user}"

    @property
    def apps_dir(self) -> str:
        return posixpath.join(self.home, "apps")

    @property
    def app_root(self) -> str:
        return posixpath.join(self.apps_dir, self.project_name)

    @property
    def shared(self) -> str:
        return posixpath.join(self.app_root, "shared")

    @property
    def env_file(self) -> str:
        return posixpath.join(self.shared, "env")

    @property
    def data_dir(self) -> str:
        return posixpath.join(self.shared, "data")

    @property
    def media_root(self) -> str:
        return posixpath.join(self.shared, "media")

    @property
    def static_root(self) -> str:
        return posixpath.join(self.shared, "staticfiles")

    @property
    def code_dir(self) -> str:
        """in_place: where the live code is extracted."""
        return posixpath.join(self.app_root, "code")

    @property
    def releases_dir(self) -> str:
        return posixpath.join(self.app_root, "releases")

    def release_dir(self, release: str) -> str:
        return posixpath.join(self.releases_dir, release)

    @property
    def current(self) -> str:
        return posixpath.join(self.app_root, "current")

    def venv_dir(self, dependency_hash: str, python_version: str) -> str:
        return posixpath.join(self.shared, f"venv-{dependency_hash}-py{python_version}")

    @property
    def meta_dir(self) -> str:
        return posixpath.join(self.app_root, ".djaploy")

    @property
    def uploads_dir(self) -> str:
        return posixpath.join(self.meta_dir, "uploads")

    def upload_path(self, release: str) -> str:
        return posixpath.join(self.uploads_dir, f"{release}.tar.gz")

    @property
    def lock_dir(self) -> str:
        return posixpath.join(self.meta_dir, "lock")

    @property
    def audit_log(self) -> str:
        return posixpath.join(self.meta_dir, "audit.jsonl")

    # -- system-wide paths owned by the app --------------------------------------------------

    @property
    def service_name(self) -> str:
        return f"{self.project_name}.service"

    @property
    def unit_path(self) -> str:
        return f"/etc/systemd/system/{self.service_name}"

    @property
    def runtime_dir_name(self) -> str:
        """systemd RuntimeDirectory= name; systemd creates /run/<name> owned by the app user."""
        return self.project_name

    @property
    def socket_path(self) -> str:
        return f"/run/{self.runtime_dir_name}/{self.project_name}.sock"

    @property
    def nginx_site_available(self) -> str:
        return f"/etc/nginx/sites-available/{self.project_name}.conf"

    @property
    def nginx_site_enabled(self) -> str:
        return f"/etc/nginx/sites-enabled/{self.project_name}.conf"


def project_subdir(code_root: str, manage_py_relpath: str) -> str:
    """The folder holding manage.py inside an extracted release (nested layouts use a subfolder)."""
    folder = posixpath.dirname(manage_py_relpath)
    return posixpath.join(code_root, folder) if folder else code_root
