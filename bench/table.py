"""bench/results.json as the one Markdown table of bench/README.md (pure: results in, text out)."""

from __future__ import annotations

from typing import Any


def floor_for(rows: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    """The floor row measured for the same work under the same load."""
    key = row.get("floor")
    return next((r for r in rows if key and r.get("key") == key and r["load"] == row["load"]), None)


def _phases(row: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in row.get("phases", {}).items() if value >= 0.01)


def _ratio(row: dict[str, Any], other: dict[str, Any] | None) -> str:
    if not other or not other.get("seconds"):
        return ""
    return f"{row['seconds']} / {other['seconds']} = {row['seconds'] / other['seconds']:.2f}×"


def markdown(results: dict[str, Any]) -> str:
    rows = results["rows"]
    lines = [
        "| what | load | seconds | ÷ floor | peak MiB | requests | failed | versions | longest stall | phases (s) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for row in rows:
        versions = " → ".join(row.get("versions", []))
        stall = f"{row['max_gap_s']:.3f} s" if "max_gap_s" in row else ""
        lines.append(
            f"| {row['what']} | {'load' if row['load'] else 'idle'} | {row['seconds']:.2f} | {_ratio(row, floor_for(rows, row))} | "
            f"{row.get('peak_rss_mib', '')} | {row.get('requests', '')} | "
            f"{row.get('failed', '')} | {versions} | {stall} | {_phases(row)} |"
        )
    help_row = results.get("manage_py_help")
    if help_row and "with" in help_row:
        lines.append("")
        lines.append(
            f"`manage.py help` (median of 9, alternating): with djaploy in INSTALLED_APPS {help_row['with']['wall_s']:.3f} s wall, "
            f"{help_row['with']['cpu_s']:.3f} s CPU; without {help_row['without']['wall_s']:.3f} s wall, "
            f"{help_row['without']['cpu_s']:.3f} s CPU: {help_row['difference_ms']['cpu_s']} ms CPU, "
            f"{help_row['difference_ms']['wall_s']} ms wall more.")
    return "\n".join(lines)
