"""Which Cassandra table holds a host's log lines.

Every collector host writes a table of its own, as a role of its own that may modify only that table
(roles/cassandra README, "Log integrity"). The cassandra role names the table after a slug of the host's
inventory name and writes the host's name into the table's comment, ``COMMENT_PREFIX + host``. Readers do
not rebuild the slug: they read the keyspace's table names and comments from ``system_schema.tables``
(readable by every role) and map host -> table here. A collector cannot change its table's comment (that
needs ALTER), so a host's rows are read only from the table the cassandra role made for that host.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

COMMENT_PREFIX = "iact-ops log lines of host "
"""Start of a per-host table's comment (roles/cassandra/vars/main.yml, ``__cassandra_log_writer_comment_prefix``;
a repository test keeps both equal)."""

SCHEMA_CQL = "SELECT table_name, comment FROM system_schema.tables WHERE keyspace_name = %s"

# Names a query may use unquoted: what Cassandra itself allows for a table (letters, digits, _; 48 at most).
_TABLE_NAME = re.compile(r"[A-Za-z0-9_]{1,48}")


def host_of(comment: object) -> str | None:
    """The host a table's comment names, or ``None`` when the table is not a host's own log table."""
    if not isinstance(comment, str) or not comment.startswith(COMMENT_PREFIX):
        return None
    host = comment[len(COMMENT_PREFIX):]
    return host if host and host.strip() == host and host.isprintable() else None


@dataclass(frozen=True)
class Tables:
    """The log tables of one keyspace: every table's name and the per-host tables by host."""

    names: frozenset[str]
    by_host: Mapping[str, str]


def tables_from_rows(rows: Iterable[tuple[object, object]]) -> Tables:
    """``Tables`` from ``(table_name, comment)`` rows. Names a query could not use are left out; when two
    tables name the same host (the role never makes that), the first name in sorted order is used."""
    names: set[str] = set()
    by_host: dict[str, str] = {}
    for name, comment in sorted(((n, c) for n, c in rows if isinstance(n, str)), key=lambda r: r[0]):
        if not _TABLE_NAME.fullmatch(name):
            continue
        names.add(name)
        host = host_of(comment)
        if host is None:
            continue
        if host in by_host:
            log.warning("tables %s and %s both name host %r; reading %s", by_host[host], name, host, by_host[host])
            continue
        by_host[host] = name
    return Tables(frozenset(names), by_host)


def read_tables(session: Any, keyspace: str) -> Tables:
    """The keyspace's tables as ``system_schema.tables`` lists them now (a driver ``Session``)."""
    return tables_from_rows((r.table_name, r.comment) for r in session.execute(SCHEMA_CQL, [keyspace]))


class LogTables:
    """host -> table of one keyspace, kept for ``max_age_s`` seconds. A host that is not in the copy (a
    collector registered since) makes it re-read at once, but not more often than every ``miss_interval_s``
    seconds, so searches for unknown hosts cannot turn into a stream of schema reads. Thread-safe."""

    def __init__(self, fetch: Callable[[], Tables], *, max_age_s: float = 60.0, miss_interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._miss_interval_s = miss_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._tables: Tables | None = None
        self._read_at = 0.0

    def _current(self, *, missing: str | None = None) -> Tables:
        with self._lock:
            now = self._clock()
            age = now - self._read_at
            tables = self._tables
            if (tables is None or age >= self._max_age_s
                    or (missing is not None and missing not in tables.by_host and age >= self._miss_interval_s)):
                tables = self._fetch()
                self._tables, self._read_at = tables, now
            return tables

    def table(self, host: str) -> str | None:
        """The table of ``host``'s own lines, or ``None`` when the keyspace has none for it."""
        return self._current(missing=host).by_host.get(host)

    def exists(self, name: str) -> bool:
        """Whether the keyspace has a table of that name (as of the kept copy)."""
        return name in self._current().names
