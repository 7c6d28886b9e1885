"""The few lines at the end of every command: what happened per host, in words a person can act on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from djaploy.errors import LockHeld

if TYPE_CHECKING:
    from djaploy.session import RunResult


def _phases(timings: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items() if seconds >= 0.05)


def _next_steps(result: RunResult) -> list[str]:
    env = result.env
    if result.dry_run:
        return ["run it for real: drop --dry-run"]
    if not result.ok:
        if all(isinstance(error, KeyboardInterrupt) for error in result.errors.values()):
            return ["interrupted: each host unwound and released its lock; run the command again"]
        steps = ["fix the cause shown above, then run the command again"]
        switched = [host for host in result.messages if host not in result.errors and host in result.urls]
        if result.command in ("deploy", "activate", "rollback") and switched:
            what = f" {result.release.ref}" if result.release else ""
            steps = [f"{', '.join(switched)} switched, {', '.join(result.errors)} did not: the hosts serve different "
                     "releases (each host's line above says which)",
                     f"fix the cause shown above, then deploy{what} again (manage.py deploy --env {env} with the same "
                     "--release/--latest/--local): every host then serves one release"]
        if any(isinstance(error, LockHeld) for error in result.errors.values()):
            steps.append(f"if the lock holder is dead: manage.py unlock --env {env}")
        return steps
    strategies = set(result.strategies.values())
    steps: list[str] = []
    if result.command == "deploy" and any("traffic stays" in m for m in result.messages.values()):
        steps.append(f"switch traffic: manage.py activate --env {env}")
    if result.command in ("deploy", "activate", "rollback"):
        if strategies & {"zero_downtime", "bluegreen"}:
            steps.append(f"roll back:      manage.py rollback --env {env}")
        steps.append(f"redeploy:       manage.py deploy --env {env} --latest")
        steps.append(f"service logs:   manage.py logs --env {env} --follow")
        steps.append(f"run a command:  manage.py remote --env {env} -- shell")
        steps.append(f"see the state:  manage.py status --env {env}")
    if result.command == "configureserver":
        steps.append(f"deploy:         manage.py deploy --env {env} --latest")
    return steps


def summary_lines(result: RunResult, log_path: Path | None = None) -> list[str]:
    """Per host: outcome, phase times, URL, what serves now; then what to do next and the log."""
    verb = "would change" if result.dry_run else "changed"
    lines: list[str] = []
    for host, count in result.changed.items():
        what = f"{count} step(s) {verb}" if count else "no changes"
        if host in result.errors:
            first = str(result.errors[host]).strip().splitlines()[0] if str(result.errors[host]).strip() else type(result.errors[host]).__name__
            lines.append(f"[{host}] FAILED: {first}")
            serving = result.serving.get(host)
            lines.append(f"[{host}]   now serving: {serving}" if serving else f"[{host}]   state after the failure could not be read")
        else:
            message = result.messages.get(host)
            lines.append(f"[{host}] ok: {what}" + (f"; {message}" if message else ""))
            if result.command in ("deploy", "activate", "rollback") and not result.dry_run and result.urls.get(host):
                lines.append(f"[{host}]   {' '.join(result.urls[host])}")
        phases = _phases(result.timings.get(host, {}))
        if phases:
            lines.append(f"[{host}]   phases: {phases}")
    lines.extend(result.notes)
    steps = _next_steps(result)
    if steps:
        lines.append("next:")
        lines.extend(f"  {step}" for step in steps)
    if log_path is not None:
        lines.append(f"full log: {log_path}")
    return lines
