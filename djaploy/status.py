"""Read one host's deployment status in one round trip (state, lock, services and workers, audit tail);
the environment's table and each host's details."""

from __future__ import annotations

import json
from typing import Any

from djaploy import shell
from djaploy.context import HostContext
from djaploy.state import InvalidState, parse_state, serving_info

AUDIT_LINES = 5


def status_command(ctx: HostContext) -> str:
    paths = ctx.paths
    services = shell.join(service.name for service in paths.all_services())
    return (
        f"echo '==state'; cat {shell.q(paths.state_file)} 2>/dev/null; "
        f"echo '==lock'; cat {shell.q(paths.lock_dir)}/info.json 2>/dev/null; "
        f"echo '==audit'; tail -n {AUDIT_LINES} {shell.q(paths.audit_log)} 2>/dev/null; "
        f"echo '==releases'; ls -1 {shell.q(paths.releases_dir)} 2>/dev/null; "
        f"echo '==services'; for s in {services}; do "
        f'[ -e "/etc/systemd/system/$s.service" ] && echo "$s $(systemctl is-active "$s.service")"; done; '
        f'for f in {paths.worker_services_glob}; do [ -e "$f" ] || continue; s=$(basename "$f" .service); '
        f'echo "$s $(systemctl is-active "$s.service")"; done; true'
    )


def parse_status(output: str) -> dict[str, Any]:
    """Split the status command's sections into data (pure; unit tested)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("=="):
            current = line[2:]
            sections[current] = []
        elif current is not None and line.strip():
            sections[current].append(line)

    def load(text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return {"unreadable": text}

    state_text = "\n".join(sections.get("state", []))
    lock_text = "\n".join(sections.get("lock", []))
    try:
        state = parse_state(state_text)
    except InvalidState:
        state = {"unreadable": state_text}
    return {
        "state": state,
        "lock": load(lock_text) if lock_text else None,
        "audit": [load(line) for line in sections.get("audit", [])],
        "releases_on_disk": sections.get("releases", []),
        "services": dict(line.split(" ", 1) for line in sections.get("services", []) if " " in line),
    }


def read_status(ctx: HostContext) -> dict[str, Any]:
    result = ctx.plan.query(status_command(ctx))
    status = parse_status(result.stdout)
    status["configured_strategy"] = ctx.target.deployment_strategy
    status["roles"] = list(ctx.target.roles)
    return status


def _serving_cell(status: dict[str, Any]) -> str:
    state = status["state"]
    if "unreadable" in state:
        return "state.json unreadable"
    info = serving_info(state)
    if not info:
        return "-"
    version = f" ({info['version']})" if info.get("version") else ""
    slot = f" [{state.get('active')}]" if state.get("strategy") == "bluegreen" else ""
    if state.get("strategy") == "zero_downtime" and state.get("lane"):
        slot = f" [lane {state['lane']}]"
    return f"{info.get('release')}{version}{slot}"


def _lock_cell(status: dict[str, Any]) -> str:
    lock = status["lock"]
    return f"held by {lock.get('by')} since {lock.get('since')} ({lock.get('action')})" if lock else "free"


def format_table(statuses: dict[str, dict[str, Any]]) -> list[str]:
    """The environment at a glance, one row per host: roles, release serving, services and workers, lock."""
    rows = [("host", "roles", "serving", "services and workers", "lock")]
    for host, status in statuses.items():
        services = ", ".join(f"{name} {state}" for name, state in status["services"].items()) or "-"
        rows.append((host, ",".join(status.get("roles", [])), _serving_cell(status), services, _lock_cell(status)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip() for row in rows]


def format_status(host: str, status: dict[str, Any]) -> list[str]:
    """Lines a person reads: what serves, what is kept, what runs, who holds the lock."""
    state = status["state"]
    strategy = state.get("strategy") or "(nothing deployed)"
    serving_version = serving_info(state).get("version") if "unreadable" not in state else None
    lines = [f"[{host}] strategy: {strategy}" + (
        f" (config says {status['configured_strategy']}: the next deploy switches)"
        if state.get("strategy") and state.get("strategy") != status["configured_strategy"] else "")]
    if strategy == "bluegreen":
        lines.append(f"  active slot: {state.get('active') or 'none'} (switched {state.get('switched_at', '-')})")
        for slot in ("blue", "green"):
            info = state.get("slots", {}).get(slot)
            if info:
                version = f" version {info['version']}" if info.get("version") else ""
                lines.append(f"  {slot}: {info.get('state')} release {info.get('release')}{version} commit {str(info.get('commit'))[:8]} deployed {info.get('deployed_at')}")
            else:
                lines.append(f"  {slot}: empty")
    elif state.get("current"):
        lane = f" (lane {state['lane']})" if state.get("lane") else ""
        lines.append(f"  live release: {state['current']}{lane}")
    if serving_version:
        lines.append(f"  live version: {serving_version}")
    if strategy != "bluegreen" and state.get("current"):
        if strategy == "zero_downtime":
            from djaploy.strategies.zero_downtime import rollback_target

            for name in state.get("order", []):
                info = state["releases"].get(name, {})
                marks = [m for m, on in (("live", name == state["current"]), ("rollback target", name == rollback_target(state)), ("rolled back", info.get("rolled_back"))) if on]
                version = f" version {info['version']}" if info.get("version") else ""
                lines.append(f"  release {name}{version} commit {str(info.get('commit'))[:8]} deployed {info.get('deployed_at')}" + (f" [{', '.join(marks)}]" if marks else ""))
    for name, state_word in status["services"].items():
        lines.append(f"  service {name}: {state_word}")
    lock = status["lock"]
    lines.append(f"  lock: held by {lock.get('by')} since {lock.get('since')} ({lock.get('action')} {lock.get('release', '')})" if lock else "  lock: free")
    for entry in status["audit"]:
        lines.append(
            f"  audit: {entry.get('at')} {entry.get('action')} {entry.get('release', '')} by {entry.get('by')}: {entry.get('result')} ({entry.get('seconds')}s)"
        )
    return lines
