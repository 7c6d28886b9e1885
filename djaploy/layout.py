"""Every remote path djaploy uses, in one place. Pure functions of the host's config.

On the host, one app lives under ``/home/{app_user}/apps/{project}/``:

    code/                     in_place: the live code (the extracted release tarball)
    releases/<release>/       zero_downtime: immutable releases
    current -> releases/<r>   zero_downtime: the live release (swapped atomically)
    live.sock -> <socket>     the socket that gets traffic; the web server always connects here,
                              so switching traffic is an atomic link swap, never a reload
    slots/blue/, slots/green/ bluegreen: the two slots, each with its own service and socket
    shared/
      data/                   DJAPLOY_DATA_DIR: SQLite database and other app data
      media/                  DJAPLOY_MEDIA_ROOT: user uploads
      staticfiles/            DJAPLOY_STATIC_ROOT: collectstatic output
      venv-<hash>-py<ver>/    virtualenv keyed by the pinned requirements and Python version
    Every code folder above (code/, releases/<r>/, slots/<slot>/) also holds:
      .djaploy-env            the release's environment file (0600, app user: holds secrets)
      .djaploy-venv ->        link to the virtualenv in shared/ that the release runs with
      .djaploy-release.json   what the release is (name, commit, ref, deployed_at, python, venv)
    .djaploy/
      state.json              strategy, live release or active slot, release history
      uploads/                release tarballs while they are being extracted
      lock/                   deploy lock (mkdir is atomic)
      audit.jsonl             one JSON line per deploy, activate, rollback
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

VENV_COMPLETE_MARKER = ".djaploy-complete"
ENV_FILE_NAME = ".djaploy-env"
VENV_LINK_NAME = ".djaploy-venv"
RELEASE_INFO_NAME = ".djaploy-release.json"
SLOTS = ("blue", "green")


@dataclass(frozen=True)
class AppService:
    """One gunicorn service of the app: its systemd units, its socket and the code it runs.

    in_place and zero_downtime have one (``{project}``); bluegreen has one per slot
    (``{project}-blue``, ``{project}-green``). The unit runs from `code_link`, a path whose
    target a deploy changes (code/, current, slots/<slot>), so unit files never change
    between releases.
    """

    name: str
    socket_path: str
    code_link: str

    @property
    def service(self) -> str:
        return f"{self.name}.service"

    @property
    def socket_unit(self) -> str:
        return f"{self.name}.socket"

    @property
    def service_path(self) -> str:
        return f"/etc/systemd/system/{self.service}"

    @property
    def socket_unit_path(self) -> str:
        return f"/etc/systemd/system/{self.socket_unit}"

    @property
    def env_file(self) -> str:
        return posixpath.join(self.code_link, ENV_FILE_NAME)

    @property
    def venv_link(self) -> str:
        return posixpath.join(self.code_link, VENV_LINK_NAME)


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

    @property
    def live_link(self) -> str:
        return posixpath.join(self.app_root, "live.sock")

    @property
    def slots_dir(self) -> str:
        return posixpath.join(self.app_root, "slots")

    def slot_dir(self, slot: str) -> str:
        return posixpath.join(self.slots_dir, slot)

    def service_for(self, strategy: str, slot: str | None = None) -> AppService:
        """The service that serves the app for a strategy (and slot, for bluegreen)."""
        if strategy == "bluegreen":
            if slot not in SLOTS:
                raise ValueError(f"bluegreen needs a slot (blue or green), got {slot!r}")
            name = f"{self.project_name}-{slot}"
            return AppService(name, f"/run/{name}/{self.project_name}.sock", self.slot_dir(slot))
        code_link = self.current if strategy == "zero_downtime" else self.code_dir
        return AppService(self.project_name, self.socket_path, code_link)

    def all_services(self) -> list[AppService]:
        """Every service any strategy may have left on the host (for status and clean-up)."""
        return [self.service_for("in_place"), *(self.service_for("bluegreen", s) for s in SLOTS)]

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

    @property
    def state_file(self) -> str:
        return posixpath.join(self.meta_dir, "state.json")

    @property
    def check_socket(self) -> str:
        """Private socket of the temporary gunicorn that proves a release before it serves."""
        return posixpath.join(self.meta_dir, "check.sock")

    # -- system-wide paths owned by the app --------------------------------------------------

    @property
    def socket_path(self) -> str:
        """The socket of the in_place/zero_downtime service (held open by a systemd socket unit)."""
        return f"/run/{self.project_name}/{self.project_name}.sock"

    @property
    def nginx_site_available(self) -> str:
        return f"/etc/nginx/sites-available/{self.project_name}.conf"

    @property
    def nginx_site_enabled(self) -> str:
        return f"/etc/nginx/sites-enabled/{self.project_name}.conf"

    @property
    def nginx_upstream(self) -> str:
        """The upstream block the site includes; switching traffic rewrites only this file."""
        return f"/etc/nginx/sites-available/{self.project_name}-upstream.conf"


def project_subdir(code_root: str, manage_py_relpath: str) -> str:
    """The folder holding manage.py inside an extracted release (nested layouts use a subfolder)."""
    folder = posixpath.dirname(manage_py_relpath)
    return posixpath.join(code_root, folder) if folder else code_root
