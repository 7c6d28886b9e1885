"""Every remote path djaploy uses, in one place. Pure functions of the host's config.

On the host, one app lives under ``/home/{app_user}/apps/{app_name}/`` (app_name defaults to the
project name). Everything an app owns on the host (this folder, its units, its socket, its web
server site, its certificate) is named after app_name, so apps with different names share a host
without touching each other:

    code/                     in_place: the live code (the extracted release tarball)
    releases/<release>/       zero_downtime: immutable releases
    current -> releases/<r>   zero_downtime: the live release (swapped atomically); its two
                              services ({app}-a, {app}-b) take turns: each release starts in
                              the one not serving, and traffic moves to it once it answers
    live.sock -> <socket>     the socket that gets traffic; the web server always connects here,
                              so switching traffic is an atomic link swap, never a reload
    slots/blue/, slots/green/ bluegreen: the two slots, each with its own service and socket
    shared/
      data/                   DJAPLOY_DATA_DIR: SQLite database and other app data
      media/                  DJAPLOY_MEDIA_ROOT: user uploads
      staticfiles/            DJAPLOY_STATIC_ROOT: collectstatic output
      venv-<hash>-py<python>/ virtualenv keyed by the pinned requirements and the interpreter's full
                              version and provider (py3.13.5-source: a patch upgrade is a new venv)
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from djaploy.config import Target

VENV_COMPLETE_MARKER = ".djaploy-complete"
ENV_FILE_NAME = ".djaploy-env"
VENV_LINK_NAME = ".djaploy-venv"
RELEASE_INFO_NAME = ".djaploy-release.json"
SLOTS = ("blue", "green")
LANES = ("a", "b")  # zero_downtime's two services, used in turn
TOOLS_VENV = "/opt/djaploy-tools"


@dataclass(frozen=True)
class AppService:
    """One gunicorn service of the app: its systemd units, its socket and the code it runs.

    in_place has one (``{app_name}``); zero_downtime two used in turn (``{app_name}-a``,
    ``{app_name}-b``, both running `current`); bluegreen one per slot (``{app_name}-blue``,
    ``{app_name}-green``). The unit runs from `code_link`, a path whose
    target a deploy changes (code/, current, slots/<slot>), so unit files never change
    between releases.
    """

    name: str
    socket_path: str
    code_link: str
    at_boot: bool = True  # False: only its socket starts at boot (zero_downtime's lanes: the first
    # request starts the one the live link names, so the idle lane never runs)

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

    app_name: str
    app_user: str

    @classmethod
    def for_target(cls, target: Target) -> AppPaths:
        return cls(app_name=target.app_name, app_user=target.app_user)

    @property
    def home(self) -> str:
        return f"/home/{self.app_user}"

    @property
    def apps_dir(self) -> str:
        return posixpath.join(self.home, "apps")

    @property
    def app_root(self) -> str:
        return posixpath.join(self.apps_dir, self.app_name)

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
        """The service that serves the app for a strategy and slot (bluegreen: blue or green;
        zero_downtime: lane a or b, or None for the single service of djaploy before lanes)."""
        if strategy == "bluegreen":
            if slot not in SLOTS:
                raise ValueError(f"bluegreen needs a slot (blue or green), got {slot!r}")
            name = f"{self.app_name}-{slot}"
            return AppService(name, f"/run/{name}/{self.app_name}.sock", self.slot_dir(slot))
        if strategy == "zero_downtime" and slot is not None:
            if slot not in LANES:
                raise ValueError(f"zero_downtime's lane is a or b, got {slot!r}")
            name = f"{self.app_name}-{slot}"
            return AppService(name, f"/run/{name}/{self.app_name}.sock", self.current, at_boot=False)
        code_link = self.current if strategy == "zero_downtime" else self.code_dir
        return AppService(self.app_name, self.socket_path, code_link)

    def all_services(self) -> list[AppService]:
        """Every service any strategy may have left on the host (for status and clean-up)."""
        return [self.service_for("in_place"), *(self.service_for("zero_downtime", lane) for lane in LANES),
                *(self.service_for("bluegreen", s) for s in SLOTS)]

    def service_on(self, socket: str) -> AppService | None:
        """The app's service listening on `socket` (where the live link points), if any."""
        return next((service for service in self.all_services() if service.socket_path == socket), None)

    def worker_service(self, worker: str) -> str:
        """A worker's systemd service (config.py's `workers`)."""
        return f"{self.app_name}-worker-{worker}.service"

    @property
    def worker_services_glob(self) -> str:
        """Every worker unit of the app on the host (to retire removed ones)."""
        return f"/etc/systemd/system/{self.app_name}-worker-*.service"

    def venv_dir(self, dependency_hash: str, python: str) -> str:
        """`python`: the interpreter's key (djaploy.python.naming.Interpreter.key), like 3.13.5-source."""
        return posixpath.join(self.shared, f"venv-{dependency_hash}-py{python}")

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

    # -- system-wide paths ------------------------------------------------------------------

    @property
    def tools_venv(self) -> str:
        """djaploy's own tools on the host (uv), one venv shared by every app; root-owned."""
        return TOOLS_VENV

    @property
    def uv_bin(self) -> str:
        """uv, which installs each release's pinned requirements (pip when it is missing)."""
        return posixpath.join(TOOLS_VENV, "bin", "uv")

    # -- system-wide paths owned by the app --------------------------------------------------

    @property
    def socket_path(self) -> str:
        """The socket of the in_place/zero_downtime service (held open by a systemd socket unit)."""
        return f"/run/{self.app_name}/{self.app_name}.sock"

    @property
    def nginx_site_available(self) -> str:
        return f"/etc/nginx/sites-available/{self.app_name}.conf"

    @property
    def nginx_site_enabled(self) -> str:
        return f"/etc/nginx/sites-enabled/{self.app_name}.conf"

    @property
    def nginx_upstream(self) -> str:
        """The upstream block the site includes; switching traffic rewrites only this file."""
        return f"/etc/nginx/sites-available/{self.app_name}-upstream.conf"

    # -- caddy ----------------------------------------------------------------------------------

    @property
    def caddyfile(self) -> str:
        """Debian's main Caddyfile: djaploy makes it import every djaploy site file."""
        return "/etc/caddy/Caddyfile"

    @property
    def caddy_sites_dir(self) -> str:
        return "/etc/caddy/djaploy"

    @property
    def caddy_site(self) -> str:
        return posixpath.join(self.caddy_sites_dir, f"{self.app_name}.caddy")

    @property
    def caddy_acme_ca_root(self) -> str:
        """The CA Caddy trusts for the ACME server's TLS (readable by the caddy user; not a secret)."""
        return posixpath.join(self.caddy_sites_dir, f"{self.app_name}-acme-ca.pem")

    @property
    def caddy_certificates_dir(self) -> str:
        """Where Debian's caddy (user caddy, HOME /var/lib/caddy) keeps the certificates it obtains."""
        return "/var/lib/caddy/.local/share/caddy/certificates"

    # -- certs (certbot, for nginx) -------------------------------------------------------------

    @property
    def cert_name(self) -> str:
        """certbot's --cert-name: one certificate lineage per app."""
        return self.app_name

    @property
    def letsencrypt_dir(self) -> str:
        return "/etc/letsencrypt"

    @property
    def cert_live_dir(self) -> str:
        return posixpath.join(self.letsencrypt_dir, "live", self.cert_name)

    @property
    def cert_fullchain(self) -> str:
        return posixpath.join(self.cert_live_dir, "fullchain.pem")

    @property
    def cert_privkey(self) -> str:
        return posixpath.join(self.cert_live_dir, "privkey.pem")

    @property
    def cert_renewal_conf(self) -> str:
        return posixpath.join(self.letsencrypt_dir, "renewal", f"{self.cert_name}.conf")

    @property
    def certbot_deploy_hook(self) -> str:
        """Run by certbot after every renewal (timer or on demand): validate and reload nginx."""
        return posixpath.join(self.letsencrypt_dir, "renewal-hooks", "deploy", "djaploy-reload-nginx")

    @property
    def certbot_dns_credentials(self) -> str:
        """DNS-01: the DNS plugin's credentials (0600, root); certbot's renewal configuration names it."""
        return posixpath.join(self.letsencrypt_dir, "djaploy", f"{self.cert_name}-dns-credentials.ini")

    @property
    def acme_webroot(self) -> str:
        """HTTP-01 webroot: certbot writes tokens under .well-known/acme-challenge/, nginx serves them."""
        return f"/var/www/djaploy-acme/{self.app_name}"

    @property
    def acme_ca_bundle(self) -> str:
        """A CA to trust for the ACME server, installed system-wide (certbot's timer sees it too)."""
        return f"/usr/local/share/ca-certificates/djaploy-{self.app_name}-acme.crt"


def project_subdir(code_root: str, manage_py_relpath: str) -> str:
    """The folder holding manage.py inside an extracted release (nested layouts use a subfolder)."""
    folder = posixpath.dirname(manage_py_relpath)
    return posixpath.join(code_root, folder) if folder else code_root
