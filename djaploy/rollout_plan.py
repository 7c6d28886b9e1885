"""Which host does what in each phase of a deploy, rollback or activate (pure; unit tested).

    lock      every app host's lock, all or nothing (djaploy.locks)
    stage     every app host in parallel: upload, venv, env file, collectstatic (nothing serves it)
    migrate   once, on the primary, with the new release's code, before any host switches
    go live   every app host in parallel: its strategy's health gate and switch
    workers   every app host: worker units onto the live release, restarted; removed ones retired

Hosts with only db or lb roles get no release. Unless the app hosts share a database (a `db`
host), each host migrates its own database while it is staged, as it always did (`migrate_once`
is False); every migrate holds the migration lock either way (djaploy.migrate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from djaploy.config import Target
from djaploy.errors import ConfigError, display_path
from djaploy.fleet import is_app_host, primary
from djaploy.worker_settings import Worker
from djaploy.workers import placement

__all__ = ["RolloutPlan", "plan_rollout"]


@dataclass(frozen=True)
class RolloutPlan:
    app_hosts: tuple[str, ...]  # get the release, in inventory order
    primary: str  # migrates once (djaploy.fleet.primary)
    idle_hosts: tuple[str, ...]  # db or lb only: no release, no app services
    workers: dict[str, tuple[Worker, ...]]  # per app host, the workers it runs
    #: the app hosts share a database (a `db` host): staging skips migrate, the primary runs it once
    #: before any host switches. Otherwise each host migrates its own (SQLite) database while staging.
    migrate_once: bool = False


def plan_rollout(targets: Sequence[Target]) -> RolloutPlan:
    """The phases' hosts; ConfigError (before any connection) for a host its strategy cannot run."""
    apps = [target for target in targets if is_app_host(target)]
    for target in apps:
        if "web" not in target.roles and target.deployment_strategy == "bluegreen":
            raise ConfigError(f"host {target.name} is a worker without the 'web' role; bluegreen switches web "
                              "traffic between slots, so use 'zero_downtime' for it", file=display_path(target.source_file),
                              field="deployment_strategy")
    places = placement(apps)
    return RolloutPlan(
        app_hosts=tuple(target.name for target in apps),
        primary=primary(targets).name,
        idle_hosts=tuple(target.name for target in targets if not is_app_host(target)),
        workers={target.name: places[target.name] for target in apps},
        migrate_once=len(apps) > 1 and any("db" in target.roles for target in targets),
    )
