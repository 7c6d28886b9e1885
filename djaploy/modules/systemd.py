"""systemd: run the app's gunicorn as a systemd service on a unix socket."""

from __future__ import annotations

from djaploy.context import HostContext
from djaploy.modules.base import BaseModule
from djaploy.render import render


def gunicorn_unit(ctx: HostContext) -> str:
    """The unit file for the app's gunicorn, serving this deploy's release."""
    paths, target = ctx.paths, ctx.target
    assert ctx.project
    return render(
        "gunicorn.service.j2",
        project=target.project_name,
        env=ctx.env,
        app_user=target.app_user,
        runtime_dir=paths.runtime_dir_name,
        project_dir=ctx.project_dir,
        env_file=paths.env_file,
        venv_dir=ctx.venv_dir,
        wsgi_application=target.wsgi_application or ctx.project.wsgi_application,
        socket=paths.socket_path,
        workers=target.gunicorn_workers,
    )


class Module(BaseModule):
    name = "systemd"

    def publish(self, ctx: HostContext) -> None:
        paths = ctx.paths
        unit_changed = ctx.plan.put_text("systemd: unit file", paths.unit_path, gunicorn_unit(ctx))
        ctx.plan.service(
            f"systemd: restart {paths.service_name}", paths.service_name, restarted=True, daemon_reload=unit_changed
        )
        for extra in ctx.target.services:
            ctx.plan.service(f"systemd: restart {extra}", extra, restarted=True)
