"""zero_downtime's handover: a warm gunicorn carries the traffic while the app's service restarts.

Restarting the socket-activated service makes every request wait in the socket's backlog until
the new gunicorn is up (about half a second). Instead the release to go live first runs in a
transient systemd unit, ``{service}-handover@<id>``, on its own socket; once it answers its health
check there (this is the health gate), the live link is swapped to that socket (atomic, as
bluegreen switches), the app's service restarts onto the release with no traffic on it, is
checked through its own socket, the live link is swapped back, and the handover stops
gracefully (TERM: its in-flight requests finish). Steady state is unchanged: one service,
`{service}.service`, serving through the live link.

Each handover has a name of its own (`<id>`: random): systemd unloads a stopped transient unit
only when it gets round to it (seconds later, or not until something touches the unit again),
and systemd-run refuses a name that is still loaded. Starting one stops every earlier one.
"""

from __future__ import annotations

import posixpath
import secrets

from djaploy import shell
from djaploy.context import HostContext
from djaploy.layout import AppService
from djaploy.strategies.common import timed


def handover_service(service: AppService, instance: str | None = None) -> AppService:
    """A new transient unit and its socket (in a runtime folder systemd creates and removes)."""
    instance = instance or secrets.token_hex(4)
    folder = f"/run/{service.name}-handover-{instance}"
    return AppService(f"{service.name}-handover@{instance}", f"{folder}/{posixpath.basename(service.socket_path)}",
                      service.code_link)


def label(service: AppService) -> str:
    """How steps name the handovers of `service` (whatever their ids)."""
    return f"{service.name}-handover"


def _runtime_directory(handover: AppService) -> str:
    return posixpath.basename(posixpath.dirname(handover.socket_path))


def log_path(ctx: HostContext) -> str:
    return posixpath.join(ctx.paths.meta_dir, "handover.log")


def stop_command(handover: AppService, *, wait: bool = True) -> str:
    """Stop the handover gracefully; nothing when it is not running (or left over, failed).
    Without `wait` its in-flight requests finish after the command returns (systemd stops it)."""
    return _stop(handover.service, wait=wait)


def stop_all_command(service: AppService) -> str:
    """Stop every handover of `service` still loaded (systemctl matches the pattern against loaded
    units: a left-over, one still finishing its requests), and wait until they stopped."""
    return _stop(f"{label(service)}@*.service", wait=True)


def _stop(unit: str, *, wait: bool) -> str:
    stop = shell.systemctl("stop", unit, flags=[] if wait else ["--no-block"])
    return f"{{ {stop} 2>/dev/null; {shell.systemctl('reset-failed', unit)} 2>/dev/null; true; }}"


def start_command(ctx: HostContext, handover: AppService, *, service: AppService, project_dir: str, env_file: str,
                  venv: str, attempts: int = 100) -> str:
    """Start the release in the handover unit and require a 2xx through its own socket (a handover
    left serving by an interrupted deploy first gives `service` the traffic back).

    Type=exec: systemd-run returns once gunicorn runs; the health check watches its pid, so a
    release that does not import fails with gunicorn's own words (the log tail)."""
    target, log = ctx.target, log_path(ctx)
    properties = {
        "Type": "exec", "User": target.app_user, "Group": target.app_user, "WorkingDirectory": project_dir,
        "EnvironmentFile": env_file, "RuntimeDirectory": _runtime_directory(handover), "KillSignal": "SIGTERM",
        "KillMode": "mixed", "TimeoutStopSec": "35", "PrivateTmp": "true", "NoNewPrivileges": "true",
        "StandardOutput": f"truncate:{log}", "StandardError": "inherit",
    }
    run = ["systemd-run", "--quiet", "--collect", f"--unit={handover.name}"]
    run += [f"--property={name}={value}" for name, value in properties.items()]
    run += ["--", f"{venv}/bin/gunicorn", ctx.wsgi_application, "--bind", f"unix:{handover.socket_path}",
            "--workers", str(target.gunicorn_workers), "--timeout", "30", "--graceful-timeout", "30"]
    check = shell.health_check(ctx.health_host, target.health_check_path, unix_socket=handover.socket_path,
                               attempts=attempts, interval=0.1, pid="$pid", log=log,
                               label=f"health gate {target.health_check_path} (the release in {handover.service})")
    main_pid = shell.systemctl("show", handover.service, flags=["-p", "MainPID", "--value"])
    # No pid (gunicorn already exited): "none" makes the check report that the release did not start.
    return (f"{reclaim_command(ctx.paths.live_link, service)} && {stop_all_command(service)} && "
            f"{shell.join(run)} && pid=$({main_pid}) && "
            f"{{ [ \"${{pid:-0}}\" != 0 ] || pid=none; }} && {check}")


def reclaim_command(live_link: str, service: AppService) -> str:
    """A deploy stopped between the switch and the hand-back (the deployer killed) leaves the traffic
    on its handover: send it back to the service (its socket starts it on demand, on `current`)
    before that handover stops (its accept queue drained), so no request meets a socket that is gone.
    Only when the service's socket is there: a first deploy killed before the service existed
    leaves nothing to give the traffic back to."""
    pattern = f"{shell.q(f'/run/{label(service)}-')}*{shell.q('/' + posixpath.basename(service.socket_path))}"
    back = shell.switch_symlink(live_link, service.socket_path) + " && " + _drain('"$old"')
    there = f"[ -S {shell.q(service.socket_path)} ]"
    return f"{{ old=$(readlink {shell.q(live_link)}); case \"$old\" in {pattern}) if {there}; then {back}; fi ;; esac; }}"


def start(ctx: HostContext, handover: AppService, *, service: AppService, project_dir: str, env_file: str,
          venv: str) -> None:
    """The health gate: the release answers in its own gunicorn, which can then take the traffic."""
    with timed(ctx, "health gate"):
        ctx.plan.run(f"health gate {ctx.target.health_check_path} (release in {label(service)})",
                     start_command(ctx, handover, service=service, project_dir=project_dir, env_file=env_file,
                                   venv=venv))


def route_to(ctx: HostContext, socket_path: str) -> str:
    """The live link swap, as a shell fragment (the web server connects through it per request)."""
    return shell.switch_symlink(ctx.paths.live_link, socket_path)


def take_traffic_command(ctx: HostContext, service: AppService, handover: AppService, release_dir: str) -> str:
    """`current` to the release, traffic to the handover; the service, now without traffic, starts
    its graceful stop at once (gunicorn takes a second or two to exit) so that its restart onto
    the release (the systemd module's publish) waits less."""
    stop = f"{{ {shell.systemctl('stop', service.service, flags=['--no-block'])} 2>/dev/null || true; }}"
    return f"{shell.switch_symlink(ctx.paths.current, release_dir)} && {route_to(ctx, handover.socket_path)} && {stop}"


def hand_back_command(ctx: HostContext, service: AppService, handover: AppService) -> str:
    """The app's service (restarted onto the release) answers through its own socket, takes the
    traffic back, and the handover stops gracefully: one round trip."""
    check = shell.http_check(ctx.health_host, ctx.target.health_check_path, unix_socket=service.socket_path, attempts=20)
    return f"{check} && {route_to(ctx, service.socket_path)} && {drain_command(handover)} && {stop_command(handover, wait=False)}"


def drain_command(handover: AppService, seconds: float = 5) -> str:
    """Wait until no connection waits in the handover's accept queue. Once the live link moved no
    new one can arrive (the kernel resolves the link at connect()), but the ones queued before
    would be reset when gunicorn closes its socket on TERM; the ones accepted finish."""
    return _drain(shell.q(handover.socket_path), seconds)


def _drain(socket_word: str, seconds: float = 5) -> str:
    queued = f"ss -Hxl src {socket_word} | awk '{{print $3}}'"
    tries = int(seconds / 0.02)
    return (f"{{ i=0; while [ \"$({queued})\" != 0 ] && [ \"$({queued})\" != '' ] && [ $i -lt {tries} ]; do "
            f"i=$((i+1)); sleep 0.02; done; true; }}")


def restart_command(ctx: HostContext, service: AppService, release_dir: str) -> str:
    """`current` to `release_dir`, then the service restarts onto it (while the handover serves)."""
    return f"{shell.switch_symlink(ctx.paths.current, release_dir)} && {shell.systemctl('restart', service.service)}"


def restore_command(ctx: HostContext, service: AppService, previous: str | None) -> str:
    """After a failure once traffic moved: the previous release back on the service (a restart:
    the one brief wait, on the failure path only), traffic back to the service, no handover."""
    restart = f"{restart_command(ctx, service, previous)} && " if previous else ""
    return f"{restart}{route_to(ctx, service.socket_path)} && {stop_all_command(service)}"
