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

from dataclasses import dataclass

from djaploy import shell
from djaploy.context import HostContext
from djaploy.modules.base import BaseModule, load_module_class, stop_other_web_server
from djaploy.render import render
from djaploy.system_services import NGINX_RELOAD as RELOAD


@dataclass(frozen=True)
class Tls:
    """The certificate files the HTTPS server uses (on the host, never read by djaploy)."""

    fullchain: str
    privkey: str


def _upstream_name(ctx: HostContext) -> str:
    return f"{ctx.target.project_name.replace('-', '_')}_app"


def certs_enabled(ctx: HostContext) -> bool:
    return any(load_module_class(path).name == "certs" for path in ctx.target.modules)


def installed_tls(ctx: HostContext) -> Tls | None:
    """The project's certificate when the certs module is on and certbot has issued it."""
    if not certs_enabled(ctx):
        return None
    paths = ctx.paths
    found = ctx.plan.query(f"test -s {shell.q(paths.cert_fullchain)} && test -s {shell.q(paths.cert_privkey)}")
    return Tls(paths.cert_fullchain, paths.cert_privkey) if found.ok else None


def nginx_site(ctx: HostContext, tls: Tls | None = None) -> str:
    paths, target = ctx.paths, ctx.target
    options = target.module_options.get("nginx", {})
    return render(
        "nginx_site.conf.j2",
        project=target.project_name,
        env=ctx.env,
        upstream=_upstream_name(ctx),
        upstream_file=paths.nginx_upstream,
        domains=list(target.domains),
        static_root=paths.static_root,
        media_root=paths.media_root,
        client_max_body_size=options.get("client_max_body_size", "20m"),
        acme_webroot=paths.acme_webroot if certs_enabled(ctx) else None,
        tls=tls,
    )


def nginx_upstream(ctx: HostContext) -> str:
    return render(
        "nginx_upstream.conf.j2", project=ctx.target.project_name, upstream=_upstream_name(ctx), socket=ctx.paths.live_link
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
    name = "nginx"
    conflicts = ("caddy",)
    apt_packages = ("nginx",)

    def configure_server(self, ctx: HostContext) -> None:
        stop_other_web_server(ctx, "caddy")
        ctx.plan.packages("nginx: install", self.apt_packages)
        ctx.plan.absent("nginx: disable default site", "/etc/nginx/sites-enabled/default")
        write_site(ctx)
        ctx.plan.service("nginx: running and enabled", "nginx")

    def publish(self, ctx: HostContext) -> None:
        write_site(ctx)

    def verify(self, ctx: HostContext) -> None:
        """With HTTPS on, the app must answer through it too (HTTP only redirects)."""
        if ctx.target.domains and installed_tls(ctx):
            from djaploy.modules.certs import https_check

            domain = ctx.target.domains[0]
            ctx.plan.run(f"nginx: HTTPS check {ctx.target.health_check_path}", https_check(domain, ctx.target.health_check_path))
