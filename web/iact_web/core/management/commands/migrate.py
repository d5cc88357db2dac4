"""``iact-web migrate``: Django's migrate for Django's own tables, idempotent.

Differences from Django's command, all about one owner per table:

- the models of this project's apps are unmanaged (their tables come from roles/mysql/files/migrations),
  and ``iact_app`` has DDL on Django's own tables only, so nothing else can be created or altered here;
- ``django_session`` is created by the project's SQL migration 0004 (the session-cleanup job needed it before
  this app existed). Django's ``sessions.0001_initial`` is recorded as applied without running, once,
  after checking that the table has the columns Django's model expects;
- the last line says whether anything changed: ``changed: applied N migration(s)`` or ``unchanged``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

SESSION_TABLE = "django_session"
SESSION_COLUMNS = {"session_key", "session_data", "expire_date"}


def _applied(alias: str) -> set[tuple[str, str]]:
    recorder = MigrationRecorder(connections[alias])
    return set(recorder.applied_migrations()) if recorder.has_table() else set()


def adopt_session_table(alias: str) -> bool:
    """Record ``sessions.0001_initial`` as applied when the project's migration 0004 made the table.
    True if it was recorded now."""
    conn = connections[alias]
    recorder = MigrationRecorder(conn)
    recorder.ensure_schema()
    if ("sessions", "0001_initial") in set(recorder.applied_migrations()):
        return False
    with conn.cursor() as cur:
        tables = set(conn.introspection.table_names(cur))
        if SESSION_TABLE not in tables:
            return False  # let Django create it (a database without the project's migrations)
        columns = {c.name for c in conn.introspection.get_table_description(cur, SESSION_TABLE)}
    if not columns >= SESSION_COLUMNS:
        raise CommandError(
            f"{SESSION_TABLE} exists but lacks {sorted(SESSION_COLUMNS - columns)}: it is not the table of "
            "migration 0004_django_session.sql; fix the schema before migrating"
        )
    recorder.record_applied("sessions", "0001_initial")
    return True


class Command(migrate.Command):
    help = "Create or update Django's own tables (auth, contenttypes, admin); idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        before = _applied(alias)
        adopted = adopt_session_table(alias)
        if adopted and options["verbosity"] >= 1:
            self.stdout.write(f"  Recorded sessions.0001_initial: {SESSION_TABLE} comes from migration 0004")
        super().handle(*args, **options)
        applied = len(_applied(alias) - before)
        if options.get("plan") or options.get("check_unapplied"):
            return
        self.stdout.write(f"changed: applied {applied} migration(s)" if applied else "unchanged")
