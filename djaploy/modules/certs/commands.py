"""certbot's commands and the DNS plugin's credentials file, as data (every word quoted).

Secrets never go on certbot's argv: a DNS plugin reads them from its credentials file, which
certbot's renewal configuration names, so the timer's renewals find them too.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from djaploy import shell
from djaploy.layout import AppPaths
from djaploy.modules.certs.options import CertsOptions, DnsChallenge


def _no_proxy_for(server: str) -> str:
    """Reach the ACME server directly: a proxy in the environment (the sandbox has one) must not
    carry certbot's ACME calls. Added to any existing no_proxy list."""
    host = shell.q(urlsplit(server).hostname or "")
    return f'NO_PROXY="${{NO_PROXY:+$NO_PROXY,}}"{host} no_proxy="${{no_proxy:+$no_proxy,}}"{host}'


def _account_args(options: CertsOptions) -> list[str]:
    contact = ["-m", options.email] if options.email else ["--register-unsafely-without-email"]
    return ["--server", options.server, "--agree-tos", *contact, "--no-eff-email", "--non-interactive"]


def _challenge_args(paths: AppPaths, options: CertsOptions) -> list[str]:
    """HTTP-01 through nginx's webroot (or certbot's own server behind HAProxy), or DNS-01 through
    the plugin (its own option names)."""
    dns = options.dns
    if dns is None and options.standalone_port:
        return ["--standalone", "--http-01-address", "127.0.0.1", "--http-01-port", str(options.standalone_port)]
    if dns is None:
        return ["--webroot", "-w", paths.acme_webroot]
    words = ["--authenticator", dns.authenticator]
    if dns.credentials:
        words += [f"--{dns.authenticator}-credentials", paths.certbot_dns_credentials]
    if dns.propagation_seconds is not None:
        words += [f"--{dns.authenticator}-propagation-seconds", str(dns.propagation_seconds)]
    return words


def certonly_command(paths: AppPaths, options: CertsOptions) -> str:
    """Issue (or re-issue: --force-renewal, the caller decided) the project's certificate."""
    words = ["certbot", "certonly", *_challenge_args(paths, options), "--cert-name", paths.cert_name]
    for domain in options.domains:
        words += ["-d", domain]
    words += [*_account_args(options), "--force-renewal"]
    return f"{_no_proxy_for(options.server)} {shell.join(words)}"


def renew_command(paths: AppPaths, options: CertsOptions, *, force: bool) -> str:
    """certbot's own renewal (what the timer runs): the deploy hook reloads nginx after it."""
    words = ["certbot", "renew", "--cert-name", paths.cert_name, "--server", options.server,
             "--no-random-sleep-on-renew", "--non-interactive", *(["--force-renewal"] if force else [])]
    return f"{_no_proxy_for(options.server)} {shell.join(words)}"


def credentials_file(dns: DnsChallenge) -> str:
    """The plugin's INI file. Every value is quoted: certbot's parser (configobj) would read an
    unquoted 'a,b' as a list and cut a value at '#'. Options refuse a value holding both quotes."""
    lines = [f"# Written by djaploy from module_options['certs']['dns_credentials'] for certbot's {dns.authenticator}."]
    for key, value in dns.credentials:
        quote = "'" if '"' in value else '"'
        lines.append(f"{key} = {quote}{value}{quote}")
    return "\n".join(lines) + "\n"
