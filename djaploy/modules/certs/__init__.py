"""certs: Let's Encrypt certificates for nginx hosts, issued and renewed by certbot (HTTP-01).

nginx serves certbot's webroot at ``/.well-known/acme-challenge/`` on port 80 before and after
HTTPS is on, so issuance and every renewal need no downtime and no web server stop. Once the
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
    }}

Keys stay on the host (0600, root, /etc/letsencrypt), outside the app folders, so redeploys
and strategy changes keep them; nothing here reads them back to the deploying machine.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import ConfigError, RemoteError, display_path
from djaploy.layout import AppPaths
from djaploy.modules import nginx
from djaploy.modules.base import BaseModule, load_module_class
from djaploy.modules.options import (
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

NAME = "certs"
LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
OPTION_NAMES = ("email", "acme_server", "staging", "ca_bundle", "domains")


# --- options (checked locally, before any connection) ----------------------------------------


@dataclass(frozen=True)
class CertsOptions:
    """module_options["certs"] of one host, checked and resolved."""

    server: str
    email: str | None
    domains: tuple[str, ...]
    ca_pem: str | None  # PEM text of a CA to trust for the ACME server


def certs_options(target: Target, config_dir: Path | None) -> CertsOptions:
    """Check module_options["certs"] of a host; every error names the option and what to do."""
    raw = module_options(target, NAME)

    def fail(key: str, message: str) -> NoReturn:
        raise option_error(target, config_dir, NAME, key, message)

    check_option_names(raw, OPTION_NAMES, fail)
    staging = raw.get("staging", False)
    if not isinstance(staging, bool):
        fail("staging", f"expected True or False, got {staging!r}")
    if "acme_server" in raw:
        if staging:
            fail("staging", "give either acme_server or staging=True, not both")
        server = check_url(raw["acme_server"], "acme_server", fail)
    else:
        server = LETSENCRYPT_STAGING if staging else LETSENCRYPT
    domains = raw.get("domains", list(target.domains))
    if not isinstance(domains, (list, tuple)) or not all(isinstance(d, str) for d in domains):
        fail("domains", f"expected a list of domain names, got {domains!r}")
    if not domains:
        fail("domains", "a certificate needs domains: set the host's domains (or this option)")
    for domain in domains:
        if is_ip_address(domain):
            fail("domains", f"{domain!r} is an IP address; certificates are issued for domain names "
                            "(serve an IP-only host over plain HTTP: remove the certs module)")
        if domain.startswith("*."):
            fail("domains", f"{domain!r}: wildcard certificates need a DNS-01 challenge; HTTP-01 cannot prove them")
        if not re.fullmatch(r"(?i)([a-z0-9_-]+\.)+[a-z0-9-]+", domain):
            fail("domains", f"{domain!r} is not a domain name like 'example.com'")
    if len(set(domains)) != len(domains):
        fail("domains", "a domain is listed twice")
    email = check_email(raw.get("email"), "email", fail)
    ca_pem = read_ca_pem(raw["ca_bundle"], config_dir, "ca_bundle", fail) if "ca_bundle" in raw else None
    return CertsOptions(server=server, email=email, domains=tuple(domains), ca_pem=ca_pem)


def check_module_order(target: Target, config_dir: Path | None) -> None:
    """certs drives nginx's site: nginx must be configured and run its hooks first."""
    names = [load_module_class(path).name for path in target.modules]
    if "nginx" not in names or names.index("nginx") > names.index(NAME):
        where = display_path(Path(config_dir) / "config.py") if config_dir else "config.py"
        raise ConfigError("the certs module serves its certificates through nginx: list 'djaploy.modules.nginx' "
                          "before 'djaploy.modules.certs' (with caddy, HTTPS is built in: drop certs)",
                          file=where, field="modules")


# --- certificates on the host ---------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """One certificate found on a host (certbot's or Caddy's)."""

    name: str
    source: str  # "certbot" or "caddy"
    domains: tuple[str, ...]
    expires: datetime | None
    serial: str = ""
    server: str = ""  # certbot: its ACME directory; caddy: its issuer folder

    def days_left(self, now: datetime) -> float | None:
        return None if self.expires is None else (self.expires - now).total_seconds() / 86400

    def describe(self, now: datetime) -> str:
        days = self.days_left(now)
        if self.expires is None:
            when = "expiry unknown"
        elif days is not None and days < 0:
            when = f"EXPIRED {self.expires:%Y-%m-%d %H:%M} UTC"
        else:
            when = f"expires {self.expires:%Y-%m-%d %H:%M} UTC (in {days:.0f} days)"
        return f"{self.name} ({self.source}): {', '.join(self.domains) or 'no domains'}; {when}"


def _openssl_summary(cert_file: str) -> str:
    """openssl's expiry, serial and SAN lines for a certificate file (a shell variable or path)."""
    return f'openssl x509 -in "{cert_file}" -noout -enddate -serial -ext subjectAltName 2>/dev/null'


def certbot_listing(paths: AppPaths) -> str:
    """Every certbot certificate on the host, in the format parse_certificates reads."""
    live, renewal = f"{paths.letsencrypt_dir}/live", f"{paths.letsencrypt_dir}/renewal"
    return (
        f'for d in {shell.q(live)}/*/; do [ -f "${{d}}cert.pem" ] || continue; n=$(basename "$d"); '
        f'echo "@@cert $n"; {_openssl_summary("${d}cert.pem")}; '
        f'c={shell.q(renewal)}/"$n".conf; [ -f "$c" ] && sed -n "s/^server *= */@@server /p" "$c"; done; true'
    )


def caddy_listing(paths: AppPaths) -> str:
    """Every certificate Caddy obtained, in the format parse_certificates reads."""
    return (
        f'for f in {shell.q(paths.caddy_certificates_dir)}/*/*/*.crt; do [ -f "$f" ] || continue; '
        f'echo "@@cert $(basename "$f" .crt)"; {_openssl_summary("$f")}; '
        f'echo "@@server $(basename "$(dirname "$(dirname "$f")")")"; done; true'
    )


def _parse_expiry(text: str) -> datetime | None:
    try:
        return datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_certificates(output: str, source: str) -> list[Certificate]:
    """Read the listing: '@@cert NAME', openssl's notAfter=/serial=/SAN lines, '@@server URL'."""
    found: list[dict[str, Any]] = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("@@cert "):
            found.append({"name": line[7:].strip(), "domains": [], "expires": None, "serial": "", "server": ""})
        elif not found:
            continue
        elif line.startswith("notAfter="):
            found[-1]["expires"] = _parse_expiry(line[9:])
        elif line.startswith("serial="):
            found[-1]["serial"] = line[7:]
        elif line.startswith("@@server "):
            found[-1]["server"] = line[9:].strip()
        elif "DNS:" in line:
            found[-1]["domains"] += [part.strip()[4:] for part in line.split(",") if part.strip().startswith("DNS:")]
    return [Certificate(f["name"], source, tuple(f["domains"]), f["expires"], f["serial"], f["server"]) for f in found]


def read_certificates(ctx: HostContext, source: str = "certbot") -> list[Certificate]:
    listing = certbot_listing(ctx.paths) if source == "certbot" else caddy_listing(ctx.paths)
    return parse_certificates(ctx.plan.query(listing).stdout, source)


def project_certificate(ctx: HostContext) -> Certificate | None:
    """This project's certbot lineage (--cert-name = project), if the host has it."""
    return next((cert for cert in read_certificates(ctx) if cert.name == ctx.paths.cert_name), None)


def issue_reason(current: Certificate | None, options: CertsOptions, now: datetime) -> str | None:
    """Why a certificate must be (re)issued now, or None when the one on the host is good."""
    if current is None:
        return "no certificate yet"
    if set(current.domains) != set(options.domains):
        return f"domains changed: the certificate has {', '.join(current.domains) or 'none'}"
    if current.server and current.server != options.server:
        return f"it was issued by another ACME server ({current.server})"
    if current.expires is None or current.expires <= now:
        return "the certificate has expired"
    return None


# --- certbot commands -----------------------------------------------------------------------


def _no_proxy_for(server: str) -> str:
    """Reach the ACME server directly: a proxy in the environment (the sandbox has one) must not
    carry certbot's ACME calls. Added to any existing no_proxy list."""
    host = shell.q(urlsplit(server).hostname or "")
    return f'NO_PROXY="${{NO_PROXY:+$NO_PROXY,}}"{host} no_proxy="${{no_proxy:+$no_proxy,}}"{host}'


def _account_args(options: CertsOptions) -> list[str]:
    contact = ["-m", options.email] if options.email else ["--register-unsafely-without-email"]
    return ["--server", options.server, "--agree-tos", *contact, "--no-eff-email", "--non-interactive"]


def certonly_command(paths: AppPaths, options: CertsOptions) -> str:
    """Issue (or re-issue: --force-renewal, the caller decided) the project's certificate."""
    words = ["certbot", "certonly", "--webroot", "-w", paths.acme_webroot, "--cert-name", paths.cert_name]
    for domain in options.domains:
        words += ["-d", domain]
    words += [*_account_args(options), "--force-renewal"]
    return f"{_no_proxy_for(options.server)} {shell.join(words)}"


def renew_command(paths: AppPaths, options: CertsOptions, *, force: bool) -> str:
    """certbot's own renewal (what the timer runs): the deploy hook reloads nginx after it."""
    words = ["certbot", "renew", "--cert-name", paths.cert_name, "--server", options.server,
             "--no-random-sleep-on-renew", "--non-interactive", *(["--force-renewal"] if force else [])]
    return f"{_no_proxy_for(options.server)} {shell.join(words)}"


# --- the module -----------------------------------------------------------------------------


def install_ca_bundle(ctx: HostContext, options: CertsOptions) -> None:
    """Trust the ACME server's CA system-wide (certbot's timer sees no environment variables)."""
    path = ctx.paths.acme_ca_bundle
    if options.ca_pem:
        if ctx.plan.put_text("certs: trust the ACME server's CA", path, options.ca_pem, mode="644"):
            ctx.plan.run("certs: update the system CA store", "update-ca-certificates")
    elif ctx.plan.absent("certs: no extra CA to trust", path):
        ctx.plan.run("certs: update the system CA store", "update-ca-certificates")


def require_certbot(ctx: HostContext) -> None:
    if ctx.plan.dry_run:
        return
    if not ctx.plan.query("command -v certbot").ok:
        raise RemoteError(ctx.target.name, "certs: check certbot",
                          hint=f"certbot is not installed; run `manage.py configureserver --env {ctx.env}` first")


def ensure_certificate(ctx: HostContext, options: CertsOptions) -> str:
    """Issue the certificate unless a valid one covers the domains; then nginx serves it."""
    current = project_certificate(ctx)
    reason = issue_reason(current, options, datetime.now(UTC))
    if reason is None:
        return "valid certificate kept"
    require_certbot(ctx)
    try:
        ctx.plan.run(f"certs: issue certificate for {', '.join(options.domains)} ({reason})",
                     certonly_command(ctx.paths, options))
    except RemoteError as error:
        raise RemoteError(error.host, error.step, error.output, hint=(
            f"certbot got no certificate. Check that DNS for {', '.join(options.domains)} points at this host and "
            "that port 80 reaches nginx from the internet. Let's Encrypt allows few failed attempts per hour: "
            "while fixing this, set module_options['certs']['staging'] = True.")) from None
    nginx.write_site(ctx, reload=True)  # HTTPS on (first issue) or the new certificate loaded
    return f"certificate issued for {', '.join(options.domains)} ({reason})"


def renew(ctx: HostContext, options: CertsOptions, *, force: bool) -> str:
    """Renew through certbot (its deploy hook reloads nginx); issue first if there is none."""
    before = project_certificate(ctx)
    if before is None or issue_reason(before, options, datetime.now(UTC)):
        return ensure_certificate(ctx, options)
    require_certbot(ctx)
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
        """Local checks before any connection: module order and options."""
        check_module_order(target, config_dir)
        certs_options(target, config_dir)

    def options(self, ctx: HostContext) -> CertsOptions:
        check_module_order(ctx.target, ctx.config_dir)
        return certs_options(ctx.target, ctx.config_dir)

    def configure_server(self, ctx: HostContext) -> None:
        options = self.options(ctx)
        plan, paths = ctx.plan, ctx.paths
        plan.packages("certs: install certbot", self.apt_packages)
        install_ca_bundle(ctx, options)
        for folder in ("/var/www", posixpath.dirname(paths.acme_webroot), paths.acme_webroot):
            plan.directory(f"certs: directory {folder}", folder, mode="755")
        plan.put_text("certs: renewal hook reloads nginx", paths.certbot_deploy_hook,
                      render("certs_deploy_hook.sh.j2"), mode="755")
        plan.service("certs: certbot.timer renews twice a day", "certbot.timer")
        ensure_certificate(ctx, options)

    def publish(self, ctx: HostContext) -> None:
        """A deploy issues when the domains (or the ACME server) changed since the last one."""
        ensure_certificate(ctx, self.options(ctx))
