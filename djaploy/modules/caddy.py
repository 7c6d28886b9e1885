"""caddy: Caddy in front of gunicorn, instead of nginx; serves static and media files itself.

The site reverse-proxies to the app's live link (``{app_root}/live.sock``), like nginx, so
switching traffic is an atomic link swap and never a reload. Caddy's HTTP transport would
otherwise pool upstream connections: an idle pooled connection to the old socket would keep
carrying requests to the old bluegreen slot after a switch. ``keepalive off`` makes every
request connect through the link (a unix-socket connect costs microseconds); gunicorn's sync
workers close each connection anyway.

HTTPS is Caddy's own: real domain names get certificates from the ACME CA (Let's Encrypt by
default) and HTTP redirects to HTTPS; IP addresses (and every address when ``https`` is off)
are served over plain HTTP.

    module_options={"caddy": {
        "email": "ops@example.com",          # ACME account contact (optional)
        "acme_ca": "https://.../dir",        # ACME directory (default: Caddy's, Let's Encrypt)
        "acme_ca_root": "ca.pem",            # a CA to trust for that server (file or PEM text)
        "https": True,                       # False: plain HTTP for every domain
    }}

The main Caddyfile imports one site file per project; the config is validated
(`caddy validate`) and reloaded gracefully only when a file changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from djaploy import shell
from djaploy.context import HostContext
from djaploy.modules.base import BaseModule, stop_other_web_server
from djaploy.modules.options import (
    check_bool,
    check_email,
    check_option_names,
    check_url,
    is_ip_address,
    module_options,
    option_error,
    read_ca_pem,
)
from djaploy.render import render

if TYPE_CHECKING:
    from djaploy.config import Target

NAME = "caddy"
OPTION_NAMES = ("email", "acme_ca", "acme_ca_root", "https")


@dataclass(frozen=True)
class CaddyOptions:
    """module_options["caddy"] of one host, checked."""

    email: str | None = None
    acme_ca: str | None = None
    acme_ca_root_pem: str | None = None
    https: bool = True


def caddy_options(target: Target, config_dir: Path | None) -> CaddyOptions:
    """Check module_options["caddy"] of a host; every error names the option and what to do."""
    raw = module_options(target, NAME)

    def fail(key: str, message: str) -> NoReturn:
        raise option_error(target, config_dir, NAME, key, message)

    check_option_names(raw, OPTION_NAMES, fail)
    https = check_bool(raw, "https", True, fail)
    acme_ca = check_url(raw["acme_ca"], "acme_ca", fail) if "acme_ca" in raw else None
    root = None
    if "acme_ca_root" in raw:
        if acme_ca is None:
            fail("acme_ca_root", "a CA root to trust is for a custom ACME server: set acme_ca too")
        root = read_ca_pem(raw["acme_ca_root"], config_dir, "acme_ca_root", fail)
    if https:
        wildcard = next((d for d in target.domains if d.startswith("*.")), None)
        if wildcard:
            fail("https", f"{wildcard!r}: wildcard certificates need a DNS-01 challenge, which this module does not "
                          "set up; list the names, or set https=False")
    return CaddyOptions(email=check_email(raw.get("email"), "email", fail), acme_ca=acme_ca,
                        acme_ca_root_pem=root, https=https)


def site_addresses(domains: tuple[str, ...] | list[str], https: bool) -> tuple[list[str], list[str]]:
    """(names Caddy serves over HTTPS, addresses served over plain HTTP).

    IP addresses get plain HTTP: public CAs issue for names. No domains: every request on :80.
    """
    secure = [d for d in domains if https and not is_ip_address(d)]
    plain = [f"http://{d}" for d in domains if d not in secure]
    return secure, plain if domains else [":80"]


def caddy_site(ctx: HostContext, options: CaddyOptions) -> str:
    paths, target = ctx.paths, ctx.target
    secure, plain = site_addresses(target.domains, options.https)
    return render(
        "caddy_site.caddy.j2",
        ctx.config_dir,
        project=target.app_name,
        env=ctx.env,
        snippet=target.app_name.replace("-", "_"),
        static_root=paths.static_root,
        media_root=paths.media_root,
        live_link=paths.live_link,
        https_names=secure,
        http_addresses=plain,
        email=options.email,
        acme_ca=options.acme_ca,
        acme_ca_root=paths.caddy_acme_ca_root if options.acme_ca_root_pem else None,
    )


def caddyfile(ctx: HostContext) -> str:
    return render("caddyfile.j2", ctx.config_dir, sites_dir=ctx.paths.caddy_sites_dir)


def reload_command(ctx: HostContext) -> str:
    """Validate the whole config, then reload gracefully (start Caddy if it is not running)."""
    return f"caddy validate --config {shell.q(ctx.paths.caddyfile)} --adapter caddyfile && {shell.systemctl('reload-or-restart', 'caddy')}"


def write_site(ctx: HostContext, options: CaddyOptions) -> None:
    """Write the CA root, the site and the main Caddyfile; reload only when one changed."""
    plan, paths = ctx.plan, ctx.paths
    if options.acme_ca_root_pem:
        changed = plan.put_text("caddy: ACME server's CA", paths.caddy_acme_ca_root, options.acme_ca_root_pem, mode="644")
    else:
        changed = plan.absent("caddy: no extra ACME CA", paths.caddy_acme_ca_root)
    changed |= plan.put_text("caddy: site", paths.caddy_site, caddy_site(ctx, options))
    changed |= plan.put_text("caddy: Caddyfile imports the djaploy sites", paths.caddyfile, caddyfile(ctx))
    if changed:
        plan.run("caddy: validate config and reload", reload_command(ctx))


class Module(BaseModule):
    name = NAME
    conflicts = ("nginx", "certs")
    apt_packages = ("caddy",)

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        """Local checks before any connection."""
        caddy_options(target, config_dir)

    def configure_server(self, ctx: HostContext) -> None:
        if "web" not in ctx.target.roles:
            return  # worker, db and lb hosts serve no site
        options = caddy_options(ctx.target, ctx.config_dir)
        stop_other_web_server(ctx, "nginx")
        ctx.plan.packages("caddy: install", self.apt_packages)
        ctx.plan.directory("caddy: site folder", ctx.paths.caddy_sites_dir, mode="755")
        write_site(ctx, options)
        ctx.plan.service("caddy: running and enabled", "caddy")

    def publish(self, ctx: HostContext) -> None:
        if "web" in ctx.target.roles:
            write_site(ctx, caddy_options(ctx.target, ctx.config_dir))

    def verify(self, ctx: HostContext) -> None:
        """With automatic HTTPS, the app must answer over it (plain HTTP only redirects).

        Caddy obtains a new certificate in the background after a reload: allow it 30 s.
        """
        secure, _ = site_addresses(ctx.target.domains, caddy_options(ctx.target, ctx.config_dir).https)
        if secure and "web" in ctx.target.roles:
            path = ctx.target.health_check_path
            ctx.plan.run(f"caddy: HTTPS check {path} for {secure[0]}", shell.https_check(secure[0], path, attempts=60))
