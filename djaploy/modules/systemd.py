"""systemd: run the app's gunicorn as a socket-activated systemd service.

systemd owns the listening socket (`{name}.socket`), so restarting the service onto a new
release never refuses a connection: the old gunicorn stops gracefully (TERM: in-flight requests
finish) while new connections wait in the socket's backlog for the new one.
"""

from __future__ import annotations

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import RemoteError
from djaploy.layout import AppService, project_subdir
from djaploy.modules.base import BaseModule
from djaploy.render import render


def _values(ctx: HostContext, service: AppService) -> dict[str, object]:
    target = ctx.target
    assert ctx.project
    return {
        "project": target.app_name,
        "env": ctx.env,
        "name": service.name,
        "service": service.service,
        "socket_unit": service.socket_unit,
        "app_user": target.app_user,
        "code_link": service.code_link,
        "project_dir": project_subdir(service.code_link, ctx.project.manage_py),
        "env_file": service.env_file,
        "venv_link": service.venv_link,
        "wsgi_application": ctx.wsgi_application,
        "socket": service.socket_path,
        "workers": target.gunicorn_workers,
    }


def gunicorn_unit(ctx: HostContext, service: AppService) -> str:
    return render("gunicorn.service.j2", ctx.config_dir, **_values(ctx, service))


def gunicorn_socket(ctx: HostContext, service: AppService) -> str:
    return render("gunicorn.socket.j2", ctx.config_dir, **_values(ctx, service))


def install_units(ctx: HostContext, service: AppService) -> None:
    """Write the socket and service units; reload systemd only when they changed."""
    changed = ctx.plan.put_text(f"systemd: {service.socket_unit}", service.socket_unit_path, gunicorn_socket(ctx, service))
    changed |= ctx.plan.put_text(f"systemd: {service.service}", service.service_path, gunicorn_unit(ctx, service))
    ctx.plan.service(f"systemd: {service.socket_unit} listening", service.socket_unit, daemon_reload=changed)


def restart(ctx: HostContext, service: AppService) -> None:
    """Start or gracefully restart the service on the release its code link points at.

    A start that fails is retried by the unit's Restart=on-failure: when that brings the service
    up within a few seconds the step goes on and the summary says it happened (seen once in the
    suite: gunicorn exited at start for a reason its journal no longer showed); otherwise the
    failure carries the service's journal, so the user sees why without logging in."""
    step = f"systemd: restart {service.service}"
    try:
        ctx.plan.service(step, service.service, restarted=True, enabled=service.at_boot)
    except RemoteError as error:
        if ctx.plan.query(shell.wait_active(service.service)).stdout.strip() == "active":
            ctx.notes.append(f"{service.service} failed to start once and systemd's Restart=on-failure started it "
                             f"again; see journalctl -u {service.service}")
            return
        journal = ctx.plan.query(shell.journal_tail(service.service)).stdout.rstrip()
        output = f"{error.output.rstrip()}\n--- journalctl -u {service.service} ---\n{journal}" if journal else error.output
        raise RemoteError(error.host, error.step, output, error.hint) from None


class Module(BaseModule):
    name = "systemd"
    option_names = ()

    def publish(self, ctx: HostContext) -> None:
        assert ctx.service
        if "web" in ctx.target.roles:  # a worker host runs no gunicorn (its workers: djaploy.workers)
            install_units(ctx, ctx.service)
            restart(ctx, ctx.service)
        own = {name for service in ctx.paths.all_services() for name in (service.name, service.service)}
        for extra in ctx.target.services:
            if extra not in own:  # 1.x configs list the app's own service: djaploy starts the right one itself
                ctx.plan.service(f"systemd: restart {extra}", extra, restarted=True)
