"""Log search over the log keyspace (``iact_logs``) through the read-only ``reader`` role.

Every collector host writes a table of its own (roles/cassandra/README.md, "Log integrity"); which table is
a host's is read from the keyspace's schema (:mod:`iact_agents.logtables`: the table whose comment names the
host), never rebuilt from the host's name. Lines written before the per-host tables are in the shared table
``[logs] table``, read after the host's own table for each day while that table exists (an upgraded cluster
keeps them until their TTL; on the upgrade day the host's own rows are the newer ones). A host's rows are
never read from another host's table.

The tables' partition key is ``(host, source, day)`` and their clustering key ``(ts DESC, position)``
("Log schema"). A search names a host, a source and a time range of at most ``[logs] range_days_max`` days;
it reads one partition per day and table, newest day first, each with ``ts >= from AND ts < to``: every
query is by its whole partition key with a clustering-range restriction, one prepared statement per table,
never ``ALLOW FILTERING``, and the user's values are only ever bound values.

Pages hold at most ``page_size`` rows (bounded by ``[logs] page_size_max``). The next page is named by a
cursor: the day and table being read and the driver's paging state, signed with the secret key and tied to
the search it belongs to, so a tampered or foreign cursor is a 400, not a query.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from django.conf import settings
from django.core import signing
from iact_agents.config import verifying_context
from iact_agents.errors import AgentError, ServiceUnavailable
from iact_agents.logtables import LogTables, read_tables

from ..config import LogStoreSettings

log = logging.getLogger(__name__)

CURSOR_SALT = "iact-web.logs.cursor"
COLUMNS = ("ts", "position", "severity", "facility", "program", "pid", "message", "parse_error", "fields")


class BadCursor(ValueError):
    """A cursor that was not made by this app for this search."""


@dataclass(frozen=True)
class Search:
    host: str
    source: str
    start: datetime
    end: datetime

    def days(self) -> list[date]:
        """The partitions' days, newest first."""
        first = self.start.astimezone(UTC).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(UTC).date()
        return [last - timedelta(days=i) for i in range((last - first).days + 1)]

    def key(self) -> list[str]:
        return [self.host, self.source, self.start.isoformat(), self.end.isoformat()]


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    partitions_read: int


def make_cursor(search: Search, day: date, table: str, state: bytes | None) -> str:
    payload = {"q": search.key(), "d": day.isoformat(), "t": table,
               "s": base64.b64encode(state).decode("ascii") if state else None}
    return signing.dumps(payload, salt=CURSOR_SALT, compress=True)


def read_cursor(search: Search, token: str) -> tuple[date, str, bytes | None]:
    try:
        payload = signing.loads(token, salt=CURSOR_SALT)
        if not isinstance(payload, dict) or payload.get("q") != search.key():
            raise BadCursor("the cursor belongs to another search")
        day = date.fromisoformat(payload["d"])
        table = payload["t"]
        if not isinstance(table, str):
            raise TypeError(table)
        state = base64.b64decode(payload["s"]) if payload.get("s") else None
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise BadCursor(str(exc) if isinstance(exc, BadCursor) else "not a cursor of this search") from None
    if day not in search.days():
        raise BadCursor("the cursor's day is outside the search")
    return day, table, state


# --- the connection: one cluster per worker process, made after the fork ---------------------------------

class _Store:
    lock = threading.Lock()
    pid: int | None = None
    cluster: Cluster | None = None
    session: Session | None = None
    tables: LogTables | None = None
    selects: dict[str, Any] = {}  # noqa: RUF012 - one per process, replaced with the connection


def _connect(cfg: LogStoreSettings) -> tuple[Session, LogTables]:
    with _Store.lock:
        if _Store.pid == os.getpid() and _Store.session is not None and _Store.tables is not None:
            return _Store.session, _Store.tables
        password = cfg.password()
        auth = (PlainTextAuthProvider(cfg.username, password.get_secret_value())
                if cfg.username is not None and password is not None else None)
        # The node's certificate must chain to the CA and name the address (roles/pki puts it in).
        ssl_context = verifying_context(cfg.ssl_ca_file) if cfg.ssl_ca_file is not None else None
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cfg.local_dc)),
            consistency_level=ConsistencyLevel.name_to_value[cfg.consistency],
            request_timeout=cfg.request_timeout_s,
        )
        cluster = Cluster(contact_points=list(cfg.contact_points), port=cfg.port, auth_provider=auth,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile}, protocol_version=cfg.protocol_version,
                          connect_timeout=cfg.connect_timeout_s, control_connection_timeout=cfg.connect_timeout_s,
                          ssl_context=ssl_context)
        try:
            session = cluster.connect()
        except Exception:
            cluster.shutdown()
            raise
        tables = LogTables(lambda: read_tables(session, cfg.keyspace))
        _Store.pid, _Store.cluster, _Store.session, _Store.tables = os.getpid(), cluster, session, tables
        _Store.selects = {}
        return session, tables


def _select(session: Session, keyspace: str, table: str) -> Any:
    """The prepared search of one table (names: the validated keyspace, a table name from the schema that
    iact_agents.logtables accepted, i.e. letters, digits and _)."""
    with _Store.lock:
        select = _Store.selects.get(table)
    if select is None:
        select = session.prepare(
            f'SELECT {", ".join(COLUMNS)} FROM {keyspace}."{table}" '  # noqa: S608 (validated identifiers)
            "WHERE host = ? AND source = ? AND day = ? AND ts >= ? AND ts < ?")
        with _Store.lock:
            _Store.selects[table] = select
    return select


def host_tables(tables: LogTables, host: str, shared: str) -> list[str]:
    """The tables to read for ``host``, in order: its own, then the shared table of the lines written before
    the per-host tables, while it exists. Empty when the keyspace has neither."""
    own = tables.table(host)
    return ([own] if own is not None else []) + ([shared] if shared != own and tables.exists(shared) else [])


def _row(row: Any) -> dict[str, Any]:
    out = {name: getattr(row, name, None) for name in COLUMNS}
    ts = out["ts"]
    if isinstance(ts, datetime) and ts.tzinfo is None:
        out["ts"] = ts.replace(tzinfo=UTC)
    out["fields"] = dict(out["fields"] or {})
    return out


def search(query: Search, page_size: int, cursor: str | None = None) -> Page:
    """One page of the search, newest lines first (BadCursor for a cursor not of this search;
    ServiceUnavailable when Cassandra cannot answer)."""
    where = read_cursor(query, cursor) if cursor else None
    cfg = settings.CONFIG.logs
    rows: list[dict[str, Any]] = []
    reads = 0
    try:
        session, tables = _connect(cfg)
        # Every partition to read, in order: each day newest first, the host's own table before the shared one.
        parts = [(d, t) for d in query.days() for t in host_tables(tables, query.host, cfg.table)]
        index, state = 0, None
        if where is not None:
            day, table, state = where
            if (day, table) not in parts:
                raise BadCursor("the cursor's table is no longer one of the host's")
            index = parts.index((day, table))
        while index < len(parts) and len(rows) < page_size:
            day, table = parts[index]
            bound = _select(session, cfg.keyspace, table).bind(
                (query.host, query.source, day, query.start, query.end))
            bound.fetch_size = page_size - len(rows)
            result = session.execute(bound, paging_state=state)
            reads += 1
            rows.extend(_row(r) for r in result.current_rows)
            state = result.paging_state
            if state is None:
                index += 1
    except BadCursor:
        raise
    except AgentError as exc:  # the password file is missing or readable by others
        raise ServiceUnavailable(f"the log store cannot be used: {exc}") from None
    except Exception as exc:  # the driver raises many types: NoHostAvailable, timeouts, Unauthorized...
        log.warning("log search failed: %s: %s", type(exc).__name__, exc)
        raise ServiceUnavailable(f"the log store cannot answer now ({type(exc).__name__})") from None
    next_cursor = make_cursor(query, *parts[index], state) if index < len(parts) else None
    return Page(rows, next_cursor, reads)


def day_start(value: date) -> datetime:
    return datetime.combine(value, time(0), tzinfo=UTC)
