"""haproxy: the load balancer on `lb` hosts, in front of the environment's `web` hosts.

configureserver installs Debian's haproxy and socat (for the runtime API) and writes haproxy.cfg;
configureserver and, at their end, every deploy, rollback and activate (djaploy.rolling's
`follow_inventory`) rewrite it when the web hosts changed. A host joins the backend
once it answers the health check from the LB (so a host configured but not deployed yet never gets
traffic), and leaves it when it leaves the inventory. The config is reloaded only when it changed,
with the servers' state saved right before, so a reload never undoes a drain (djaploy.modules.
haproxy.drain, used by rolling deploys). Other hosts' hooks do nothing.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from djaploy.context import HostContext
from djaploy.errors import ConfigError, DjaployError, display_path
from djaploy.modules.base import BaseModule
from djaploy.modules.certs.certificates import issue_reason, project_certificate
from djaploy.modules.certs.commands import renew_command
from djaploy.modules.haproxy import tls
from djaploy.modules.haproxy.config import config_problem, haproxy_config, health_host, web_servers
from djaploy.modules.haproxy.runtime import CONFIG_FILE, backend_members, check_and_reload
from djaploy.modules.options import checked_options

if TYPE_CHECKING:
    from djaploy.config import Target
    from djaploy.modules.certs.options import CertsOptions

NAME = "haproxy"
ROLE = "lb"


def is_lb(target: Target) -> bool:
    return ROLE in target.roles


class BackendSync(NamedTuple):
    changed: bool
    servers: list[str]  # the web hosts in the backend now
    waiting: list[str]  # web hosts of the inventory left out: they do not answer the health check yet

    def describe(self) -> str:
        held = ", ".join(self.servers) or "no web host"
        waiting = f"; not serving yet: {', '.join(self.waiting)}" if self.waiting else ""
        return f"backend {held}{waiting}" + (" (updated and reloaded)" if self.changed else "")


def sync_backend(ctx: HostContext) -> BackendSync:
    """Write haproxy.cfg for the web hosts that serve now; reload (state saved first) only when it changed."""
    target = ctx.target
    candidates = web_servers(ctx.fleet)
    found = ctx.plan.query(backend_members([(s.name, s.address) for s in candidates], health_host(target),
                                           target.health_check_path))
    serving = set(found.stdout.split()) if found.ok else set()
    servers = candidates if ctx.plan.dry_run else [server for server in candidates if server.name in serving]
    waiting = [server.name for server in candidates if server not in servers]
    https = tls.lists_certs(target)
    pem = tls.pem_path(ctx) if https and tls.has_pem(ctx) else None
    config = haproxy_config(target, ctx.fleet, servers, env=ctx.env, config_dir=ctx.config_dir,
                            acme_port=tls.ACME_PORT if https else None, tls_pem=pem)
    sync = BackendSync(False, [server.name for server in servers], waiting)
    changed = ctx.plan.put_text(f"haproxy: config ({sync.describe()})", CONFIG_FILE, config)
    if changed:
        ctx.plan.run("haproxy: check config, save server state, reload", check_and_reload())
    return sync._replace(changed=changed)


def ensure_https(ctx: HostContext, options: CertsOptions) -> bool:
    """The certificate issued when due and HAProxy serving it: on a first issue the config gains
    :443; a new certificate in the same PEM is loaded by a reload. True when it changed."""
    if not tls.ensure_certificate(ctx, options):
        return False
    if not sync_backend(ctx).changed:
        ctx.plan.run("haproxy: load the new certificate (check config, save server state, reload)", check_and_reload())
    return True


def renew_https(ctx: HostContext, options: CertsOptions, *, force: bool) -> str:
    """`manage.py certs --renew` on the lb host: certbot's renewal, whose deploy hook rewrites the PEM
    and reloads HAProxy; issue first if there is none."""
    before = project_certificate(ctx)
    if before is None or issue_reason(before, options, datetime.now(UTC)):
        return "certificate issued; HAProxy serves it" if ensure_https(ctx, options) else "valid certificate kept"
    ctx.plan.run("haproxy: renew the certificate" + (" (forced)" if force else ""),
                 renew_command(ctx.paths, options, force=force))
    after = project_certificate(ctx)
    if after and after.serial != before.serial:
        return "certificate renewed; HAProxy reloaded by the deploy hook"
    return "not due for renewal (--force renews anyway)"


class Module(BaseModule):
    name = NAME
    apt_packages = ("haproxy", "socat")
    option_names = ()

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        """A host cannot be both the LB and a web host (both want port 80)."""
        checked_options(target, config_dir, self, ())
        if is_lb(target) and "web" in target.roles:
            where = display_path(target.source_file)
            raise ConfigError(f"host {target.name} has the roles 'lb' and 'web': the load balancer and the web "
                              "server both listen on port 80; give the lb role to a host of its own",
                              file=where, field="roles")
        if is_lb(target):
            tls.https_options(target, config_dir)  # the certs options it would use: checked now
        problem = config_problem(target, [target]) if is_lb(target) else None
        if problem:
            raise ConfigError(f"host {target.name}: {problem}", file=display_path(target.source_file))

    def configure_server(self, ctx: HostContext) -> None:
        if not is_lb(ctx.target):
            return
        problem = config_problem(ctx.target, ctx.fleet)
        if problem:
            raise DjaployError(f"[{ctx.target.name}] haproxy: {problem}")
        ctx.plan.packages("haproxy: install haproxy and socat", self.apt_packages)
        https = tls.https_options(ctx.target, ctx.config_dir, os.environ)
        if https:
            tls.configure_server(ctx, https)
        sync_backend(ctx)
        ctx.plan.service("haproxy: running and enabled", "haproxy")
        if https:
            ensure_https(ctx, https)


__all__ = ["BackendSync", "Module", "ensure_https", "is_lb", "renew_https", "sync_backend"]
