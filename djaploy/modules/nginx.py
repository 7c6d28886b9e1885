"""nginx: the web server in front of gunicorn; serves static and media files itself.

The upstream is the app's live link (``{app_root}/live.sock``), a symlink to the socket of the
service that gets traffic. nginx connects through it per request, so switching traffic
(bluegreen activate and rollback, a change of strategy) is an atomic link swap: no reload, no
closed keep-alive connections, no config that can break. The config is validated with
`nginx -t` and reloaded only when the site itself changes.

With the certs module, port 80 always serves certbot's webroot at /.well-known/acme-challenge/;
once the certificate is on the host the site gains its HTTPS server and HTTP redirects to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import DjaployError
from djaploy.fleet import with_role
from djaploy.modules.base import BaseModule, load_module_class, stop_other_web_server
from djaploy.modules.options import checked_options, option_error
from djaploy.render import render
from djaploy.system_services import NGINX_RELOAD as RELOAD

if TYPE_CHECKING:
    from djaploy.config import Target

NAME = "nginx"
#: the hosts that need a web server (an lb-only host runs HAProxy on port 80 instead)
ROLE = "web"
#: an IPv4 or IPv6 address or a host name
ADDRESS_RE = re.compile(r"[A-Za-z0-9._:-]+")
#: module_options["nginx"]: what it takes, and its defaults
OPTION_DEFAULTS: dict[str, Any] = {"client_max_body_size": "20m"}
#: nginx's size syntax: a number, optionally with k, m or g
SIZE_RE = re.compile(r"\d+[kKmMgG]?")


@dataclass(frozen=True)
class Tls:
    """The certificate files the HTTPS server uses (on the host, never read by djaploy)."""

    fullchain: str
    privkey: str


def _upstream_name(ctx: HostContext) -> str:
    return f"{ctx.target.app_name.replace('-', '_')}_app"


def certs_enabled(ctx: HostContext) -> bool:
    return any(load_module_class(path).name == "certs" for path in ctx.target.modules)


def installed_tls(ctx: HostContext) -> Tls | None:
    """The project's certificate when the certs module is on and certbot has issued it."""
    if not certs_enabled(ctx):
        return None
    paths = ctx.paths
    found = ctx.plan.query(f"test -s {shell.q(paths.cert_fullchain)} && test -s {shell.q(paths.cert_privkey)}")
    return Tls(paths.cert_fullchain, paths.cert_privkey) if found.ok else None


def check_options(target: Target, config_dir: Path | None) -> dict[str, Any]:
    """module_options["nginx"] (under any spelling of its key), checked: the values go into the site."""
    options = {**OPTION_DEFAULTS, **checked_options(target, config_dir, NAME, tuple(OPTION_DEFAULTS))}
    size = options["client_max_body_size"]
    if not isinstance(size, str) or not SIZE_RE.fullmatch(size):
        raise option_error(target, config_dir, NAME, "client_max_body_size",
                           f"expected a size like '20m', '512k' or '0' (no limit), got {size!r}")
    return options


def load_balancer_addresses(ctx: HostContext) -> list[str]:
    """The private addresses of the environment's lb hosts: nginx believes them (and only them) about
    the visitor's address and scheme. Checked to be plain addresses: they go into the site file."""
    addresses = [host.private_address for host in with_role(ctx.fleet, "lb")]
    for address in addresses:
        if not ADDRESS_RE.fullmatch(address):
            raise DjaployError(f"[{ctx.target.name}] nginx: the load balancer's private_address {address!r} is not "
                               "an IP address or host name")
    return addresses


def nginx_site(ctx: HostContext, tls: Tls | None = None) -> str:
    paths, target = ctx.paths, ctx.target
    options = check_options(target, ctx.config_dir)
    return render(
        "nginx_site.conf.j2",
        ctx.config_dir,
        project=target.app_name,
        env=ctx.env,
        upstream=_upstream_name(ctx),
        upstream_file=paths.nginx_upstream,
        domains=list(target.domains),
        static_root=paths.static_root,
        media_root=paths.media_root,
        client_max_body_size=options["client_max_body_size"],
        acme_webroot=paths.acme_webroot if certs_enabled(ctx) else None,
        tls=tls,
        lb_addresses=load_balancer_addresses(ctx),
    )


def nginx_upstream(ctx: HostContext) -> str:
    return render(
        "nginx_upstream.conf.j2", ctx.config_dir, project=ctx.target.app_name, upstream=_upstream_name(ctx), socket=ctx.paths.live_link
    )


def write_site(ctx: HostContext, *, reload: bool = False) -> None:
    """Write the site; when it changed (or `reload`: a new certificate), validate, then reload
    gracefully."""
    paths = ctx.paths
    site = nginx_site(ctx, installed_tls(ctx))
    changed = ctx.plan.put_text("nginx: upstream", paths.nginx_upstream, nginx_upstream(ctx))
    changed |= ctx.plan.put_text("nginx: site", paths.nginx_site_available, site)
    changed |= ctx.plan.link("nginx: enable site", paths.nginx_site_enabled, paths.nginx_site_available)
    if changed or reload:
        ctx.plan.run("nginx: check config and reload", RELOAD)


class Module(BaseModule):
    name = NAME
    conflicts = ("caddy",)
    apt_packages = ("nginx",)
    option_names = tuple(OPTION_DEFAULTS)

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        """Local checks before any connection: option names (every spelling of the key) and values."""
        check_options(target, config_dir)

    def configure_server(self, ctx: HostContext) -> None:
        if ROLE not in ctx.target.roles:
            return  # worker, db and lb hosts serve no site
        stop_other_web_server(ctx, "caddy")
        ctx.plan.packages("nginx: install", self.apt_packages)
        ctx.plan.absent("nginx: disable default site", "/etc/nginx/sites-enabled/default")
        write_site(ctx)
        ctx.plan.service("nginx: running and enabled", "nginx")

    def publish(self, ctx: HostContext) -> None:
        if ROLE in ctx.target.roles:
            write_site(ctx)

    def verify(self, ctx: HostContext) -> None:
        """With HTTPS on, the app must answer through it too (HTTP only redirects)."""
        if ROLE in ctx.target.roles and ctx.target.domains and installed_tls(ctx):
            domain = ctx.target.domains[0]
            ctx.plan.run(f"nginx: HTTPS check {ctx.target.health_check_path}", shell.https_check(domain, ctx.target.health_check_path))
