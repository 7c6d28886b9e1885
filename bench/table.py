"""bench/results.json as Markdown tables (pure: results in, text out, so it is unit tested).

The main table has one row per step; a djaploy row that has a floor (the same work by hand,
bench/floor.py) under the same load shows its ratio to it. A second table splits each djaploy
command's seconds into the phases djaploy itself measured.
"""

from __future__ import annotations

from typing import Any

from bench.measure import PHASE_GROUPS


def floor_for(rows: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    """The floor row measured for the same work under the same load."""
    key = row.get("floor")
    return next((r for r in rows if key and r.get("key") == key and r["load"] == row["load"]), None)


def _ratio(row: dict[str, Any], other: dict[str, Any] | None) -> str:
    if not other or not other.get("seconds"):
        return ""
    return f"{row['seconds']} / {other['seconds']} = {row['seconds'] / other['seconds']:.2f}×"


def main_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| what | load | seconds | ÷ floor | peak MiB | requests | failed | versions | longest stall |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        versions = " → ".join(row.get("versions", []))
        stall = f"{row['max_gap_s']:.3f} s" if "max_gap_s" in row else ""
        lines.append(
            f"| {row['what']} | {'load' if row['load'] else 'idle'} | {row['seconds']:.2f} | {_ratio(row, floor_for(rows, row))} | "
            f"{row.get('peak_rss_mib', '')} | {row.get('requests', '')} | {row.get('failed', '')} | {versions} | {stall} |"
        )
    return lines


def phase_table(rows: list[dict[str, Any]]) -> list[str]:
    """Seconds per phase column (only the columns some row has), 'other' last."""
    timed = [row for row in rows if row.get("phases")]
    columns = [name for name in [*PHASE_GROUPS, "other"] if any(name in row["phases"] for row in timed)]
    if not timed:
        return []
    lines = ["| what | load | seconds | " + " | ".join(columns) + " |",
             "|---|---|---:|" + "---:|" * len(columns)]
    for row in timed:
        cells = [f"{row['phases'][name]:.2f}" if name in row["phases"] else "" for name in columns]
        lines.append(f"| {row['what']} | {'load' if row['load'] else 'idle'} | {row['seconds']:.2f} | " + " | ".join(cells) + " |")
    return lines


def help_line(help_row: dict[str, Any] | None) -> list[str]:
    if not help_row or "with" not in help_row:
        return []
    return [
        f"`manage.py help` (median of 9, alternating): with djaploy in INSTALLED_APPS {help_row['with']['wall_s']:.3f} s wall, "
        f"{help_row['with']['cpu_s']:.3f} s CPU; without {help_row['without']['wall_s']:.3f} s wall, "
        f"{help_row['without']['cpu_s']:.3f} s CPU: {help_row['difference_ms']['cpu_s']} ms CPU, "
        f"{help_row['difference_ms']['wall_s']} ms wall more."
    ]


def markdown(results: dict[str, Any]) -> str:
    rows = results["rows"]
    parts = [main_table(rows), phase_table(rows), help_line(results.get("manage_py_help"))]
    return "\n\n".join("\n".join(part) for part in parts if part)
