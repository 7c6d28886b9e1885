"""`manage.py migrate` under PostgreSQL's advisory lock, so no two migrations ever run at once.

Sent as text to the release's Python (`python -c SCRIPT migrate --noinput`) in manage.py's folder;
the hosts have no djaploy. It runs manage.py itself (its settings default, its sys.path set-up), with
the migrate command wrapped: on PostgreSQL, `pg_advisory_lock` is taken through the same database
connection (so the same session) the migration then uses, and held until the process ends. A second
migrate (another deploy's primary, a `manage.py remote -- migrate`) waits for it, then finds nothing
left to apply. Other databases (SQLite: one host) migrate exactly as `manage.py migrate` does.
"""

import runpy
import sys

#: the advisory lock's key: every djaploy migrate of every release takes this one ("djaploy" in ASCII)
MIGRATION_LOCK_KEY = 0x646A61706C6F79


def _wrap_migrate() -> None:
    from django.core.management.commands import migrate

    handle = migrate.Command.handle

    def locked_handle(self, *args, **options):
        from django.db import connections

        connection = connections[options.get("database") or "default"]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
                if not cursor.fetchone()[0]:
                    sys.stderr.write("another migrate holds the migration lock; waiting for it to finish\n")
                    sys.stderr.flush()
                    cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
            sys.stderr.write("migration lock taken (pg_advisory_lock)\n")
        return handle(self, *args, **options)

    migrate.Command.handle = locked_handle


_wrap_migrate()
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
