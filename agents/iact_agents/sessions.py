"""`iact-agent sessions cleanup`: delete expired Django sessions in bounded chunks.

The application keeps its sessions in the database (``SESSION_ENGINE = database``, RNF-002), so
expired rows pile up unless something removes them. Each ``DELETE ... LIMIT n`` is its own short
transaction, with a pause between chunks, so the table is never locked for long.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pymysql

from . import mysqlconn
from .errors import InputError, ServiceUnavailable

log = logging.getLogger(__name__)

DELETE_CHUNK = "DELETE FROM django_session WHERE expire_date < UTC_TIMESTAMP(6) LIMIT %s"


def cleanup(defaults_file: Path, *, chunk: int = 1000, pause: float = 0.05, max_seconds: float = 600.0) -> int:
    """Delete expired sessions; return how many were deleted. Stops after ``max_seconds``."""
    if chunk < 1:
        raise InputError("--chunk must be at least 1")
    deleted = 0
    deadline = time.monotonic() + max_seconds
    conn = mysqlconn.connect(defaults_file, autocommit=True)
    try:
        with conn.cursor() as cur:
            while True:
                n = cur.execute(DELETE_CHUNK, (chunk,))
                deleted += n
                if n < chunk:
                    break
                if time.monotonic() >= deadline:
                    log.warning("stopping after %.0f s with expired sessions left; the next run continues", max_seconds)
                    break
                time.sleep(pause)
    except pymysql.err.MySQLError as exc:
        raise ServiceUnavailable(f"session cleanup failed after {deleted} rows: {exc.args[-1]}") from None
    finally:
        conn.close()
    return deleted


def cmd_cleanup(args: argparse.Namespace) -> int:
    deleted = cleanup(args.mysql_defaults, chunk=args.chunk, pause=args.pause, max_seconds=args.max_seconds)
    print(f"deleted {deleted} expired sessions")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sessions = sub.add_parser("sessions", help="maintenance of the database session table")
    actions = sessions.add_subparsers(dest="sessions_action", metavar="ACTION", required=True)
    clean = actions.add_parser("cleanup", help="delete expired django_session rows in bounded chunks")
    clean.add_argument("--mysql-defaults", type=Path, default=Path("/etc/iact/mysql-app.cnf"),
                       help="MySQL option file of the app user (default: %(default)s)")
    clean.add_argument("--chunk", type=int, default=1000, help="rows per DELETE (default: %(default)s)")
    clean.add_argument("--pause", type=float, default=0.05, help="seconds between chunks (default: %(default)s)")
    clean.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long (default: %(default)s)")
    clean.set_defaults(func=cmd_cleanup)
