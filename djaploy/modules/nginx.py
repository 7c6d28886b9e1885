"""nginx: the web server in front of gunicorn; serves static and media files itself.

The upstream is the app's live link (``{app_root}/live.sock``), a symlink to the socket of the
service that gets traffic. nginx connects through it per request, so switching traffic
(bluegreen activate and rollback, a change of strategy) is an atomic link swap: no reload, no
closed keep-alive connections, no config that can break. The config is validated with
`nginx -t` and reloaded only when the site itself changes.
"""

from __future__ import annotations

from djaploy import shell
from djaploy.context import HostContext
from djaploy.modules.base import BaseModule
from djaploy.render import render


def _upstream_name(ctx: HostContext) -> str:
    return f"{ctx.target.project_name.replace('-', '_')}_app"


def nginx_site(ctx: HostContext) -> str:
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
    )


def nginx_upstream(ctx: HostContext) -> str:
    return render(
        "nginx_upstream.conf.j2", project=ctx.target.project_name, upstream=_upstream_name(ctx), socket=ctx.paths.live_link
    )


class Module(BaseModule):
    name = "nginx"
    conflicts = ("caddy",)
    apt_packages = ("nginx",)

    def configure_server(self, ctx: HostContext) -> None:
        ctx.plan.packages("nginx: install", self.apt_packages)
        ctx.plan.absent("nginx: disable default site", "/etc/nginx/sites-enabled/default")
        self._write_site(ctx)
        ctx.plan.service("nginx: running and enabled", "nginx")

    def publish(self, ctx: HostContext) -> None:
        self._write_site(ctx)

    def _write_site(self, ctx: HostContext) -> None:
        """Write the site; when it changed, validate the whole config, then reload gracefully."""
        paths = ctx.paths
        changed = ctx.plan.put_text("nginx: upstream", paths.nginx_upstream, nginx_upstream(ctx))
        changed |= ctx.plan.put_text("nginx: site", paths.nginx_site_available, nginx_site(ctx))
        changed |= ctx.plan.link("nginx: enable site", paths.nginx_site_enabled, paths.nginx_site_available)
        if changed:
            ctx.plan.run("nginx: check config and reload", f"nginx -t -q && systemctl reload nginx && {shell.wait_nginx_reloaded()}")
