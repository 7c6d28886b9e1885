"""nginx: the web server in front of gunicorn; serves static and media files itself."""

from __future__ import annotations

from djaploy.context import HostContext
from djaploy.modules.base import BaseModule
from djaploy.render import render


def nginx_site(ctx: HostContext) -> str:
    paths, target = ctx.paths, ctx.target
    options = target.module_options.get("nginx", {})
    return render(
        "nginx_site.conf.j2",
        project=target.project_name,
        env=ctx.env,
        upstream=f"{target.project_name.replace('-', '_')}_app",
        socket=paths.socket_path,
        domains=list(target.domains),
        static_root=paths.static_root,
        media_root=paths.media_root,
        client_max_body_size=options.get("client_max_body_size", "20m"),
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
        """Write the site; when it changed, validate the whole config before a graceful reload."""
        paths = ctx.paths
        changed = ctx.plan.put_text("nginx: site", paths.nginx_site_available, nginx_site(ctx))
        changed |= ctx.plan.link("nginx: enable site", paths.nginx_site_enabled, paths.nginx_site_available)
        if changed:
            ctx.plan.run("nginx: check config", "nginx -t -q")
            ctx.plan.service("nginx: reload", "nginx", reloaded=True)
