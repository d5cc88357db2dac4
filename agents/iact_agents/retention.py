"""`iact-agent retention prune`: delete old rows of the operational tables in bounded chunks.

The health check writes one row per check, host and run (every 5 minutes), every cron job a ``job_runs``
row, and remediation (run by the health job) a ``remediations`` row per decision, as often as once per
health run while a trigger fires and a guardrail holds it back: without retention these tables grow
forever. Each table has a fixed time column; rows older than its ``--keep-days`` are deleted with
``DELETE ... LIMIT n``, each chunk its own short transaction with a pause between chunks, so the table is
never locked for long. Alerts and their notifications are kept: they are few and they are the history
operators ask about.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from . import mysqlconn
from .errors import InputError, ServiceUnavailable

log = logging.getLogger(__name__)

# Table -> column holding the row's time. Fixed here: names never come from the command line into SQL.
TABLES: dict[str, str] = {
    "health_checks": "checked_at",
    "job_runs": "started_at",
    "remediations": "decided_at",
}

DEFAULT_KEEP_DAYS: dict[str, int] = {
    "health_checks": 90,
    "job_runs": 400,
    # Decisions are the record of what a machine did to production (and of what it held back): kept as
    # long as the job runs, a year and a month, to compare with the same month a year before. The
    # budgets read only the last 24 hours, so any retention of at least 1 day keeps them right.
    "remediations": 400,
}
"""Days kept per table when ``--keep-days`` does not name it (roles/cron's retention job passes them all)."""


@dataclass(frozen=True)
class Pruned:
    table: str
    keep_days: int
    deleted: int
    complete: bool
    """False when the time budget ran out with old rows left (the next run continues)."""


def prune(defaults_file: Path, keep_days: dict[str, int], *, chunk: int = 5000, pause: float = 0.05,
          max_seconds: float = 900.0) -> list[Pruned]:
    """Delete the rows older than ``keep_days[table]`` days from each table; one result per table."""
    if chunk < 1:
        raise InputError("--chunk must be at least 1")
    unknown = sorted(set(keep_days) - set(TABLES))
    if unknown:
        raise InputError(f"unknown table {unknown[0]!r}: retention knows {', '.join(sorted(TABLES))}")
    for table, days in keep_days.items():
        if days < 1:
            raise InputError(f"--keep-days {table}={days}: must be at least 1 day")
    deadline = time.monotonic() + max_seconds
    results: list[Pruned] = []
    conn = mysqlconn.connect(defaults_file, autocommit=True)
    try:
        with conn.cursor() as cur:
            for table, days in sorted(keep_days.items()):
                column = TABLES[table]
                # Both names come from TABLES above, never from input; the values are parameters.
                statement = (f"DELETE FROM {table} WHERE {column} < UTC_TIMESTAMP(6) - INTERVAL %s DAY"  # noqa: S608
                             f" ORDER BY {column} LIMIT %s")
                deleted, complete = 0, True
                while True:
                    try:
                        n = cur.execute(statement, (days, chunk))
                    except pymysql.err.MySQLError as exc:
                        raise ServiceUnavailable(
                            f"retention of {table} failed after {deleted} rows: {exc.args[-1]}") from None
                    deleted += n
                    if n < chunk:
                        break
                    if time.monotonic() >= deadline:
                        log.warning("%s: stopping after %.0f s with old rows left; the next run continues",
                                    table, max_seconds)
                        complete = False
                        break
                    time.sleep(pause)
                results.append(Pruned(table, days, deleted, complete))
    finally:
        conn.close()
    return results


def parse_keep(values: list[str] | None) -> dict[str, int]:
    keep = dict(DEFAULT_KEEP_DAYS)
    for value in values or []:
        table, sep, days = value.partition("=")
        digits = days.strip()
        # isdecimal, not isdigit: int() refuses digits such as '²' that isdigit accepts; at most 5 of them
        # (273 years), so int() never meets a number too long to convert
        if not sep or not digits.isdecimal() or len(digits) > 5:
            raise InputError(f"--keep-days {value[:80]!r}: expected TABLE=DAYS (at most 99999 days), "
                             "e.g. health_checks=90")
        keep[table.strip()] = int(digits)
    return keep


def cmd_prune(args: argparse.Namespace) -> int:
    results = prune(args.mysql_defaults, parse_keep(args.keep_days), chunk=args.chunk, pause=args.pause,
                    max_seconds=args.max_seconds)
    for r in results:
        print(f"{r.table}: deleted {r.deleted} rows older than {r.keep_days} days"
              + ("" if r.complete else " (time budget reached, more left for the next run)"))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = sub.add_parser("retention",
                               help="retention of the operational tables (" + ", ".join(TABLES) + ")")
    actions = retention.add_subparsers(dest="retention_action", metavar="ACTION", required=True)
    p = actions.add_parser("prune", help="delete rows older than their retention, in bounded chunks")
    p.add_argument("--mysql-defaults", type=Path, default=Path("/etc/iact/mysql-health.cnf"),
                   help="MySQL option file of a user with DELETE on the tables (default: %(default)s)")
    p.add_argument("--keep-days", action="append", metavar="TABLE=DAYS",
                   help="days to keep per table (default: "
                        + ", ".join(f"{t}={d}" for t, d in DEFAULT_KEEP_DAYS.items()) + "); repeatable")
    p.add_argument("--chunk", type=int, default=5000, help="rows per DELETE (default: %(default)s)")
    p.add_argument("--pause", type=float, default=0.05, help="seconds between chunks (default: %(default)s)")
    p.add_argument("--max-seconds", type=float, default=900.0, help="stop after this long (default: %(default)s)")
    p.set_defaults(func=cmd_prune)
