"""The backup program on the host: installed by the rclone module, run by its systemd service
as the app user (`run`), and by `manage.py backup --list` / `restore --backup` (`list`, `fetch`).

    python3 backup.py SETTINGS.json run | list | fetch ID DEST [MEDIA_DEST]
    python3 backup.py SETTINGS.json pg-rows | pg-check DUMP | pg-keep DUMP | pg-restore DUMP

The pg-* actions serve `restore --backup` of a PostgreSQL DATABASE_URL (rows per table, a dump's
table of contents, a dump of the current database, the restore itself): libpq reads the password
from this process's environment, so it is on no command line either.

Standard library only (hosts have no djaploy); every value comes from the settings file djaploy
writes (0600, the app user's) and rclone reads its credentials from its own config file, so no
secret is ever on a command line. A backup is the folder ROOT/<UTC stamp>/ holding the database
copy and media/; its marker BACKUP-COMPLETE is written last, so a backup without it failed
half way. Retention runs only after a backup succeeded, and counts only complete ones: a
remote that fails night after night never loses the backups it still has.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote, urlsplit

MARKER = "BACKUP-COMPLETE"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MEDIA = "media"


# --- pure: unit tested ------------------------------------------------------------------------------


def choose_deletions(backups: dict[str, bool], keep: int) -> list[str]:
    """The backups to delete: `backups` maps each stamp to whether its marker is there.

    The newest `keep` complete backups stay. Older complete ones go, and so do incomplete ones
    older than the newest complete one (leftovers of failed runs); anything newer than it is
    left alone (it may be running). No complete backup at all: delete nothing.
    """
    complete = sorted((stamp for stamp, done in backups.items() if done), reverse=True)
    if not complete:
        return []
    newest = complete[0]
    old_complete = complete[keep:]
    failed = [stamp for stamp, done in backups.items() if not done and stamp < newest]
    return sorted(old_complete + failed)


def backups_from_listing(entries: list[dict]) -> dict[str, bool]:
    """rclone lsjson -R --max-depth 2 of ROOT ─► {stamp: marker present}."""
    found: dict[str, bool] = {}
    for entry in entries:
        top, _, rest = entry["Path"].partition("/")
        if not _is_stamp(top):
            continue
        found.setdefault(top, False)
        if rest == MARKER and not entry.get("IsDir"):
            found[top] = True
    return found


def _is_stamp(name: str) -> bool:
    try:
        datetime.strptime(name, STAMP_FORMAT)
    except ValueError:
        return False
    return True


def postgres_environment(url: str) -> dict[str, str]:
    """libpq's variables for a DATABASE_URL: pg_dump gets the password by environment, not argv.
    The host may be a percent-encoded socket folder (the db host's own URL); sslmode is kept."""
    parts = urlsplit(url)
    sslmode = parse_qs(parts.query).get("sslmode", [""])[-1]
    variables = {"PGHOST": unquote(parts.hostname or ""), "PGPORT": str(parts.port or 5432),
                 "PGUSER": unquote(parts.username or ""), "PGPASSWORD": unquote(parts.password or ""),
                 "PGDATABASE": unquote(parts.path.lstrip("/")), "PGSSLMODE": sslmode}
    return {name: value for name, value in variables.items() if value}


#: rows per user table, exactly (count(*) through query_to_xml: one statement, no function to create)
ROWS_SQL = ("SELECT table_schema || '.' || table_name, (xpath('/row/c/text()', query_to_xml(format("
            "'SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text "
            "FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")


def parse_rows(output: str) -> dict[str, int]:
    """psql -XAt output of ROWS_SQL ─► {table: rows}; tables of schema public without its prefix."""
    rows = {}
    for line in output.splitlines():
        if "|" in line:
            name, _, count = line.rpartition("|")
            rows[name.removeprefix("public.")] = int(count)
    return rows


def parse_toc(output: str) -> dict:
    """pg_restore --list ─► {"entries": N, "tables": [tables whose data the dump holds]}."""
    entries = [line for line in output.splitlines() if line.strip() and not line.startswith(";")]
    tables = []
    for line in entries:
        words = line.split()
        if "TABLE DATA" in line and len(words) >= 2:
            at = words.index("DATA")
            name = words[at + 2] if len(words) > at + 2 else words[-2]
            tables.append(name if words[at + 1] == "public" else f"{words[at + 1]}.{name}")
    return {"entries": len(entries), "tables": tables}


def restore_arguments(dump: str, environment: dict[str, str]) -> list[str]:
    """pg_restore's argv: one transaction (a failure changes nothing), the dump's objects dropped
    first, everything owned by the app's role (it owns the database), no password."""
    role, database = environment.get("PGUSER", ""), environment.get("PGDATABASE", "")
    return ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", f"--role={role}",
            "--single-transaction", "--exit-on-error", f"--dbname={database}", "--", dump]


# --- on the host -------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, flush=True)


#: rclone's exit code for "directory not found": no backup yet
NOT_FOUND = 3


def rclone(settings: dict, *args: str, capture: bool = False, missing_ok: bool = False) -> str:
    command = [settings["rclone"], "--config", settings["config"], *args]
    result = subprocess.run(command, check=False, text=True, stdout=subprocess.PIPE if capture else None)
    if missing_ok and result.returncode == NOT_FOUND:
        return ""
    if result.returncode != 0:
        raise SystemExit(f"backup failed: rclone {args[0]} exited with {result.returncode}")
    return result.stdout or ""


def copy_database(settings: dict, folder: str) -> str:
    """A consistent copy of the live database into `folder`: SQLite's online backup (the app
    keeps writing), or pg_dump's custom format. Returns the file name."""
    if settings.get("database_url"):
        name = "database.pgdump"
        env = {**os.environ, **postgres_environment(settings["database_url"])}
        subprocess.run(["pg_dump", "-Fc", "-f", os.path.join(folder, name)], check=True, env=env)
        return name
    name = os.path.basename(settings["db"])
    if not os.path.exists(settings["db"]):
        raise SystemExit(f"backup failed: the database {settings['db']} does not exist")
    source = sqlite3.connect(settings["db"], timeout=30)
    target = sqlite3.connect(os.path.join(folder, name))
    with target:
        source.backup(target)
    target.close()
    source.close()
    return name


def folder_size(folder: str) -> tuple[int, int]:
    size = files = 0
    for root, _, names in os.walk(folder):
        for name in names:
            size += os.path.getsize(os.path.join(root, name))
            files += 1
    return size, files


def run(settings: dict) -> None:
    stamp = datetime.now(timezone.utc).strftime(STAMP_FORMAT)
    destination = f"{settings['root']}/{stamp}"
    os.makedirs(settings["work"], mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings["work"]) as folder:
        started = time.monotonic()
        db = copy_database(settings, folder)
        size, files = folder_size(folder)
        log(f"backup {stamp}: database copied ({size} bytes)")
        rclone(settings, "copy", folder, destination)
        media = settings.get("media")
        if media and os.path.isdir(media):
            media_size, media_files = folder_size(media)
            rclone(settings, "copy", media, f"{destination}/{MEDIA}")
            size, files = size + media_size, files + media_files
            log(f"backup {stamp}: media copied ({media_files} files)")
        marker = {"id": stamp, "db": db, "bytes": size, "files": files, "seconds": round(time.monotonic() - started, 1)}
        with open(os.path.join(folder, MARKER), "w") as handle:
            handle.write(json.dumps(marker) + "\n")
        rclone(settings, "copyto", os.path.join(folder, MARKER), f"{destination}/{MARKER}")
    log(f"backup {stamp}: complete ({size} bytes, {files} files)")
    for old in choose_deletions(backups_from_listing(remote_entries(settings)), int(settings["keep"])):
        log(f"retention: deleting backup {old} (keeping the last {settings['keep']} complete ones)")
        rclone(settings, "purge", f"{settings['root']}/{old}")
    print(json.dumps({"backup": marker}))


def remote_entries(settings: dict) -> list[dict]:
    """The backup folders and the files at their top (not the media inside): one rclone call."""
    text = rclone(settings, "lsjson", "-R", "--max-depth", "2", settings["root"], capture=True, missing_ok=True)
    return json.loads(text or "[]")


def listing(settings: dict) -> list[dict]:
    """Every backup, newest first: its marker's facts, or {"id", "complete": False}."""
    backups = backups_from_listing(remote_entries(settings))
    markers: dict[str, dict] = {}
    if any(backups.values()):
        text = rclone(settings, "cat", "--include", f"/*/{MARKER}", settings["root"], capture=True)
        for line in text.splitlines():
            if line.strip():
                info = json.loads(line)
                markers[info["id"]] = info
    return [{**markers.get(stamp, {"id": stamp}), "complete": done} for stamp, done in sorted(backups.items(), reverse=True)]


def fetch(settings: dict, backup: str, dest: str, media_dest: str = "") -> None:
    """Copy one complete backup's database into `dest` (and its media into `media_dest`)."""
    complete = [item for item in listing(settings) if item["complete"]]
    chosen = complete[0] if backup == "latest" and complete else next((item for item in complete if item["id"] == backup), None)
    if chosen is None:
        known = ", ".join(item["id"] for item in complete) or "none"
        raise SystemExit(f"no complete backup {backup!r} at the remote; complete backups: {known}")
    source = f"{settings['root']}/{chosen['id']}"
    rclone(settings, "copy", "--exclude", f"/{MEDIA}/**", "--exclude", f"/{MARKER}", source, dest)
    if media_dest:
        os.makedirs(media_dest, exist_ok=True)  # a backup of an app without media has no media/
        rclone(settings, "copy", f"{source}/{MEDIA}", media_dest, missing_ok=True)
    print(json.dumps({"backup": chosen}))


def postgres(settings: dict, argv: list[str], capture: bool = False) -> str:
    """A PostgreSQL client program with the DATABASE_URL's variables; its failure ends this one."""
    if not settings.get("database_url"):
        raise SystemExit("this app's database is not PostgreSQL (no DATABASE_URL in the backup settings)")
    env = {**os.environ, **postgres_environment(settings["database_url"])}
    result = subprocess.run(argv, check=False, text=True, env=env, stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} exited with {result.returncode}")
    return result.stdout or ""


def postgres_action(settings: dict, action: str, args: list[str]) -> None:
    """pg-rows, pg-check DUMP, pg-keep DUMP, pg-restore DUMP: each prints one JSON line last."""
    if action == "pg-rows":
        text = postgres(settings, ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", ROWS_SQL], capture=True)
        print(json.dumps({"rows": parse_rows(text)}))
    elif action == "pg-check":
        print(json.dumps({"toc": parse_toc(postgres(settings, ["pg_restore", "--list", "--", args[0]], capture=True))}))
    elif action == "pg-keep":
        os.umask(0o077)  # the kept dump holds every row: the app user's alone
        postgres(settings, ["pg_dump", "-Fc", "-f", args[0]])
        print(json.dumps({"kept": args[0], "bytes": os.path.getsize(args[0])}))
    else:
        postgres(settings, restore_arguments(args[0], postgres_environment(settings["database_url"])))
        print(json.dumps({"restored": args[0]}))


def main(argv: list[str]) -> None:
    with open(argv[1]) as handle:
        settings = json.load(handle)
    action = argv[2]
    if action == "run":
        run(settings)
    elif action == "list":
        print(json.dumps({"backups": listing(settings)}))
    elif action == "fetch":
        fetch(settings, argv[3], argv[4], argv[5] if len(argv) > 5 else "")
    elif action in ("pg-rows", "pg-check", "pg-keep", "pg-restore"):
        postgres_action(settings, action, argv[3:])
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv)
