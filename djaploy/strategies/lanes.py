"""zero_downtime's two services, used in turn: how a release goes live with no stall.

    {app}-a.socket / {app}-a.service   on /run/{app}-a/{app}.sock   both run `current`
    {app}-b.socket / {app}-b.service   on /run/{app}-b/{app}.sock

The live link (live.sock, where the web server connects) names the lane serving. A release goes
live by pointing `current` at it and starting it in the other lane: that gunicorn is the one that
will serve, so the release boots once, and its health check goes to its own socket, which no
old worker can answer. Then the live link moves to it (atomic rename: the web server's next
connection goes to the new lane, none is refused) and the old lane stops gracefully: its
in-flight requests finish; a connection still in its socket's queue starts it again (systemd
holds that socket), so none is dropped either. Nothing waits behind a restarting gunicorn.

A failure before the old lane stops puts everything back in one step: the traffic, `current`
and the new lane stopped. Which lane serves is read from the live link on the host (the truth
even when an interrupted deploy left state.json behind), and recorded in state.json (`lane`)
for status, logs and remote.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from djaploy import shell
from djaploy.context import HostContext
from djaploy.errors import RemoteError
from djaploy.layout import LANES, AppPaths, AppService
from djaploy.modules.base import BaseModule
from djaploy.state import read_command
from djaploy.strategies.common import UndoOnFailure, route_traffic, run_hooks, timed

NAME = "zero_downtime"
RELEASES_MARK = "==djaploy-releases"
LIVE_LINK_MARK = "==djaploy-live"


def host_now_command(ctx: HostContext) -> str:
    """One round trip for what a deploy or rollback reads first: state.json, the release folders
    on disk, and where the live link points."""
    paths = ctx.paths
    return (f"{read_command(paths)}; echo {RELEASES_MARK}; ls -1 {shell.q(paths.releases_dir)} 2>/dev/null; "
            f"echo {LIVE_LINK_MARK}; readlink {shell.q(paths.live_link)} 2>/dev/null; true")


def parse_host_now(output: str) -> tuple[str, list[str], str]:
    """(state.json's text, release folders, live link target) from host_now_command's output (pure)."""
    state, _, rest = output.partition(f"{RELEASES_MARK}\n")
    listing, _, live = rest.partition(f"{LIVE_LINK_MARK}\n")
    return state, [line for line in listing.splitlines() if line.strip()], live.strip()


def lane_of(paths: AppPaths, service: AppService | None) -> str | None:
    """The lane a service is (a or b), None for any other service (another strategy's, or the
    single zero_downtime service of djaploy before lanes)."""
    return next((lane for lane in LANES if service == paths.service_for(NAME, lane)), None)


def next_lane(paths: AppPaths, serving: AppService | None) -> str:
    """The lane that is not serving (a when no lane serves yet)."""
    return "b" if lane_of(paths, serving) == "a" else "a"


def go_live_in_lane(ctx: HostContext, modules: list[BaseModule], release_dir: str, previous_dir: str | None,
                    serving: AppService | None, undo_extra: Callable[[], None] | None = None) -> str:
    """Point `current` at `release_dir`, start it in the lane not serving, check it through its own
    socket, move the traffic to it and stop the old lane. Returns the new lane.

    Any failure puts back `previous_dir` as `current` and the traffic on `serving`, stops the new
    lane, then runs `undo_extra` (a deploy removes its failed release)."""
    paths, web = ctx.paths, "web" in ctx.target.roles
    lane = next_lane(paths, serving)
    ctx.service = new = paths.service_for(NAME, lane)
    routed = False

    def put_back() -> None:
        if routed and serving is not None:
            ctx.service = serving
            route_traffic(ctx, modules)
        commands = [shell.switch_symlink(paths.current, previous_dir)] if previous_dir else []
        if web:
            commands.append(f"{shell.systemctl('stop', new.service)} 2>/dev/null; true")
        if commands:
            ctx.plan.run("put the previous release back" if previous_dir else f"stop {new.name}", "; ".join(commands))
        if undo_extra:
            undo_extra()

    ctx.plan.run(f"switch current to {posixpath.basename(release_dir)}", shell.switch_symlink(paths.current, release_dir))
    with UndoOnFailure("put the previous release back", put_back):
        run_hooks(ctx, modules, "publish")  # the systemd module starts the new lane here
        if web:
            health_check(ctx, new)
        route_traffic(ctx, modules)
        routed = True
        run_hooks(ctx, modules, "verify")
    if web and lane_of(paths, serving):
        assert serving is not None
        ctx.plan.run(f"stop {serving.name} (traffic left it; it finishes its requests)",
                     shell.systemctl("stop", serving.service, flags=["--no-block"]))
    return lane


def health_check(ctx: HostContext, service: AppService) -> None:
    """The new lane must answer the health check with the host's domain on its own socket; when
    it does not, the error carries its journal (why gunicorn did not start or answer). Its
    gunicorn must stay up meanwhile: systemd holds the socket, so a connection to a dead one
    would wait instead of failing."""
    path = ctx.target.health_check_path
    step = f"health gate {path} (the release in {service.name}, before it gets traffic)"
    main_pid = f"$({shell.systemctl('show', service.service, flags=['-p', 'MainPID', '--value'])})"
    check = shell.health_check(ctx.health_host, path, unix_socket=service.socket_path, attempts=60, interval=0.25,
                               pid=main_pid, label=f"health gate {path} ({service.name}'s own socket)")
    with timed(ctx, "health gate"):
        try:
            ctx.plan.run(step, check)
        except RemoteError as error:
            journal = ctx.plan.query(shell.journal_tail(service.service)).stdout.rstrip()
            output = f"{error.output.rstrip()}\n--- journalctl -u {service.service} ---\n{journal}" if journal else error.output
            raise RemoteError(error.host, error.step, output, error.hint) from None


__all__ = ["go_live_in_lane", "health_check", "host_now_command", "lane_of", "next_lane", "parse_host_now"]
