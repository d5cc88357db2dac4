"""The DORA tables in MySQL/MariaDB: idempotent ingest, dead letters, event loading and snapshots.

Every write is one transaction run by :meth:`Database.run`, which retries it with exponential backoff
when the server reports a transient failure (connection lost or refused, deadlock, lock wait timeout):
the whole batch is rolled back and replayed, so a batch is either stored completely or not at all, and
the replay is harmless because every statement is an upsert keyed by ``(source, source_event_id)``.

Upserts use ``INSERT ... ON DUPLICATE KEY UPDATE``, whose affected-row count says what happened: 1 a new
row, 2 an existing row that changed (an incident that got its ``resolved_at``), 0 an identical row (a
re-sent event: a no-op). Datetimes are stored as naive UTC ``DATETIME(6)``. Identifiers (``source``,
``source_event_id``, the references) are compared exactly by the database (binary collation, migration
0013), as Python compares them.

What goes wrong is said as it is: a server that cannot be reached (or stays busy through the retries)
is :class:`~iact_agents.errors.ServiceUnavailable` (exit 3); a server that answers and refuses a
statement (a packet over ``max_allowed_packet``, a value the table does not take, a missing privilege)
is :class:`StoreRefused` (exit 4). A refusal caused by the data of one event costs only that event: its
batch is replayed one event at a time and the refused one becomes a dead letter, field ``(store)``.
"""

# ruff: noqa: S608  (SQL text is built only from this module's table and column names; values are bound)
from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pymysql
import pymysql.cursors
from pydantic import ValidationError

from .. import mysqlconn, storable
from ..errors import AgentError, ServiceUnavailable
from .models import (
    RAW_PREFIX_BYTES,
    Change,
    Deployment,
    FieldError,
    Incident,
    ParseResult,
    Rejection,
    parse_json,
    read_line,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Server errors worth a retry: the statement may succeed on a fresh connection or a second try.
TRANSIENT_ERRORS = frozenset({
    1205,  # ER_LOCK_WAIT_TIMEOUT
    1213,  # ER_LOCK_DEADLOCK
    2003,  # CR_CONN_HOST_ERROR (cannot connect)
    2006,  # CR_SERVER_GONE_ERROR
    2013,  # CR_SERVER_LOST
    4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
})
# Server errors that mean "no conversation with the server", besides every client error (2000-2999).
CONNECTION_ERRORS = frozenset({
    1040,  # ER_CON_COUNT_ERROR (too many connections)
    1053,  # ER_SERVER_SHUTDOWN
    1152,  # ER_ABORTING_CONNECTION
    1158, 1159,  # ER_NET_READ_ERROR, ER_NET_READ_INTERRUPTED
    1160, 1161,  # ER_NET_ERROR_ON_WRITE, ER_NET_WRITE_INTERRUPTED
    1927,  # ER_CONNECTION_KILLED
    4031,  # ER_CLIENT_INTERACTION_TIMEOUT
})
# Server errors about the data of the statement (its row, its size): one event's fault, not the batch's.
ROW_ERRORS = frozenset({
    1048,  # ER_BAD_NULL_ERROR
    1062,  # ER_DUP_ENTRY
    1153,  # ER_NET_PACKET_TOO_LARGE (bigger than max_allowed_packet)
    1264,  # ER_WARN_DATA_OUT_OF_RANGE
    1265,  # WARN_DATA_TRUNCATED
    1292,  # ER_TRUNCATED_WRONG_VALUE (e.g. an incorrect datetime)
    1300,  # ER_INVALID_CHARACTER_STRING
    1366,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD (e.g. an incorrect string value)
    1406,  # ER_DATA_TOO_LONG
    1452,  # ER_NO_REFERENCED_ROW_2
    3140,  # ER_INVALID_JSON_TEXT
    4025,  # ER_CONSTRAINT_FAILED (a CHECK constraint)
})
BATCH_SIZE = 500
DEAD_LETTER_SOURCE_MAX = 64
REASON_MAX = 1024
# Column sizes of the text the dead-letter table keeps (migrations 0001, 0011).
_DL_EVENT_TYPE_MAX, _DL_ID_MAX, _DL_FIELD_MAX, _DL_INPUT_MAX = 16, 191, 191, 255


class StoreRefused(AgentError):
    """MySQL answered and refused a statement: not a connection problem, so a retry does not help.
    ``per_row``: the refusal is about the data of the statement (its values, its size), so the other
    events of a batch can still be stored. Exit code 4."""

    exit_code = 4

    def __init__(self, message: str, detail: str, code: int | None = None, *, per_row: bool = False) -> None:
        super().__init__(message)
        self.detail = detail
        """What the server said, e.g. ``(1406) Data too long for column 'title' at row 1``."""
        self.code = code
        self.per_row = per_row


def error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _server_message(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) > 1 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(exc)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):  # the connection is already closed
        return True
    if isinstance(exc, ServiceUnavailable):  # from mysqlconn.connect: "... (code) message"
        found = re.search(r"\((\d+)\)", str(exc))
        return found is not None and int(found.group(1)) in TRANSIENT_ERRORS
    return isinstance(exc, pymysql.err.OperationalError) and error_code(exc) in TRANSIENT_ERRORS


def is_unreachable(exc: BaseException) -> bool:
    """No conversation with the server: connection refused, lost, killed, timed out."""
    if isinstance(exc, ServiceUnavailable | pymysql.err.InterfaceError):
        return True
    code = error_code(exc)
    return code is not None and (2000 <= code < 3000 or code in CONNECTION_ERRORS)


def failure(exc: BaseException, what: str, attempts: int) -> AgentError:
    """The agent error that says what went wrong with ``what`` after ``attempts`` tries."""
    if isinstance(exc, ServiceUnavailable):
        return exc
    if isinstance(exc, UnicodeEncodeError):  # refused before it was sent
        detail = f"a value is not UTF-8 text ({exc.reason})"
        return StoreRefused(f"{what}: {detail}", detail, per_row=True)
    detail = _server_message(exc)
    if is_transient(exc) or is_unreachable(exc):
        return ServiceUnavailable(f"{what} failed after {attempts} attempt(s), MySQL unreachable or busy: {detail}")
    code = error_code(exc)
    return StoreRefused(f"{what}: MySQL refused it: {detail}", detail, code, per_row=code in ROW_ERRORS)


def utc_naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def utc_aware(value: Any) -> Any:
    """A stored naive UTC datetime as an aware one; anything else (NULL, or what the driver returns for
    a zero date: a string) unchanged, for the model to accept or refuse."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value


class Database:
    """One connection from an option file, reopened as needed; :meth:`run` is the retrying transaction."""

    def __init__(
        self,
        defaults_file: Path,
        *,
        connect_timeout: float = 5.0,
        attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.defaults_file = defaults_file
        self.connect_timeout = connect_timeout
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._conn: pymysql.Connection | None = None
        self.retries = 0
        """Transient failures retried so far (for the counts printed and for tests)."""

    def connection(self) -> pymysql.Connection:
        if self._conn is None:
            conn = mysqlconn.connect(self.defaults_file, connect_timeout=self.connect_timeout, autocommit=False)
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.err.Error):
                self._conn.close()
            self._conn = None

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(pymysql.err.Error):
                conn.rollback()
            with contextlib.suppress(pymysql.err.Error):
                conn.close()

    def run(self, work: Callable[[pymysql.cursors.Cursor], T], what: str = "database operation") -> T:
        """Run ``work(cursor)`` in one transaction and commit; on a transient error, roll back, wait and
        replay it on a fresh connection, up to ``attempts`` tries in all."""
        delay = self.base_delay
        for attempt in range(1, self.attempts + 1):
            try:
                conn = self.connection()
                with conn.cursor() as cur:
                    result = work(cur)
                conn.commit()
                return result
            except (pymysql.err.MySQLError, ServiceUnavailable, UnicodeEncodeError) as exc:
                self._discard()
                if not is_transient(exc) or attempt == self.attempts:
                    raise failure(exc, what, attempt) from None
                self.retries += 1
                log.warning("%s: transient MySQL error (%s), retry %d in %.1f s", what, exc, attempt, delay)
                self._sleep(delay)
                delay = min(delay * 2, self.max_delay)
            except BaseException:
                self._discard()
                raise
        raise AssertionError("unreachable")  # pragma: no cover


# --- ingest -------------------------------------------------------------------------------------------


@dataclass
class IngestCounts:
    """What became of every input line; ``read`` = accepted + duplicates + rejected, and accepted =
    inserted + updated + unchanged."""

    read: int = 0
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_letters_new: int = 0
    dead_letters_resolved: int = 0
    retries: int = 0
    rejections: list[str] = field(default_factory=list)

    def add(self, other: IngestCounts) -> None:
        for name in ("read", "accepted", "inserted", "updated", "unchanged", "duplicates", "rejected",
                     "dead_letters_new", "dead_letters_resolved", "retries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejections.extend(other.rejections)

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.dead_letters_new)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read, "accepted": self.accepted, "inserted": self.inserted, "updated": self.updated,
            "unchanged": self.unchanged, "duplicates": self.duplicates, "rejected": self.rejected,
            "dead_letters_new": self.dead_letters_new, "dead_letters_resolved": self.dead_letters_resolved,
            "retries": self.retries, "changed": self.changed,
        }


def event_row(event: Deployment | Change | Incident) -> tuple[str, dict[str, Any]]:
    """The table and the row of one event (``change_ids`` go to ``deployment_changes``, apart)."""
    base = {"source": event.source, "source_event_id": event.source_event_id, "service": event.service}
    if isinstance(event, Deployment):
        return "deployments", {
            **base, "environment": event.environment, "version": event.version, "commit_sha": event.commit_sha,
            "status": event.status, "started_at": utc_naive(event.started_at),
            "finished_at": utc_naive(event.deployed_at),
        }
    if isinstance(event, Change):
        return "changes", {
            **base, "commit_sha": event.commit_sha, "committed_at": utc_naive(event.committed_at),
            "authored_at": utc_naive(event.authored_at), "first_commit_at": utc_naive(event.first_commit_at),
            "deployment_ref": event.deployment_id,
        }
    return "incidents", {
        **base, "environment": event.environment, "severity": event.severity, "title": event.title,
        "started_at": utc_naive(event.started_at), "resolved_at": utc_naive(event.resolved_at),
        "deployment_ref": event.deployment_id,
    }


def _upsert(cur: pymysql.cursors.Cursor, table: str, row: dict[str, Any]) -> int:
    cols = list(row)
    updates = ", ".join(f"{c} = VALUES({c})" for c in cols if c not in ("source", "source_event_id"))
    sql = (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        f"ON DUPLICATE KEY UPDATE {updates}"
    )
    return int(cur.execute(sql, [row[c] for c in cols]))


def upsert_event(cur: pymysql.cursors.Cursor, event: Deployment | Change | Incident) -> str:
    """Store one event; ``inserted``, ``updated`` or ``unchanged``."""
    table, row = event_row(event)
    affected = _upsert(cur, table, row)
    if isinstance(event, Deployment):
        cur.execute("SELECT id FROM deployments WHERE source = %s AND source_event_id = %s",
                    (event.source, event.source_event_id))
        found = cur.fetchone()
        assert found is not None  # the upsert above made the row
        dep_id = found[0]
        cur.execute("SELECT change_ref FROM deployment_changes WHERE deployment_id = %s", (dep_id,))
        have = {r[0] for r in cur.fetchall()}
        want = set(event.change_ids)
        if have != want:
            cur.execute("DELETE FROM deployment_changes WHERE deployment_id = %s", (dep_id,))
            if want:
                cur.executemany("INSERT INTO deployment_changes (deployment_id, change_ref) VALUES (%s, %s)",
                                [(dep_id, ref) for ref in sorted(want)])
            if affected == 0:
                affected = 2
    return {1: "inserted", 2: "updated"}.get(affected, "unchanged")


def _resolve_dead_letters(cur: pymysql.cursors.Cursor, event: Deployment | Change | Incident) -> int:
    """A valid event supersedes the pending dead letters of the same type, source and id."""
    return int(cur.execute(
        "UPDATE dora_rejected_events SET reprocessed_at = NOW(6) "
        "WHERE reprocessed_at IS NULL AND source = %s AND event_type = %s AND source_event_id = %s",
        (event.source, event.type, event.source_event_id),
    ))


def _reason(rejection: Rejection) -> str:
    return "; ".join(f"{e.field}: {e.reason}" for e in rejection.errors)[:REASON_MAX]


def _clip(value: str | None, limit: int) -> str | None:
    return (storable.clean_text(value)[:limit] or None) if value else None


def dead_letter_row(rejection: Rejection, input_name: str, default_source: str | None) -> tuple[Any, ...]:
    """``(source, payload, payload_sha256, event_type, source_event_id, field, input_name, reason)`` of a
    dead letter, each cut to its column (a rejection's own text is already storable and bounded)."""
    source = _clip(rejection.source or default_source, DEAD_LETTER_SOURCE_MAX) or "unknown"
    return (source, rejection.raw, rejection.raw_sha256, _clip(rejection.event_type, _DL_EVENT_TYPE_MAX),
            _clip(rejection.source_event_id, _DL_ID_MAX), rejection.field[:_DL_FIELD_MAX],
            _clip(f"{input_name}:{rejection.line}", _DL_INPUT_MAX), _reason(rejection))


def store_rejection(
    cur: pymysql.cursors.Cursor, rejection: Rejection, input_name: str, default_source: str | None
) -> bool:
    """Keep a rejected line as a pending dead letter; True if it is a new one (the same bad line again
    only counts an attempt)."""
    affected = cur.execute(
        "INSERT INTO dora_rejected_events (source, payload, payload_sha256, event_type, source_event_id, field, "
        "input_name, reason, attempts, last_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, NOW(6)) "
        "ON DUPLICATE KEY UPDATE reason = VALUES(reason), field = VALUES(field), "
        "input_name = VALUES(input_name), attempts = attempts + 1, last_attempt_at = NOW(6), "
        "reprocessed_at = NULL",
        dead_letter_row(rejection, input_name, default_source),
    )
    return affected == 1


def _in_batches(
    db: Database, items: Sequence[T], work: Callable[[pymysql.cursors.Cursor, Sequence[T]], R],
    add: Callable[[R], None], *, what: str, batch_size: int = BATCH_SIZE,
) -> list[tuple[T, StoreRefused]]:
    """``work`` over ``items`` in batches, each one retried transaction whose result goes to ``add``. A
    batch refused because of its data is replayed one item at a time; the items refused alone are
    returned with their refusal. Other failures end the run."""

    def run(chunk: Sequence[T]) -> R:
        def unit(cur: pymysql.cursors.Cursor) -> R:
            return work(cur, chunk)
        return db.run(unit, what)

    refused: list[tuple[T, StoreRefused]] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        try:
            add(run(chunk))
            continue
        except StoreRefused as exc:
            if not exc.per_row:
                raise
            if len(chunk) == 1:
                refused.append((chunk[0], exc))
                continue
            log.warning("%s; storing that batch one by one", exc)
        for item in chunk:
            try:
                add(run([item]))
            except StoreRefused as one:
                if not one.per_row:
                    raise
                refused.append((item, one))
    return refused


def _refused_event(parsed: ParseResult, index: int, exc: StoreRefused) -> Rejection:
    event = parsed.accepted[index]
    try:
        raw = event.model_dump_json()
    except ValueError:
        raw = repr(event)
    return Rejection(parsed.line_of(index), (FieldError("(store)", f"MySQL refused it: {exc.detail}"),), raw,
                     event.type, event.source_event_id, event.source)


def ingest(
    db: Database, parsed: ParseResult, input_name: str, *, default_source: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestCounts:
    """Store the accepted events (in batches, each one retried transaction) and the rejected lines.

    An event the server refuses because of its data becomes a dead letter (field ``(store)``) and is
    counted as rejected; the other events of its batch are stored. A dead letter the server refuses is
    stored again with only the first :data:`~.models.RAW_PREFIX_BYTES` of its line."""
    total = IngestCounts(
        read=parsed.lines_read, accepted=len(parsed.accepted), duplicates=len(parsed.duplicates),
        rejected=len(parsed.rejected), rejections=[r.describe() for r in parsed.rejected],
    )
    before = db.retries

    def store_events(cur: pymysql.cursors.Cursor, chunk: Sequence[int]) -> IngestCounts:
        got = IngestCounts()
        for index in chunk:
            event = parsed.accepted[index]
            outcome = upsert_event(cur, event)
            setattr(got, outcome, getattr(got, outcome) + 1)
            got.dead_letters_resolved += _resolve_dead_letters(cur, event)
        return got

    refused = _in_batches(db, range(len(parsed.accepted)), store_events, total.add, what=f"ingest of {input_name}",
                          batch_size=batch_size)
    letters = [*parsed.rejected, *(_refused_event(parsed, i, exc) for i, exc in refused)]
    total.accepted -= len(refused)
    total.rejected += len(refused)
    total.rejections.extend(r.describe() for r in letters[len(parsed.rejected):])

    def store_letters(cur: pymysql.cursors.Cursor, chunk: Sequence[Rejection]) -> int:
        return sum(store_rejection(cur, r, input_name, default_source) for r in chunk)

    def count_new(n: int) -> None:
        total.dead_letters_new += n

    what = f"dead letters of {input_name}"
    for letter, exc in _in_batches(db, letters, store_letters, count_new, what=what, batch_size=batch_size):
        log.warning("%s (line %d); keeping only the start of the line", exc, letter.line)
        short = [replace(letter, raw=storable.utf8_prefix(letter.raw, RAW_PREFIX_BYTES))]
        count_new(db.run(partial(store_letters, chunk=short), what))
    total.retries = db.retries - before
    return total


# --- dead letters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    id: int
    source: str
    event_type: str | None
    source_event_id: str | None
    field: str | None
    reason: str
    input_name: str | None
    attempts: int
    received_at: datetime
    reprocessed_at: datetime | None
    payload: str


_DL_COLUMNS = ("id, source, event_type, source_event_id, field, reason, input_name, attempts, received_at, "
               "reprocessed_at, payload")


def list_dead_letters(
    db: Database, *, pending_only: bool = True, source: str | None = None, ids: Sequence[int] = ()
) -> list[DeadLetter]:
    where = ["1 = 1"]
    args: list[Any] = []
    if pending_only:
        where.append("reprocessed_at IS NULL")
    if source is not None:
        where.append("source = %s")
        args.append(source)
    if ids:
        where.append(f"id IN ({', '.join(['%s'] * len(ids))})")
        args.extend(ids)

    def work(cur: pymysql.cursors.Cursor) -> list[DeadLetter]:
        cur.execute(f"SELECT {_DL_COLUMNS} FROM dora_rejected_events WHERE {' AND '.join(where)} ORDER BY id", args)
        return [DeadLetter(*row) for row in cur.fetchall()]

    return db.run(work, "dead letter listing")


@dataclass
class RetryCounts:
    retried: int = 0
    ingested: int = 0
    still_rejected: int = 0
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"retried": self.retried, "ingested": self.ingested, "still_rejected": self.still_rejected}


def _validate_again(payload: str | bytes, source: str) -> Deployment | Change | Incident | Rejection:
    text = read_line(payload, 0)
    if text is None:
        return Rejection(0, (FieldError("(event)", "empty"),), "")
    return text if isinstance(text, Rejection) else parse_json(text, 0, source)


def retry_dead_letters(
    db: Database, letters: Iterable[DeadLetter], *, fixed_payload: str | bytes | None = None
) -> RetryCounts:
    """Validate each pending dead letter again (with ``fixed_payload`` instead of its own, for one
    letter corrected by hand); valid ones are ingested and marked reprocessed, the others keep
    waiting with the new reason and one more attempt (as do events the server refuses)."""
    counts = RetryCounts()
    for letter in letters:
        counts.retried += 1
        event = _validate_again(fixed_payload if fixed_payload is not None else letter.payload, letter.source)
        bad_reason = _reason(event) if isinstance(event, Rejection) else None

        def still_bad(cur: pymysql.cursors.Cursor, reason: str, letter: DeadLetter = letter) -> bool:
            cur.execute("UPDATE dora_rejected_events SET reason = %s, attempts = attempts + 1, "
                        "last_attempt_at = NOW(6) WHERE id = %s", (reason[:REASON_MAX], letter.id))
            return False

        def work(cur: pymysql.cursors.Cursor, event: Any = event, letter: DeadLetter = letter) -> bool:
            if isinstance(event, Rejection):
                return still_bad(cur, _reason(event))
            upsert_event(cur, event)
            _resolve_dead_letters(cur, event)
            cur.execute("UPDATE dora_rejected_events SET reprocessed_at = NOW(6), attempts = attempts + 1, "
                        "last_attempt_at = NOW(6) WHERE id = %s", (letter.id,))
            return True

        what = f"retry of dead letter {letter.id}"
        try:
            done = db.run(work, what)
        except StoreRefused as exc:
            if not exc.per_row:
                raise
            bad_reason = f"(store): MySQL refused it: {exc.detail}"
            done = db.run(partial(still_bad, reason=bad_reason), what)
        if done:
            counts.ingested += 1
            counts.messages.append(f"dead letter {letter.id}: ingested")
        else:
            counts.still_rejected += 1
            counts.messages.append(f"dead letter {letter.id}: still rejected: {bad_reason}")
    return counts


# --- loading events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedRow:
    """A stored row that is no longer a valid event (a timestamp outside the storable range, stored
    before ingest checked it; a value written around the agent): left out of compute, reported by the
    quality checks."""

    table: str
    row_id: int
    source: str
    source_event_id: str
    service: str
    reason: str

    @property
    def event_type(self) -> str:
        return self.table.removesuffix("s")


@dataclass
class LoadedEvents:
    deployments: list[Deployment]
    changes: list[Change]
    incidents: list[Incident]
    skipped_rows: list[SkippedRow] = field(default_factory=list)
    pending_dead_letters: int = 0
    dead_letter_samples: list[tuple[str, str, str]] = field(default_factory=list)
    """``(event_type, source_event_id or input, reason)`` of up to 50 pending dead letters."""

    @property
    def total(self) -> int:
        return len(self.deployments) + len(self.changes) + len(self.incidents)

    @property
    def skipped(self) -> int:
        return len(self.skipped_rows)


def _source_filter(sources: Sequence[str], column: str = "source") -> tuple[str, list[Any]]:
    if not sources:
        return "", []
    return f" WHERE {column} IN ({', '.join(['%s'] * len(sources))})", list(sources)


def event_from_row(
    table: str, row_id: int, data: dict[str, Any]
) -> Deployment | Change | Incident | SkippedRow:
    """The event of one stored row, or why it is not one; never raises."""
    models: dict[str, type[Deployment] | type[Change] | type[Incident]] = {
        "deployments": Deployment, "changes": Change, "incidents": Incident}
    try:
        return models[table].model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "(row)"
        reason = f"{where}: {err['msg']}"
    except (ValueError, TypeError, OverflowError) as exc:  # pragma: no cover - pydantic wraps these
        reason = f"{type(exc).__name__}: {exc}"
    def text(name: str) -> str:
        return storable.clean_text(str(data.get(name)))

    return SkippedRow(table, row_id, text("source"), text("source_event_id"), text("service"),
                      storable.clean_text(reason))


def load_events(db: Database, sources: Sequence[str] = ()) -> LoadedEvents:
    """Every stored event (of ``sources`` only, if given) as models; a row that is no longer a valid
    event is skipped with a warning and kept in ``skipped_rows`` for the quality checks."""

    def work(cur: pymysql.cursors.Cursor) -> LoadedEvents:
        where, args = _source_filter(sources)
        out = LoadedEvents([], [], [])
        cur.execute(f"SELECT id, source, source_event_id, service, environment, version, commit_sha, status, "
                    f"started_at, finished_at FROM deployments{where}", args)
        dep_rows = cur.fetchall()
        where_dc, args_dc = _source_filter(sources, "d.source")
        cur.execute("SELECT dc.deployment_id, dc.change_ref FROM deployment_changes dc "
                    f"JOIN deployments d ON d.id = dc.deployment_id{where_dc}", args_dc)
        links: dict[int, list[str]] = {}
        for dep_id, ref in cur.fetchall():
            links.setdefault(dep_id, []).append(ref)
        for (dep_id, source, sid, service, env, version, sha, status, started, finished) in dep_rows:
            _append(out, "deployments", dep_id, {
                "source": source, "source_event_id": sid, "service": service, "environment": env,
                "version": version, "commit_sha": sha, "status": status, "started_at": utc_aware(started),
                "deployed_at": utc_aware(finished), "change_ids": tuple(sorted(links.get(dep_id, []))),
            })
        cur.execute(f"SELECT id, source, source_event_id, service, commit_sha, committed_at, authored_at, "
                    f"first_commit_at, deployment_ref FROM changes{where}", args)
        for (row_id, source, sid, service, sha, committed, authored, first, ref) in cur.fetchall():
            _append(out, "changes", row_id, {
                "source": source, "source_event_id": sid, "service": service, "commit_sha": sha,
                "committed_at": utc_aware(committed), "authored_at": utc_aware(authored),
                "first_commit_at": utc_aware(first), "deployment_id": ref,
            })
        cur.execute(f"SELECT id, source, source_event_id, service, environment, severity, title, started_at, "
                    f"resolved_at, deployment_ref FROM incidents{where}", args)
        for (row_id, source, sid, service, env, severity, title, started, resolved, ref) in cur.fetchall():
            _append(out, "incidents", row_id, {
                "source": source, "source_event_id": sid, "service": service, "environment": env,
                "severity": severity, "title": title, "started_at": utc_aware(started),
                "resolved_at": utc_aware(resolved), "deployment_id": ref,
            })
        pending = "reprocessed_at IS NULL" + (f" AND source IN ({', '.join(['%s'] * len(sources))})"
                                              if sources else "")
        cur.execute(f"SELECT COUNT(*) FROM dora_rejected_events WHERE {pending}", list(sources))
        count = cur.fetchone()
        out.pending_dead_letters = int(count[0]) if count else 0
        cur.execute(f"SELECT COALESCE(event_type, 'unknown'), COALESCE(source_event_id, input_name, ''), reason "
                    f"FROM dora_rejected_events WHERE {pending} ORDER BY id LIMIT 50", list(sources))
        out.dead_letter_samples = [tuple(r) for r in cur.fetchall()]
        return out

    return db.run(work, "loading the DORA events")


def _append(out: LoadedEvents, table: str, row_id: int, data: dict[str, Any]) -> None:
    got = event_from_row(table, row_id, data)
    if isinstance(got, SkippedRow):
        out.skipped_rows.append(got)
        log.warning("stored %s row %d (%s/%s) is not a valid event, skipped: %s", table, row_id, got.source,
                    got.source_event_id, got.reason)
    elif isinstance(got, Deployment):
        out.deployments.append(got)
    elif isinstance(got, Change):
        out.changes.append(got)
    else:
        out.incidents.append(got)



# --- snapshots ----------------------------------------------------------------------------------------

SNAPSHOT_COLUMNS = (
    "service", "window_days", "computed_on", "window_start", "window_end", "benchmark_year",
    "deployments_count", "failed_deployments_count", "deployment_days", "deployment_frequency",
    "deployment_days_per_week", "deployment_frequency_class", "changes_count", "lead_time_seconds",
    "lead_time_p90_seconds", "lead_time_class", "changes_invalid_count", "changes_undeployed_count",
    "failed_changes_count", "change_failure_rate", "change_failure_rate_class", "incidents_count",
    "time_to_restore_seconds", "time_to_restore_class", "incidents_unresolved_count",
    "incidents_unlinked_count", "incidents_invalid_count", "quality_score", "reasons",
)
_KEY = ("service", "window_days", "computed_on")


@dataclass
class SnapshotCounts:
    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.replaced)

    def as_dict(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "replaced": self.replaced, "unchanged": self.unchanged,
                "changed": self.changed}


def _db_value(column: str, value: Any) -> Any:
    if column == "reasons":
        return json.dumps(value, sort_keys=True)
    if isinstance(value, datetime):
        return utc_naive(value)
    return value


def write_snapshots(db: Database, rows: Sequence[dict[str, Any]]) -> SnapshotCounts:
    """Upsert snapshot rows on ``(service, window_days, computed_on)``: recomputing a day replaces its
    rows (``computed_at`` moves only when a value changed)."""
    cols = SNAPSHOT_COLUMNS
    updates = ", ".join(f"{c} = VALUES({c})" for c in cols if c not in _KEY)
    sql = (f"INSERT INTO dora_metrics ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
           f"ON DUPLICATE KEY UPDATE {updates}")

    def work(cur: pymysql.cursors.Cursor) -> SnapshotCounts:
        counts = SnapshotCounts()
        for row in rows:
            affected = cur.execute(sql, [_db_value(c, row.get(c)) for c in cols])
            if affected == 1:
                counts.inserted += 1
            elif affected == 2:
                counts.replaced += 1
                cur.execute("UPDATE dora_metrics SET computed_at = NOW(6) WHERE service = %s AND window_days = %s "
                            "AND computed_on = %s", (row["service"], row["window_days"], row["computed_on"]))
            else:
                counts.unchanged += 1
        return counts

    return db.run(work, "writing the DORA snapshots")


def read_snapshots(db: Database, first_day: date, last_day: date) -> list[dict[str, Any]]:
    """Snapshot rows computed on ``first_day`` .. ``last_day`` (inclusive)."""

    def work(cur: pymysql.cursors.Cursor) -> list[dict[str, Any]]:
        cur.execute(f"SELECT {', '.join(SNAPSHOT_COLUMNS)}, computed_at FROM dora_metrics "
                    "WHERE computed_on BETWEEN %s AND %s ORDER BY computed_on, window_days, service",
                    (first_day, last_day))
        names = [*SNAPSHOT_COLUMNS, "computed_at"]
        out = []
        for raw in cur.fetchall():
            row = dict(zip(names, raw, strict=True))
            row["reasons"] = json.loads(row["reasons"]) if row["reasons"] else {}
            out.append(row)
        return out

    return db.run(work, "reading the DORA snapshots")


def latest_snapshot_day(db: Database, not_after: date) -> date | None:
    def work(cur: pymysql.cursors.Cursor) -> date | None:
        cur.execute("SELECT MAX(computed_on) FROM dora_metrics WHERE computed_on <= %s", (not_after,))
        row = cur.fetchone()
        return row[0] if row else None

    return db.run(work, "finding the latest DORA snapshot")
