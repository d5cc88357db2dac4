"""Log search over ``iact_logs.infrastructure_logs`` through the read-only ``reader`` role.

The table's partition key is ``(host, source, day)`` and its clustering key ``(ts DESC, position)``
(roles/cassandra/README.md, "Log schema"). A search names a host, a source and a time range of at most
``[logs] range_days_max`` days; it reads one partition per day, newest day first, each with
``ts >= from AND ts < to``: every query is by its whole partition key with a clustering-range restriction,
one prepared statement, never ``ALLOW FILTERING``, and the user's values are only ever bound values.

Pages hold at most ``page_size`` rows (bounded by ``[logs] page_size_max``). The next page is named by a
cursor: the day being read and the driver's paging state, signed with the secret key and tied to the
search it belongs to, so a tampered or foreign cursor is a 400, not a query.
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


def make_cursor(search: Search, day: date, state: bytes | None) -> str:
    payload = {"q": search.key(), "d": day.isoformat(),
               "s": base64.b64encode(state).decode("ascii") if state else None}
    return signing.dumps(payload, salt=CURSOR_SALT, compress=True)


def read_cursor(search: Search, token: str) -> tuple[date, bytes | None]:
    try:
        payload = signing.loads(token, salt=CURSOR_SALT)
        if not isinstance(payload, dict) or payload.get("q") != search.key():
            raise BadCursor("the cursor belongs to another search")
        day = date.fromisoformat(payload["d"])
        state = base64.b64decode(payload["s"]) if payload.get("s") else None
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise BadCursor(str(exc) if isinstance(exc, BadCursor) else "not a cursor of this search") from None
    if day not in search.days():
        raise BadCursor("the cursor's day is outside the search")
    return day, state


# --- the connection: one cluster per worker process, made after the fork ---------------------------------

class _Store:
    lock = threading.Lock()
    pid: int | None = None
    cluster: Cluster | None = None
    session: Session | None = None
    select: Any = None


def _connect(cfg: LogStoreSettings) -> tuple[Session, Any]:
    with _Store.lock:
        if _Store.pid == os.getpid() and _Store.session is not None:
            return _Store.session, _Store.select
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
            select = session.prepare(
                f"SELECT {', '.join(COLUMNS)} FROM {cfg.keyspace}.{cfg.table} "  # noqa: S608 (validated identifiers)
                "WHERE host = ? AND source = ? AND day = ? AND ts >= ? AND ts < ?")
        except Exception:
            cluster.shutdown()
            raise
        _Store.pid, _Store.cluster, _Store.session, _Store.select = os.getpid(), cluster, session, select
        return session, select


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
    days = query.days()
    day, state = read_cursor(query, cursor) if cursor else (days[0], None)
    cfg = settings.CONFIG.logs
    rows: list[dict[str, Any]] = []
    index = days.index(day)
    reads = 0
    try:
        session, select = _connect(cfg)
        while index < len(days) and len(rows) < page_size:
            bound = select.bind((query.host, query.source, days[index], query.start, query.end))
            bound.fetch_size = page_size - len(rows)
            result = session.execute(bound, paging_state=state)
            reads += 1
            rows.extend(_row(r) for r in result.current_rows)
            state = result.paging_state
            if state is None:
                index += 1
    except AgentError as exc:  # the password file is missing or readable by others
        raise ServiceUnavailable(f"the log store cannot be used: {exc}") from None
    except Exception as exc:  # the driver raises many types: NoHostAvailable, timeouts, Unauthorized...
        log.warning("log search failed: %s: %s", type(exc).__name__, exc)
        raise ServiceUnavailable(f"the log store cannot answer now ({type(exc).__name__})") from None
    next_cursor = make_cursor(query, days[index], state) if index < len(days) else None
    return Page(rows, next_cursor, reads)


def day_start(value: date) -> datetime:
    return datetime.combine(value, time(0), tzinfo=UTC)
