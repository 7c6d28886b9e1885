"""nightly: run `manage.py ledger_report` every night, with a systemd timer.

The ledger's own djaploy module, written only against djaploy's public module API: a
BaseModule subclass whose hooks change the host through `ctx.plan`. docs/writing-modules.md
walks through it.

The job must run the release that serves traffic, with that release's environment file (its
settings and secrets) and virtualenv. So the units are written in `route_traffic`, the hook
that runs whenever traffic moves to `ctx.service`: after every in_place and zero_downtime
deploy, and on bluegreen activate and rollback (a bluegreen deploy that only stages a slot
leaves the job on the live slot). They run from the service's code link (code/, current or
slots/<slot>), so they stay the same from release to release and rewriting them is a no-op.
The unit texts are templates of the project (infra/templates/nightly.*.j2), rendered with
djaploy.render like the built-in modules' own.

Options (config.py): module_options={"nightly": {"schedule": "*-*-* 03:00:00"}}, a systemd
OnCalendar expression.
"""

from __future__ import annotations

from djaploy.context import HostContext
from djaploy.layout import project_subdir
from djaploy.modules.base import BaseModule
from djaploy.modules.options import module_options
from djaploy.render import render

DEFAULT_SCHEDULE = "*-*-* 03:00:00"
COMMAND = "ledger_report"


def unit_name(ctx: HostContext) -> str:
    return f"{ctx.target.project_name}-nightly"


def service_unit(ctx: HostContext) -> str:
    """A oneshot service: manage.py as the app user, with the live release's env file and venv."""
    service, target = ctx.service, ctx.target
    assert service and ctx.project, "route_traffic always has a service and a project"
    return render("nightly.service.j2", ctx.config_dir, env=ctx.env, project=target.project_name, command=COMMAND,
                  app_user=target.app_user, project_dir=project_subdir(service.code_link, ctx.project.manage_py),
                  env_file=service.env_file, venv_link=service.venv_link)


def timer_unit(ctx: HostContext) -> str:
    schedule = module_options(ctx.target, NightlyReport).get("schedule", DEFAULT_SCHEDULE)
    return render("nightly.timer.j2", ctx.config_dir, env=ctx.env, project=ctx.target.project_name, command=COMMAND,
                  schedule=schedule)


class NightlyReport(BaseModule):
    name = "nightly"
    option_names = ("schedule",)  # any other option is refused before connecting, with "did you mean"

    def route_traffic(self, ctx: HostContext) -> None:
        """Point the job at the release that now serves; reload systemd only when a unit changed."""
        name = unit_name(ctx)
        changed = ctx.plan.put_text(f"nightly: {name}.service", f"/etc/systemd/system/{name}.service", service_unit(ctx))
        changed |= ctx.plan.put_text(f"nightly: {name}.timer", f"/etc/systemd/system/{name}.timer", timer_unit(ctx))
        ctx.plan.service(f"nightly: {name}.timer enabled", f"{name}.timer", daemon_reload=changed)
