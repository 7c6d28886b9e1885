"""`manage.py certs`: issue or renew certificates on demand, and show what each host holds.

nginx hosts (certs module): issue where the certificate is missing or no longer covers the
domains; with ``renew``, run certbot's renewal (``force``: even when not due), whose deploy
hook reloads nginx. Caddy hosts: Caddy obtains and renews by itself; their certificates are
listed. Certificates and keys never leave the hosts: only openssl's summary (domains, expiry,
serial) is read back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from djaploy.context import HostContext
from djaploy.modules import certs as certs_module
from djaploy.modules.base import BaseModule
from djaploy.modules.certs.certificates import Certificate, read_certificates
from djaploy.modules.certs.options import certs_options
from djaploy.session import RunResult, open_session, run_on_hosts
from djaploy.locks import locked


def _module(modules: list[BaseModule], name: str) -> BaseModule | None:
    return next((module for module in modules if module.name == name), None)


def manage_certificates(ctx: HostContext, modules: list[BaseModule], *, renew: bool, force: bool) -> tuple[str, list[Any]]:
    """One host: issue or renew as asked; return (what happened, the certificates it holds)."""
    certs = _module(modules, "certs")
    if certs is not None and not certs_module.serves_https(ctx):
        return _at_load_balancer(ctx, modules, renew=renew, force=force), read_certificates(ctx, "certbot")
    if certs is not None:
        options = certs_options(ctx.target, ctx.config_dir)
        audit: dict[str, Any] = {"renew": renew, "force": force}
        with locked(ctx, "certs", audit):
            if renew or force:
                message = certs_module.renew(ctx, options, force=force)
            else:
                message = certs_module.ensure_certificate(ctx, options)
        return message, read_certificates(ctx, "certbot")
    if _module(modules, "caddy") is not None:
        message = "Caddy obtains and renews its certificates itself"
        if renew or force:
            message += " (--renew/--force apply to the certs module only)"
        return message, read_certificates(ctx, "caddy")
    return "no certs or caddy module: no certificates are managed here", []


def _at_load_balancer(ctx: HostContext, modules: list[BaseModule], *, renew: bool, force: bool) -> str:
    """HTTPS terminates at the lb host (djaploy.modules.haproxy.tls): issue or renew there; others hold none."""
    from djaploy.modules.haproxy import ensure_https, renew_https, tls

    options = tls.https_options(ctx.target, ctx.config_dir) if _module(modules, "haproxy") else None
    if options is None or "lb" not in ctx.target.roles:
        return "HTTPS terminates at the load balancer: no certificate here"
    if renew or force:
        return renew_https(ctx, options, force=force)
    return "certificate issued; HAProxy serves it" if ensure_https(ctx, options) else "valid certificate kept"


def certificates(config_dir: Path, env: str, *, out: TextIO, renew: bool = False, force: bool = False,
                 dry_run: bool = False, verbosity: int = 1, log: TextIO | None = None) -> RunResult:
    """Issue missing certificates (or renew: `renew`, even when not due: `force`) on every host."""
    session = open_session(config_dir, env, out, verbosity, log)
    result = RunResult("certs", env, dry_run)

    def work(ctx: HostContext, modules: list[BaseModule]) -> str:
        message, held = manage_certificates(ctx, modules, renew=renew, force=force)
        result.data[ctx.target.name] = held
        return message

    return run_on_hosts(session, result, work)


def format_certificates(host: str, held: list[Certificate], now: datetime | None = None) -> list[str]:
    """One line per certificate: name, source, domains, expiry."""
    now = now or datetime.now(UTC)
    if not held:
        return [f"[{host}] no certificates"]
    return [f"[{host}] {cert.describe(now)}" for cert in held]


def certificate_definitions(config_dir: Path, env: str | None = None) -> list[str]:
    """What certificate each host should hold (its domains, and who obtains it), read locally:
    `manage.py update_certs` shows these before (with --env) making the hosts match them."""
    from djaploy.inventory import list_environments, load_targets_without_secrets
    from djaploy.layout import AppPaths
    from djaploy.modules.base import load_module_class

    lines = []
    for name in [env] if env else list_environments(config_dir):
        _, targets = load_targets_without_secrets(config_dir, name)
        for target in targets:
            modules = {load_module_class(path).name for path in target.modules}
            if "certs" in modules:
                source = f"certbot lineage {AppPaths.for_target(target).cert_name} (certs module)"
            elif "caddy" in modules:
                source = "Caddy obtains and renews it"
            else:
                source = "not managed: add djaploy.modules.certs (nginx) or use djaploy.modules.caddy"
            domains = ", ".join(target.domains) or "no domains"
            lines.append(f"[{name}/{target.name}] {domains}: {source}")
    return lines
