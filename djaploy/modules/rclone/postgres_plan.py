"""The pure parts of a PostgreSQL `restore --backup` (unit tested): which host restores, when the
database counts as holding data, the refusal, where the replaced database is kept, the report.

PostgreSQL is one database for the whole environment, so it is restored once: on the `db` host
(it has the server's client programs and reaches the database through its socket), else on the
first app host. Every app host writes to it, so every app host's app is stopped meanwhile.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from djaploy.config import Target
from djaploy.errors import DjaployError
from djaploy.fleet import is_app_host


def restoring_host(fleet: Sequence[Target]) -> Target:
    """The host that runs the restore: the db host, else the first app host, else the first host."""
    for wanted in (lambda t: "db" in t.roles, is_app_host, lambda t: True):
        for target in fleet:
            if wanted(target):
                return target
    raise DjaployError("restore --backup: the environment has no host")


def stopped_hosts(fleet: Sequence[Target]) -> list[str]:
    """Every host whose app writes to the database (web and worker hosts), in inventory order."""
    return [target.name for target in fleet if is_app_host(target)]


def rows_total(rows: Mapping[str, int]) -> int:
    return sum(rows.values())


def holds_data(rows: Mapping[str, int]) -> bool:
    """Any user table with a row (a migrated database has some: django_migrations)."""
    return rows_total(rows) > 0


def row_summary(rows: Mapping[str, int]) -> str:
    """The tables with rows, busiest first, for the refusal (at most eight named)."""
    full = sorted(((count, name) for name, count in rows.items() if count), key=lambda item: (-item[0], item[1]))
    named = ", ".join(f"{name}: {count}" for count, name in full[:8])
    return named + (f", and {len(full) - 8} more tables" if len(full) > 8 else "")


def postgres_refusal(host: str, database: str, rows: Mapping[str, int]) -> DjaployError:
    """Nothing was changed: the database holds rows and --force was not given."""
    return DjaployError(
        f"[{host}] restore refused: the PostgreSQL database {database} (restored from {host}) holds data "
        f"({rows_total(rows)} rows in {sum(1 for count in rows.values() if count)} tables: {row_summary(rows)}). "
        "Pass --force to replace it (a pg_dump of it is kept beside the fetched backup). Nothing was changed."
    )


def kept_dump_path(data_dir: str, database: str, stamp: str) -> str:
    """Where the replaced database's pg_dump is kept: the data folder, named after the moment."""
    return posixpath.join(data_dir, f"{database}.before-restore-{stamp.replace('-', '').replace(':', '')}.pgdump")


@dataclass
class PostgresRestore:
    """What the restore did: shown to the user, and kept in RunResult.data under the restoring host."""

    database: str
    host: str
    source: str
    backup: str = ""
    entries: int = 0  # pg_restore --list: the dump's table of contents
    tables: list[str] = field(default_factory=list)  # the tables whose rows the dump holds
    rows: dict[str, int] = field(default_factory=dict)  # after the restore
    previous: str | None = None
    stopped: list[str] = field(default_factory=list)
    media: str | None = None
    previous_media: str | None = None

    def summary(self) -> str:
        return f"backup {self.backup} restored into PostgreSQL {self.database} ({len(self.rows)} tables, " \
               f"{rows_total(self.rows)} rows)"

    def lines(self) -> list[str]:
        lines = [f"restored PostgreSQL database {self.database} (from {self.host}) from backup {self.backup} at "
                 f"{self.source}: pg_restore --list ok ({self.entries} entries, data of {len(self.tables)} tables)"]
        lines += [f"  {table}: {count} rows" for table, count in self.rows.items()]
        if self.stopped:
            lines.append(f"  the app was stopped meanwhile on {', '.join(self.stopped)}")
        if self.media:
            lines.append(f"  restored the media folder {self.media} on {self.host}")
        lines += [f"  the replaced {what} was kept as {where} on {self.host}"
                  for what, where in (("database", self.previous), ("media folder", self.previous_media)) if where]
        return lines
