"""Run on the host by its python3, with argv PATH MODE, to look at an SQLite database.

Sent as text (`python3 -c`) by djaploy.modules.litestream.commands.probe_command. It reads the
database without changing it, or with MODE "wal" switches it to WAL, and prints one JSON line.
MODE "count" and "check" count rows per table; "check" also runs PRAGMA integrity_check.
Tables Litestream adds (_litestream_*) and SQLite's own do not count as data.
Standard library only: hosts have no djaploy.
"""
import json, os, sqlite3, sys
path, mode = sys.argv[1], sys.argv[2]
if mode != "wal" and not os.path.exists(path):
    print(json.dumps({"exists": False})); sys.exit(0)
try:
    con = sqlite3.connect(path, timeout=20)
    info = {"exists": True}
    if mode == "wal":
        info["journal_mode"] = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    else:
        info["journal_mode"] = con.execute("PRAGMA journal_mode").fetchone()[0]
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
             if not r[0].startswith(("sqlite_", "_litestream_"))]
    if mode in ("count", "check"):
        info["rows"] = {n: con.execute('SELECT count(*) FROM "%s"' % n.replace('"', '""')).fetchone()[0] for n in names}
    else:
        info["rows"] = {n: None for n in names}
    if mode == "check":
        info["integrity"] = [r[0] for r in con.execute("PRAGMA integrity_check")]
except sqlite3.Error as exc:
    info = {"exists": True, "error": str(exc)}
print(json.dumps(info))
