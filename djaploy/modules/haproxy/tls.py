"""HTTPS at the load balancer: certbot on the lb host, HAProxy terminating TLS for the web hosts.

When the lb host lists `djaploy.modules.certs` (module_options["certs"] as on an nginx host; HTTP-01
only), certbot answers the challenge with its own server on 127.0.0.1:ACME_PORT, to which HAProxy
routes `/.well-known/acme-challenge/` (before and after HTTPS is on, so renewals need no stop).
HAProxy reads one PEM holding chain and key: the deploy hook certbot runs after every renewal
(Debian's certbot.timer, twice a day) writes it (0600) and reloads HAProxy the way configureserver
does: config checked, servers' state saved, a graceful reload (the old process finishes its
requests; `expose-fd listeners` hands the sockets over). The web hosts get no certificate: their
nginx trusts the LB's X-Forwarded-Proto (djaploy.modules.nginx).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import ConfigError, RemoteError, display_path
from djaploy.modules.base import load_module_class
from djaploy.modules.certs import install_ca_bundle
from djaploy.modules.certs.certificates import issue_reason, project_certificate
from djaploy.modules.certs.commands import certonly_command
from djaploy.modules.certs.options import CertsOptions, certs_options
from djaploy.modules.haproxy.runtime import check_and_reload
from djaploy.render import render

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from djaploy.config import Target

CERTS = "certs"
#: where certbot's own HTTP-01 server listens on the lb host (loopback only; HAProxy routes to it)
ACME_PORT = 8402
PEM_DIR = "/etc/haproxy/certs"
DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/djaploy-reload-haproxy"


def lists_certs(target: Target) -> bool:
    return any(load_module_class(path).name == CERTS for path in target.modules)


def https_options(target: Target, config_dir: Path | None,
                  environ: Mapping[str, str] | None = None) -> CertsOptions | None:
    """module_options["certs"] for the lb host, answered by certbot's own server; None without certs."""
    if not lists_certs(target):
        return None
    options = certs_options(target, config_dir, environ)
    if options.dns is not None:
        where = display_path(target.source_file)
        raise ConfigError(f"host {target.name}: HTTPS at the load balancer gets its certificate with HTTP-01 "
                          "(HAProxy routes the challenge to certbot); remove the DNS-01 certs options for it",
                          file=where, field="module_options")
    return replace(options, standalone_port=ACME_PORT)


def pem_path(ctx: HostContext) -> str:
    return f"{PEM_DIR}/{ctx.paths.cert_name}.pem"


def has_pem(ctx: HostContext) -> bool:
    """Whether HAProxy's PEM is on the host (only then does the config bind :443)."""
    return ctx.plan.query(f"test -s {shell.q(pem_path(ctx))}").ok


def write_pem_command(ctx: HostContext) -> str:
    """Chain and key into HAProxy's one PEM, never readable by others, swapped in atomically."""
    pem, paths = shell.q(pem_path(ctx)), ctx.paths
    return (f"umask 077 && mkdir -p {shell.q(PEM_DIR)} && cat {shell.q(paths.cert_fullchain)} {shell.q(paths.cert_privkey)}"
            f" > {pem}.new && mv {pem}.new {pem}")


def configure_server(ctx: HostContext, options: CertsOptions) -> None:
    """certbot, the ACME server's CA, the renewal hook and timer (before HAProxy's config routes to it)."""
    ctx.plan.packages("haproxy: install certbot", ("certbot", "openssl"))
    install_ca_bundle(ctx, options)
    hook = render("haproxy_certs_hook.sh.j2", lineage=shell.q(ctx.paths.cert_live_dir), write_pem=write_pem_command(ctx),
                  reload=check_and_reload())
    ctx.plan.put_text("haproxy: certbot's renewal hook writes the PEM and reloads HAProxy", DEPLOY_HOOK, hook, mode="755")
    ctx.plan.service("haproxy: certbot.timer renews twice a day", "certbot.timer")


def ensure_certificate(ctx: HostContext, options: CertsOptions) -> bool:
    """Issue the certificate unless a valid one covers the domains, and write HAProxy's PEM from it;
    True when the PEM changed (the caller reloads HAProxy with the config binding :443)."""
    reason = issue_reason(project_certificate(ctx), options, datetime.now(UTC))
    if reason is not None:
        try:
            ctx.plan.run(f"haproxy: issue certificate for {', '.join(options.domains)} ({reason})",
                         certonly_command(ctx.paths, options))
        except RemoteError as error:
            raise RemoteError(error.host, error.step, error.output, hint=(
                f"certbot got no certificate. Check that DNS for {', '.join(options.domains)} points at the load "
                "balancer and that port 80 reaches HAProxy from the internet. Let's Encrypt allows few failed "
                "attempts per hour: while fixing this, set module_options['certs']['staging'] = True.")) from None
    elif has_pem(ctx):
        return False
    ctx.plan.run("haproxy: certificate and key into HAProxy's PEM", write_pem_command(ctx))
    return True


__all__ = ["ACME_PORT", "DEPLOY_HOOK", "PEM_DIR", "configure_server", "ensure_certificate", "has_pem", "https_options",
           "lists_certs", "pem_path"]
