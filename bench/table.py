"""bench/results.json as Markdown tables (pure: results in, text out, so it is unit tested).

The main table has one row per step; a djaploy row that has a floor (the same work by hand,
bench/floor.py) under the same load shows its ratio to it. The second puts djaploy beside the
peer (djaploy 1.6.2, bench/peer.py) measured in the same run. The third splits each djaploy
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


def _first(row: dict[str, Any]) -> str:
    """When the other version first answered (seconds from the step's start)."""
    first = row.get("first_new_answer_s")
    return f"{first:.2f}" if isinstance(first, (int, float)) else ""


def main_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| what | load | seconds | first new answer | ÷ floor | peak MiB | requests | failed | versions | longest stall |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        versions = " → ".join(row.get("versions", []))
        stall = f"{row['max_gap_s']:.3f} s" if "max_gap_s" in row else ""
        lines.append(
            f"| {row['what']} | {'load' if row['load'] else 'idle'} | {row['seconds']:.2f} | {_first(row)} | "
            f"{_ratio(row, floor_for(rows, row))} | "
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


def _signed(value: int) -> str:
    return f"+{value}" if value > 0 else str(value)


def help_line(help_row: dict[str, Any] | None) -> list[str]:
    if not help_row or "with" not in help_row:
        return []
    return [
        f"`manage.py help` (median of 9, alternating): with djaploy in INSTALLED_APPS {help_row['with']['wall_s']:.3f} s wall, "
        f"{help_row['with']['cpu_s']:.3f} s CPU; without {help_row['without']['wall_s']:.3f} s wall, "
        f"{help_row['without']['cpu_s']:.3f} s CPU: djaploy's difference {_signed(help_row['difference_ms']['cpu_s'])} ms CPU, "
        f"{_signed(help_row['difference_ms']['wall_s'])} ms wall"
        + (" (below the run-to-run noise: no measurable cost)." if help_row['difference_ms']['cpu_s'] <= 0 else ".")
    ]


#: (the step, djaploy's row: label and load, the peer's row label), for the side-by-side table
PEER_PAIRS = (
    ("configureserver, fresh host", ("configureserver, fresh host", False), "configure, fresh host"),
    ("configureserver, no changes", ("configureserver, no changes", False), "configure, second run (no changes)"),
    ("first deploy (venv built)", ("first deploy (venv built)", False), "first deploy (venv built)"),
    ("code-only redeploy, under load", ("zero_downtime code-only redeploy", True), "zero_downtime code-only redeploy, under load"),
    ("rollback, under load", ("zero_downtime rollback", True), "zero_downtime rollback, under load"),
)


def _cell(seconds: Any) -> str:
    return f"{seconds:.2f}" if isinstance(seconds, (int, float)) else "did not serve"


def _failed(row: dict[str, Any]) -> str:
    if "failed" not in row:
        return ""
    extra = row.get("ok_status_but_no_version")
    return f"{row['failed']}" + (f" + {extra} cut-off 200" if extra else "")


def peer_table(rows: list[dict[str, Any]], peer: dict[str, Any] | None) -> list[str]:
    """djaploy beside djaploy 1.6.2, same run, same load: seconds until the change serves steadily,
    when the new version first answered, failed requests, and djaploy's time over the peer's."""
    if not peer or not peer.get("rows"):
        return []
    lines = [f"| step (same run) | djaploy s | {peer['peer']} s | ÷ peer | first new answer: djaploy / peer | failed: djaploy / peer |",
             "|---|---:|---:|---:|---|---|"]
    for step, (label, load), peer_label in PEER_PAIRS:
        ours = next((r for r in rows if r["what"] == label and r["load"] == load), None)
        theirs = [r for r in peer["rows"] if r["what"] == peer_label]
        if not ours or not theirs:
            continue
        other = theirs[0]
        ratio = (f"{ours['seconds'] / other['seconds']:.2f}×" if isinstance(other.get("seconds"), (int, float))
                 and other["seconds"] else "")
        first = (f"{ours.get('first_new_answer_s', '')} / {other.get('first_answer_of_new_version_s', '')}"
                 if "first_new_answer_s" in ours else "")
        failed = f"{_failed(ours)} / {_failed(other)}" if "failed" in ours or "failed" in other else ""
        lines.append(f"| {step} | {_cell(ours['seconds'])} | {_cell(other.get('seconds'))} | {ratio} | {first} | {failed} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    rows = results["rows"]
    parts = [main_table(rows), peer_table(rows, results.get("peer")), phase_table(rows),
             help_line(results.get("manage_py_help"))]
    return "\n\n".join("\n".join(part) for part in parts if part)
