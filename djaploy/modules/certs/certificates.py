"""Certificates on a host: certbot's (and Caddy's), read as openssl summaries, and whether to re-issue.

Only public facts come back to the deploying machine (names, expiry, serial, the ACME server and
certbot's authenticator from the renewal configuration); keys stay on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.layout import AppPaths
from djaploy.modules.certs.options import CertsOptions


@dataclass(frozen=True)
class Certificate:
    """One certificate found on a host (certbot's or Caddy's)."""

    name: str
    source: str  # "certbot" or "caddy"
    domains: tuple[str, ...]
    expires: datetime | None
    serial: str = ""
    server: str = ""  # certbot: its ACME directory; caddy: its issuer folder
    authenticator: str = ""  # certbot: how it proves the domains on renewal ("webroot", "dns-rfc2136")

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
        f'c={shell.q(renewal)}/"$n".conf; [ -f "$c" ] && sed -n -e "s/^server *= */@@server /p" '
        f'-e "s/^authenticator *= */@@authenticator /p" "$c"; done; true'
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
    """Read the listing: '@@cert NAME', openssl's notAfter=/serial=/SAN lines, '@@server URL',
    '@@authenticator NAME'."""
    found: list[dict[str, Any]] = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("@@cert "):
            found.append({"name": line[7:].strip(), "domains": [], "expires": None, "serial": "", "server": "",
                          "authenticator": ""})
        elif not found:
            continue
        elif line.startswith("notAfter="):
            found[-1]["expires"] = _parse_expiry(line[9:])
        elif line.startswith("serial="):
            found[-1]["serial"] = line[7:]
        elif line.startswith("@@server "):
            found[-1]["server"] = line[9:].strip()
        elif line.startswith("@@authenticator "):
            found[-1]["authenticator"] = line[16:].strip()
        elif "DNS:" in line:
            found[-1]["domains"] += [part.strip()[4:] for part in line.split(",") if part.strip().startswith("DNS:")]
    return [Certificate(f["name"], source, tuple(f["domains"]), f["expires"], f["serial"], f["server"], f["authenticator"])
            for f in found]


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
    if current.authenticator and current.authenticator != options.authenticator:
        return f"the challenge changed: certbot renews it with {current.authenticator}"
    if current.expires is None or current.expires <= now:
        return "the certificate has expired"
    return None

