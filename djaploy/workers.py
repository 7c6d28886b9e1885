"""Workers on a host: one systemd service per entry of config.py's `workers`, run from the live release.

A worker host runs every worker, except that a singleton (a scheduler) runs only on the first
worker host of the inventory. After the web hosts switched, every deploy and rollback rewrites
the units (they name the live release's code link) and restarts them: TERM, then the worker's
grace period to finish its job in flight. Units of workers that were removed from config.py,
or of a host that lost the worker role, are stopped and removed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from djaploy import shell
from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.fleet import with_role
from djaploy.layout import ENV_FILE_NAME, VENV_LINK_NAME, project_subdir
from djaploy.render import render
from djaploy.state import serving
from djaploy.worker_settings import Worker, parse_workers

__all__ = ["placement", "update_workers", "worker_unit"]


def placement(targets: Sequence[Target]) -> dict[str, tuple[Worker, ...]]:
    """Per host, the workers it runs (pure): all on every worker host, a singleton on the first one only."""
    worker_hosts = [target.name for target in with_role(targets, "worker")]
    workers = parse_workers(targets[0].workers) if targets else ()
    return {
        target.name: tuple(worker for worker in workers
                           if target.name in worker_hosts and (not worker.singleton or target.name == worker_hosts[0]))
        for target in targets
    }


def live_code_link(ctx: HostContext) -> str:
    """The code link of what serves now (state.json): the units run from it."""
    now = serving(ctx.state)
    strategy = now.strategy or ctx.target.deployment_strategy
    return ctx.paths.service_for(strategy, now.slot).code_link


def worker_unit(ctx: HostContext, worker: Worker, code_link: str) -> str:
    assert ctx.project
    return render(
        "worker.service.j2", ctx.config_dir,
        project=ctx.target.app_name, env=ctx.env, worker=worker.name, app_user=ctx.target.app_user,
        code_link=code_link, project_dir=project_subdir(code_link, ctx.project.manage_py),
        env_file=posixpath.join(code_link, ENV_FILE_NAME), venv_link=posixpath.join(code_link, VENV_LINK_NAME),
        arguments=" ".join(worker.arguments), grace=worker.stop_grace_seconds,
    )


def _unit_path(unit: str) -> str:
    return f"/etc/systemd/system/{unit}"


def update_workers(ctx: HostContext, workers: Sequence[Worker]) -> str | None:
    """Write this host's worker units, restart them onto the live release, retire the others.
    Returns a line for the summary, or None when the host has no worker and had none."""
    paths = ctx.paths
    wanted = {paths.worker_service(worker.name): worker for worker in workers}
    listing = ctx.plan.query(f"ls -1 {paths.worker_services_glob} 2>/dev/null || true").stdout
    installed = {posixpath.basename(line.strip()) for line in listing.splitlines() if line.strip()}
    retired = sorted(installed - set(wanted))
    if not wanted and not retired:
        return None
    code_link = live_code_link(ctx)
    for unit, worker in wanted.items():
        ctx.plan.put_text(f"workers: {unit}", _unit_path(unit), worker_unit(ctx, worker, code_link))
    commands = []
    if retired:
        commands.append(f"{shell.systemctl('disable', *retired, flags=['--now'])}; rm -f {shell.join(map(_unit_path, retired))}")
    commands.append(shell.systemctl("daemon-reload"))
    if wanted:
        commands.append(f"{shell.systemctl('enable', *wanted)} && {shell.systemctl('restart', *wanted)}")
    step = "workers: " + ", ".join([*(f"restart {unit}" for unit in wanted), *(f"retire {unit}" for unit in retired)])
    ctx.plan.run(step, " && ".join(commands))
    parts = [f"workers restarted: {', '.join(w.name for w in workers)}" if workers else "",
             f"retired: {', '.join(retired)}" if retired else ""]
    return "; ".join(part for part in parts if part)
