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

Options (config.py): module_options={"nightly": {"schedule": "*-*-* 03:00:00"}}, a systemd
OnCalendar expression.
"""

from __future__ import annotations

from djaploy.context import HostContext
from djaploy.layout import project_subdir
from djaploy.modules.base import BaseModule

DEFAULT_SCHEDULE = "*-*-* 03:00:00"
COMMAND = "ledger_report"


def unit_name(ctx: HostContext) -> str:
    return f"{ctx.target.project_name}-nightly"


def service_unit(ctx: HostContext) -> str:
    """A oneshot service: manage.py as the app user, with the live release's env file and venv."""
    service, target = ctx.service, ctx.target
    assert service and ctx.project, "route_traffic always has a service and a project"
    return f"""\
# Written by the ledger's nightly module (infra/modules/nightly.py) for {ctx.env}.
[Unit]
Description={target.project_name}: manage.py {COMMAND}

[Service]
Type=oneshot
User={target.app_user}
Group={target.app_user}
WorkingDirectory={project_subdir(service.code_link, ctx.project.manage_py)}
EnvironmentFile={service.env_file}
ExecStart={service.venv_link}/bin/python manage.py {COMMAND}
PrivateTmp=true
NoNewPrivileges=true
"""


def timer_unit(ctx: HostContext) -> str:
    schedule = ctx.target.module_options.get("nightly", {}).get("schedule", DEFAULT_SCHEDULE)
    return f"""\
# Written by the ledger's nightly module (infra/modules/nightly.py) for {ctx.env}.
[Unit]
Description={ctx.target.project_name}: manage.py {COMMAND}, nightly

[Timer]
OnCalendar={schedule}
RandomizedDelaySec=15min
# Catch up on a run missed while the host was down.
Persistent=true

[Install]
WantedBy=timers.target
"""


class NightlyReport(BaseModule):
    name = "nightly"

    def route_traffic(self, ctx: HostContext) -> None:
        """Point the job at the release that now serves; reload systemd only when a unit changed."""
        name = unit_name(ctx)
        changed = ctx.plan.put_text(f"nightly: {name}.service", f"/etc/systemd/system/{name}.service", service_unit(ctx))
        changed |= ctx.plan.put_text(f"nightly: {name}.timer", f"/etc/systemd/system/{name}.timer", timer_unit(ctx))
        ctx.plan.service(f"nightly: {name}.timer enabled", f"{name}.timer", daemon_reload=changed)
