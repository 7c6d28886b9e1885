"""Which host does what in each phase of a deploy, rollback or activate (pure; unit tested).

    lock      every app host's lock, all or nothing (djaploy.locks)
    stage     every app host in parallel: upload, venv, env file, collectstatic (nothing serves it)
    migrate   once, on the primary, with the new release's code, before any host switches
    go live   every app host in parallel: its strategy's health gate and switch; or, rolling (an lb
              host, or a batch size), the web hosts batch by batch (djaploy.rolling), then the others
    workers   every app host: worker units onto the live release, restarted; removed ones retired

Hosts with only db or lb roles get no release; the lb hosts running HAProxy drain the batches. Unless the app hosts share a database (a `db`
host), each host migrates its own database while it is staged, as it always did (`migrate_once`
is False); every migrate holds the migration lock either way (djaploy.migrate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from djaploy.batches import split_batches
from djaploy.config import Target
from djaploy.errors import ConfigError, display_path
from djaploy.fleet import is_app_host, load_balancers, primary, with_role
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
    #: lb hosts running HAProxy: they drain and re-admit the web hosts, and rewrite their backend at the end
    load_balancers: tuple[str, ...] = ()
    #: the web hosts in the order their go-live runs; one batch holding them all unless rolling
    batches: tuple[tuple[str, ...], ...] = ()

    @property
    def rolling(self) -> bool:
        """Whether the web hosts go live batch by batch through djaploy.rolling (else all at once, in parallel)."""
        return bool(self.load_balancers) or len(self.batches) > 1


def plan_rollout(targets: Sequence[Target], batch_size: int | str | None = None) -> RolloutPlan:
    """The phases' hosts; ConfigError (before any connection) for a host its strategy cannot run.
    `batch_size` (2, '25%'; None: 1 with a load balancer, else all at once) splits the web hosts."""
    apps = [target for target in targets if is_app_host(target)]
    for target in apps:
        if "web" not in target.roles and target.deployment_strategy == "bluegreen":
            raise ConfigError(f"host {target.name} is a worker without the 'web' role; bluegreen switches web "
                              "traffic between slots, so use 'zero_downtime' for it", file=display_path(target.source_file),
                              field="deployment_strategy")
    places = placement(apps)
    balancers = tuple(target.name for target in load_balancers(targets))
    size = batch_size if batch_size is not None else (1 if balancers else None)
    web = [target.name for target in with_role(apps, "web")]
    return RolloutPlan(
        app_hosts=tuple(target.name for target in apps),
        primary=primary(targets).name,
        idle_hosts=tuple(target.name for target in targets if not is_app_host(target)),
        workers={target.name: places[target.name] for target in apps},
        migrate_once=len(apps) > 1 and any("db" in target.roles for target in targets),
        load_balancers=balancers,
        batches=tuple(tuple(batch) for batch in split_batches(web, size)),
    )
