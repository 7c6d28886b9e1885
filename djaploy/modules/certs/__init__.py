"""certs: Let's Encrypt certificates for nginx hosts, issued and renewed by certbot (HTTP-01 or DNS-01).

HTTP-01 (the default): nginx serves certbot's webroot at ``/.well-known/acme-challenge/`` on
port 80 before and after HTTPS is on, so issuance and every renewal need no downtime and no web
server stop. DNS-01: certbot's ``dns-<plugin>`` authenticator proves the domains with TXT records
at the DNS provider, which also gives wildcard certificates and certificates for hosts behind a
load balancer; its credentials live in a 0600 root file on the host, never on argv. Once the
certificate is on the host, the nginx site gains its HTTPS server and HTTP redirects to it
(except the ACME path). Renewal is Debian's ``certbot.timer`` (twice a day); the deploy hook
this module installs validates and reloads nginx after each renewal. ``manage.py certs``
issues or renews on demand.

    module_options={"certs": {
        "email": "ops@example.com",            # ACME account contact (optional)
        "staging": True,                       # Let's Encrypt's staging directory, or:
        "acme_server": "https://.../dir",      # any ACME directory (default: Let's Encrypt)
        "ca_bundle": "acme-ca.pem",            # a CA to trust for that server (file or PEM text)
        "domains": ["example.com"],            # default: the host's domains
        "challenge": "dns-01",                 # default "http-01"; DNS-01 allows "*.example.com"
        "dns_plugin": "cloudflare",            # certbot's dns-<plugin>; Debian's python3-certbot-dns-<plugin>
        "dns_credentials": {"dns_cloudflare_api_token": "env:CLOUDFLARE_API_TOKEN"},
        "dns_propagation_seconds": 30,         # default: the plugin's own
    }}

Options: options.py; what the host holds: certificates.py; certbot's commands: commands.py.
Keys stay on the host (0600, root, /etc/letsencrypt), outside the app folders, so redeploys
and strategy changes keep them; nothing here reads them back to the deploying machine.
"""

from __future__ import annotations

import os
import posixpath
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from djaploy.context import HostContext
from djaploy.errors import RemoteError
from djaploy.fleet import load_balancers
from djaploy.modules import nginx
from djaploy.modules.base import BaseModule
from djaploy.modules.options import env_variable
from djaploy.modules.certs.certificates import issue_reason, project_certificate
from djaploy.modules.certs.commands import (
    certonly_command,
    credentials_file,
    renew_command,
)
from djaploy.modules.certs.options import (
    NAME,
    CertsOptions,
    certs_options,
    check_module_order,
)
from djaploy.render import render

if TYPE_CHECKING:
    from djaploy.config import Target


# --- the module -----------------------------------------------------------------------------


def serves_https(ctx: HostContext) -> bool:
    """Whether this host's nginx holds the certificate: a web host, unless a load balancer fronts the
    environment (HTTPS then terminates there: djaploy.modules.haproxy.tls does certbot on the lb host)."""
    return "web" in ctx.target.roles and not load_balancers(ctx.fleet)


def install_ca_bundle(ctx: HostContext, options: CertsOptions) -> None:
    """Trust the ACME server's CA system-wide (certbot's timer sees no environment variables)."""
    path = ctx.paths.acme_ca_bundle
    if options.ca_pem:
        if ctx.plan.put_text("certs: trust the ACME server's CA", path, options.ca_pem, mode="644"):
            ctx.plan.run("certs: update the system CA store", "update-ca-certificates")
    elif ctx.plan.absent("certs: no extra CA to trust", path):
        ctx.plan.run("certs: update the system CA store", "update-ca-certificates")


def install_dns_credentials(ctx: HostContext, options: CertsOptions) -> None:
    """DNS-01: the plugin's credentials in a file only root reads (written privately: never
    readable by anyone else, not for a moment). With HTTP-01 no such file stays behind."""
    path = ctx.paths.certbot_dns_credentials
    if options.dns is None or not options.dns.credentials:
        ctx.plan.absent("certs: no DNS credentials", path)
        return
    ctx.plan.directory("certs: directory for DNS credentials", posixpath.dirname(path), mode="700")
    ctx.plan.put_text(f"certs: {options.dns.authenticator} credentials", path, credentials_file(options.dns), mode="600")


def _issue_hint(options: CertsOptions) -> str:
    domains = ", ".join(options.domains)
    if options.dns:
        return (f"certbot got no certificate through {options.dns.authenticator}. Its message above says why: check "
                f"module_options['certs']['dns_credentials'], that the provider serves the zone of {domains}, and "
                "raise 'dns_propagation_seconds' if the TXT records appear slowly. Let's Encrypt allows few failed "
                "attempts per hour: while fixing this, set module_options['certs']['staging'] = True.")
    return (f"certbot got no certificate. Check that DNS for {domains} points at this host and "
            "that port 80 reaches nginx from the internet. Let's Encrypt allows few failed attempts per hour: "
            "while fixing this, set module_options['certs']['staging'] = True.")


def require_certbot(ctx: HostContext) -> None:
    if ctx.plan.dry_run:
        return
    if not ctx.plan.query("command -v certbot").ok:
        raise RemoteError(ctx.target.name, "certs: check certbot",
                          hint=f"certbot is not installed; run `manage.py configureserver --env {ctx.env}` first")


def ensure_certificate(ctx: HostContext, options: CertsOptions) -> str:
    """Issue the certificate unless a valid one covers the domains; then nginx serves it."""
    install_dns_credentials(ctx, options)  # a rotated credential reaches the timer's renewals too
    current = project_certificate(ctx)
    reason = issue_reason(current, options, datetime.now(UTC))
    if reason is None:
        return "valid certificate kept"
    require_certbot(ctx)
    try:
        ctx.plan.run(f"certs: issue certificate for {', '.join(options.domains)} ({reason})",
                     certonly_command(ctx.paths, options))
    except RemoteError as error:
        raise RemoteError(error.host, error.step, error.output, hint=_issue_hint(options)) from None
    nginx.write_site(ctx, reload=True)  # HTTPS on (first issue) or the new certificate loaded
    return f"certificate issued for {', '.join(options.domains)} ({reason})"


def renew(ctx: HostContext, options: CertsOptions, *, force: bool) -> str:
    """Renew through certbot (its deploy hook reloads nginx); issue first if there is none."""
    before = project_certificate(ctx)
    if before is None or issue_reason(before, options, datetime.now(UTC)):
        return ensure_certificate(ctx, options)
    require_certbot(ctx)
    install_dns_credentials(ctx, options)
    ctx.plan.run("certs: renew" + (" (forced)" if force else ""), renew_command(ctx.paths, options, force=force))
    after = project_certificate(ctx)
    if after and after.serial != before.serial:
        return "certificate renewed; nginx reloaded by the deploy hook"
    return "not due for renewal (--force renews anyway)"


class Module(BaseModule):
    name = NAME
    conflicts = ("caddy",)
    apt_packages = ("certbot", "openssl")

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        """Local checks before any connection: module order and options ("env:" credentials are
        read only by the hooks that write them: status and unlock work without them)."""
        check_module_order(target, config_dir)
        certs_options(target, config_dir, environ=None)

    def secret_values(self, target: Target, config_dir: Path | None) -> list[str]:
        """The DNS plugin's credentials read from the deployer's environment ("env:NAME", where set);
        literal ones (a server address, an algorithm) are in the repository and stay readable."""
        dns = certs_options(target, config_dir, environ=None).dns
        names = [name for _, value in dns.credentials if (name := env_variable(value))] if dns else []
        return [os.environ[name] for name in names if os.environ.get(name)]

    def options(self, ctx: HostContext) -> CertsOptions:
        check_module_order(ctx.target, ctx.config_dir)
        return certs_options(ctx.target, ctx.config_dir, os.environ)

    def configure_server(self, ctx: HostContext) -> None:
        if not serves_https(ctx):
            return
        options = self.options(ctx)
        plan, paths = ctx.plan, ctx.paths
        plugin = (options.dns.package,) if options.dns else ()
        plan.packages("certs: install certbot" + (f" and {plugin[0]}" if plugin else ""), (*self.apt_packages, *plugin))
        install_ca_bundle(ctx, options)
        for folder in ("/var/www", posixpath.dirname(paths.acme_webroot), paths.acme_webroot):
            plan.directory(f"certs: directory {folder}", folder, mode="755")
        plan.put_text("certs: renewal hook reloads nginx", paths.certbot_deploy_hook,
                      render("certs_deploy_hook.sh.j2"), mode="755")
        plan.service("certs: certbot.timer renews twice a day", "certbot.timer")
        ensure_certificate(ctx, options)

    def publish(self, ctx: HostContext) -> None:
        """A deploy issues when the domains (or the ACME server, or the challenge) changed since the last one."""
        if serves_https(ctx):
            ensure_certificate(ctx, self.options(ctx))
