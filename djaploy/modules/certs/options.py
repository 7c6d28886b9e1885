"""module_options["certs"] of one host, checked locally before any connection and resolved.

Every error names config.py, the host and the option (`option_error`). DNS-01 credentials given
as "env:NAME" are read from the deployer's environment only when a command needs them
(`resolve_credentials`): `status` and `unlock` work for someone who has not exported them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from djaploy.errors import ConfigError, display_path
from djaploy.modules.base import load_module_class
from djaploy.modules.options import (
    ENV_NAME_RE,
    ENV_PREFIX,
    Fail,
    check_bool,
    check_email,
    check_option_names,
    check_url,
    env_variable,
    is_ip_address,
    module_options,
    option_error,
    read_ca_pem,
)

if TYPE_CHECKING:
    from djaploy.config import Target

NAME = "certs"
LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
CHALLENGES = ("http-01", "dns-01")
OPTION_NAMES = ("email", "acme_server", "staging", "ca_bundle", "domains",
                "challenge", "dns_plugin", "dns_credentials", "dns_propagation_seconds", "dns_package")
DNS_OPTIONS = OPTION_NAMES[6:]
#: a value of dns_credentials read from the deployer's environment (like secrets)
DOMAIN_RE = re.compile(r"(?i)(\*\.)?([a-z0-9_-]+\.)+[a-z0-9-]+")
PLUGIN_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
CREDENTIAL_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
DEBIAN_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")


@dataclass(frozen=True)
class DnsChallenge:
    """DNS-01 through certbot's `dns-<plugin>` authenticator.

    credentials: (certbot credential key, value) pairs for the plugin's INI file; a value is
    literal, or "env:NAME" until `resolve_credentials` reads it. Never in repr: values are secret.
    """

    plugin: str
    package: str  # the Debian package configureserver installs
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    propagation_seconds: int | None = None

    @property
    def authenticator(self) -> str:
        return f"dns-{self.plugin}"


@dataclass(frozen=True)
class CertsOptions:
    """module_options["certs"] of one host, checked and resolved."""

    server: str
    email: str | None
    domains: tuple[str, ...]
    ca_pem: str | None  # PEM text of a CA to trust for the ACME server
    dns: DnsChallenge | None = None  # None: HTTP-01 through nginx's webroot
    #: HTTP-01 answered by certbot's own server on 127.0.0.1:<port> instead (an lb host: HAProxy routes
    #: the challenge path to it; djaploy.modules.haproxy.tls)
    standalone_port: int | None = None

    @property
    def authenticator(self) -> str:
        """certbot's authenticator, as its renewal configuration records it."""
        if self.dns:
            return self.dns.authenticator
        return "standalone" if self.standalone_port else "webroot"


def certs_options(target: Target, config_dir: Path | None,
                  environ: Mapping[str, str] | None = os.environ) -> CertsOptions:
    """Check module_options["certs"] of a host; every error names the option and what to do.
    `environ` None: "env:" credentials are checked in form only, not read."""
    raw = module_options(target, NAME)

    def fail(key: str, message: str) -> NoReturn:
        raise option_error(target, config_dir, NAME, key, message)

    check_option_names(raw, OPTION_NAMES, fail)
    staging = check_bool(raw, "staging", False, fail)
    if "acme_server" in raw:
        if staging:
            fail("staging", "give either acme_server or staging=True, not both")
        server = check_url(raw["acme_server"], "acme_server", fail)
    else:
        server = LETSENCRYPT_STAGING if staging else LETSENCRYPT
    dns = dns_challenge(raw, fail)
    if dns is not None and environ is not None:
        dns = resolve_credentials(dns, environ, fail)
    domains = check_domains(raw.get("domains", list(target.domains)), dns is not None, fail)
    email = check_email(raw.get("email"), "email", fail)
    ca_pem = read_ca_pem(raw["ca_bundle"], config_dir, "ca_bundle", fail) if "ca_bundle" in raw else None
    return CertsOptions(server=server, email=email, domains=domains, ca_pem=ca_pem, dns=dns)


def check_domains(domains: object, dns_01: bool, fail: Fail) -> tuple[str, ...]:
    """Names a CA can certify: no IP addresses; wildcards only where DNS-01 proves them."""
    if not isinstance(domains, (list, tuple)) or not all(isinstance(d, str) for d in domains):
        fail("domains", f"expected a list of domain names, got {domains!r}")
    if not domains:
        fail("domains", "a certificate needs domains: set the host's domains (or this option)")
    for domain in domains:
        if is_ip_address(domain):
            fail("domains", f"{domain!r} is an IP address; certificates are issued for domain names "
                            "(serve an IP-only host over plain HTTP: remove the certs module)")
        if domain.startswith("*.") and not dns_01:
            fail("domains", f"{domain!r}: wildcard certificates need a DNS-01 challenge; HTTP-01 cannot prove them "
                            "(set 'challenge': 'dns-01' and a 'dns_plugin')")
        if not DOMAIN_RE.fullmatch(domain):
            fail("domains", f"{domain!r} is not a domain name like 'example.com' (or '*.example.com' with DNS-01)")
    if len(set(domains)) != len(domains):
        fail("domains", "a domain is listed twice")
    return tuple(domains)


def dns_challenge(raw: Mapping[str, object], fail: Fail) -> DnsChallenge | None:
    """The DNS-01 settings, or None for HTTP-01 (then no dns_* option may be set)."""
    challenge = raw.get("challenge", "http-01")
    if challenge not in CHALLENGES:
        fail("challenge", f"expected one of {', '.join(map(repr, CHALLENGES))}, got {challenge!r}")
    if challenge == "http-01":
        for key in DNS_OPTIONS:
            if key in raw:
                fail(key, "applies to DNS-01 only: set 'challenge': 'dns-01' too (or remove it)")
        return None
    plugin = raw.get("dns_plugin")
    if not isinstance(plugin, str) or not PLUGIN_RE.fullmatch(plugin):
        fail("dns_plugin", f"DNS-01 needs certbot's DNS plugin name, like 'rfc2136' or 'cloudflare'; got {plugin!r}")
    if plugin.startswith("dns-"):
        fail("dns_plugin", f"give the plugin's name without 'dns-': {plugin[4:]!r}")
    package = raw.get("dns_package", f"python3-certbot-dns-{plugin}")
    if not isinstance(package, str) or not DEBIAN_PACKAGE_RE.fullmatch(package):
        fail("dns_package", f"expected a Debian package name like 'python3-certbot-dns-{plugin}', got {package!r}")
    seconds = raw.get("dns_propagation_seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= 3600):
        fail("dns_propagation_seconds", f"expected whole seconds from 0 to 3600, got {seconds!r}")
    return DnsChallenge(plugin, package, check_credentials(raw.get("dns_credentials", {}), fail), seconds)


def check_credentials(credentials: object, fail: Fail) -> tuple[tuple[str, str], ...]:
    """Keys as the plugin's documentation names them; values fit on one INI line."""
    if not isinstance(credentials, Mapping):
        fail("dns_credentials", "expected a dict of the plugin's credential keys to values, like "
                                "{'dns_cloudflare_api_token': 'env:CLOUDFLARE_API_TOKEN'}; "
                                f"got {type(credentials).__name__}")
    for key, value in credentials.items():
        if not isinstance(key, str) or not CREDENTIAL_KEY_RE.fullmatch(key):
            fail("dns_credentials", f"{key!r} is not a credential key like 'dns_rfc2136_secret'")
        if not isinstance(value, str) or not value:
            fail("dns_credentials", f"{key}: expected a non-empty string (or 'env:NAME'), got {type(value).__name__}")
        if value.startswith(ENV_PREFIX) and not ENV_NAME_RE.fullmatch(value[len(ENV_PREFIX):]):
            fail("dns_credentials", f"{key}: 'env:' must be followed by a variable name")
        check_credential_value(key, value, fail)
    return tuple(credentials.items())


def check_credential_value(key: str, value: str, fail: Fail) -> None:
    """The INI file quotes every value (certbot's parser would split one at ',' or end it at '#')."""
    if "\n" in value or "\r" in value:
        fail("dns_credentials", f"{key}: the value contains a newline; it must fit on one line of the credentials file")
    if '"' in value and "'" in value:
        fail("dns_credentials", f"{key}: the value contains both quote characters, which the credentials file "
                                "cannot hold")


def resolve_credentials(dns: DnsChallenge, environ: Mapping[str, str], fail: Fail) -> DnsChallenge:
    """Read each "env:NAME" value from `environ` (the deployer's shell)."""
    resolved = []
    for key, value in dns.credentials:
        if (variable := env_variable(value)) is not None:
            if not environ.get(variable):
                fail("dns_credentials", f"{key} reads ${variable}, which is not set in your environment")
            value = environ[variable]
            check_credential_value(key, value, fail)
        resolved.append((key, value))
    return DnsChallenge(dns.plugin, dns.package, tuple(resolved), dns.propagation_seconds)


def check_module_order(target: Target, config_dir: Path | None) -> None:
    """certs drives nginx's site: nginx must be configured and run its hooks first."""
    names = [load_module_class(path).name for path in target.modules]
    if "nginx" not in names or names.index("nginx") > names.index(NAME):
        where = display_path(Path(config_dir) / "config.py") if config_dir else "config.py"
        raise ConfigError("the certs module serves its certificates through nginx: list 'djaploy.modules.nginx' "
                          "before 'djaploy.modules.certs' (with caddy, HTTPS is built in: drop certs)",
                          file=where, field="modules")
