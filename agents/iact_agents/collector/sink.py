"""Cassandra writer: prepared upserts, single-partition batches, token-aware routing, retries with back-off.

What a row is and how its values are serialized lives in ``rows.py``. Rows of one partition go together in an
unlogged batch (one mutation on one replica set; Cassandra applies no batch size threshold to a batch of a
single partition), never rows of different partitions.

:meth:`CassandraSink.write` returns only when every row of the batch is acknowledged at the configured
consistency. A row that Cassandra or the driver refuses while a plain row is accepted (a value that cannot be
serialized, a request Cassandra calls invalid) is a poison record: it is written as a plain ``parse_error``
row instead and returned to the caller, which quarantines it (collector/quarantine.py); it never blocks
the batch. While the cluster is unreachable it retries with exponential back-off (the caller reads nothing
more meanwhile, so memory stays bounded by the batches in flight); it gives up only when told to stop and
the drain deadline has passed, raising :class:`DeliveryAborted` (nothing is lost: the batch was not
committed and is read again at the next start).

What waits for acknowledgement is the rows, not the records: :meth:`write` takes the records over and keeps
each one's encoded values and the little a plain row or the quarantine needs (``rows.EncodedRow``); a row
not acknowledged is sent again as it is. Once a connection was made, records are encoded as soon as they
arrive, also while the cluster is down.

Several threads may call :meth:`write` at once (the daemon keeps a few batches in flight): they share one
driver session, opened by the first writer that needs it, and a session that lost every host is replaced
once no writer uses it any more.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from cassandra import (
    AuthenticationFailed,
    ConsistencyLevel,
    InvalidRequest,
    OperationTimedOut,
    RequestExecutionException,
    Unauthorized,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.concurrent import execute_concurrent
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage
from cassandra.query import BatchStatement, BatchType

from ..errors import AgentError, ConfigError, ServiceUnavailable
from .config import CassandraSettings
from .records import Record
from .rows import (
    BIND_ORDER,
    COLUMNS,
    PLAIN_TEXT_MAX,
    EncodedRow,
    Line,
    RowEncoder,
    bound,
    encoded_from_bound,
    in_bind_order,
    plain_row,
    routing_key,
    row_values,
    write_cql,
)

__all__ = [
    "BIND_ORDER", "COLUMNS", "PLAIN_TEXT_MAX", "RETRYABLE", "CassandraSink", "DeliveryAborted", "Refused",
    "bound", "plain_row", "row_values", "write_cql",
]

log = logging.getLogger(__name__)


class DeliveryAborted(AgentError):
    """Stopping before Cassandra acknowledged the batch in flight (it will be re-read, not lost)."""

    exit_code = 0


_L = TypeVar("_L", bound=Line)
"""What :meth:`CassandraSink._isolate` sends one at a time: an encoded row or a record."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A record whose own row could not be written (a plain parse_error row was written instead): the record
    itself, or, once it was encoded, its row (what the quarantine needs of it: position, raw text)."""

    record: Line
    reason: str


# Failures that waiting can cure: the cluster (or enough replicas) is not reachable or not able right now.
RETRYABLE: tuple[type[BaseException], ...] = (
    NoHostAvailable, OperationTimedOut, RequestExecutionException, OverloadedErrorMessage,
    IsBootstrappingErrorMessage, ConnectionError, OSError,
)
# What a failed request of a batch may answer and still be written again later: the above, and a refused
# permission once this process has written with it (a node restarting; _fatal raises it before, otherwise).
RETRY_LATER: tuple[type[BaseException], ...] = (*RETRYABLE, Unauthorized)


class _Connection:
    """A driver session with the prepared upsert and its encoder, shared by the writers that hold it."""

    __slots__ = ("cluster", "discarded", "encoder", "insert", "routing", "session", "users")

    def __init__(self, cluster: Any, session: Any, insert: Any, encoder: RowEncoder | None) -> None:
        self.cluster = cluster
        self.session = session
        self.insert = insert
        self.encoder = encoder
        self.routing: tuple[int, ...] = tuple(insert.routing_key_indexes or ())
        self.users = 0
        self.discarded = False


class CassandraSink:
    def __init__(
        self,
        settings: CassandraSettings,
        *,
        host: str,
        store_raw: bool,
        retry_initial_s: float,
        retry_max_s: float,
        should_stop: Callable[[], bool] = lambda: False,
        drain_deadline: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.host = host
        self.store_raw = store_raw
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.should_stop = should_stop
        self.drain_deadline = drain_deadline
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self.rows_written = 0
        self.retries = 0
        self.refused = 0
        self.last_error: str | None = None
        self._proven = False
        """This process has connected with its credentials once: a later refusal of them is the cluster
        restarting (its roles not readable yet), waited for, not a configuration error."""
        self._encoder: RowEncoder | None = None
        """The encoder of the last connection: records are encoded with it as soon as they arrive, also while
        no connection is open (the table's column types are checked again at the next connection)."""

    # --- connection ----------------------------------------------------------------------------------

    def _connect(self) -> _Connection:
        s = self.settings
        password = s.password()
        auth = PlainTextAuthProvider(s.username, password.get_secret_value()) if password is not None else None
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=s.local_dc)),
            consistency_level=ConsistencyLevel.name_to_value[s.consistency],
            request_timeout=s.request_timeout_s,
        )
        cluster = Cluster(
            contact_points=list(s.contact_points), port=s.port, auth_provider=auth,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=s.connect_timeout_s,
            protocol_version=s.protocol_version,
            reconnection_policy=ExponentialReconnectionPolicy(self.retry_initial_s, self.retry_max_s),
            ssl_context=s.ssl_context(),
        )
        try:
            session = cluster.connect()
            insert = session.prepare(write_cql(s.keyspace, s.table))
        except Exception:
            cluster.shutdown()
            raise
        encoder = RowEncoder.for_statement(insert, self.host, store_raw=self.store_raw)
        if encoder is None:
            log.warning("%s.%s does not have the column types this collector serializes itself; binding every "
                        "row with the driver (slower)", s.keyspace, s.table)
        log.info("connected to Cassandra (local DC %s), writing %s.%s at %s", s.local_dc, s.keyspace, s.table,
                 s.consistency)
        self._proven = True
        self._encoder = encoder
        return _Connection(cluster, session, insert, encoder)

    def _acquire(self) -> _Connection:
        """The shared connection (opened now if there is none; other writers wait for it meanwhile)."""
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            conn.users += 1
            return conn

    def _release(self, conn: _Connection) -> None:
        with self._lock:
            conn.users -= 1
            if conn.discarded and conn.users == 0:
                conn.cluster.shutdown()

    def _discard(self, conn: _Connection) -> None:
        """No host left in the pool: the next writer connects afresh instead of waiting for the driver."""
        with self._lock:
            if self._conn is conn:
                self._conn = None
                conn.discarded = True

    def _fatal(self, exc: BaseException) -> AgentError | None:
        """Errors neither retrying nor skipping a record can fix: bad credentials, missing permission. Once this
        process has connected and written, the same refusals are a cluster coming back (a node answers before
        it can read its roles and permissions): they are retried, with a warning, instead of stopping the
        collector (under systemd it would crash-loop into ``failed`` after every full-cluster restart)."""
        auth = isinstance(exc, NoHostAvailable) and exc.errors and all(
            isinstance(e, AuthenticationFailed) or "AuthenticationFailed" in repr(e) for e in exc.errors.values()
        )
        if (auth or isinstance(exc, Unauthorized)) and self._proven:
            log.warning("Cassandra refuses the credentials or permissions it accepted before (%s): a node still "
                        "starting? retrying", type(exc).__name__)
            return None
        if auth:
            return ConfigError(f"cassandra.username: authentication failed for {self.settings.username!r} "
                               "(check it and cassandra.password_file)")
        # The driver reports a refused certificate as PermissionError("... CERTIFICATE_VERIFY_FAILED ...").
        if isinstance(exc, NoHostAvailable) and exc.errors and all(
            isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e)
            for e in exc.errors.values()
        ):
            return ConfigError("cassandra.ssl_ca_file: no node's certificate is trusted: "
                               f"{next(iter(exc.errors.values()))}")
        if isinstance(exc, Unauthorized):
            return ServiceUnavailable(f"Cassandra refused the insert into {self.settings.keyspace}."
                                      f"{self.settings.table}: {exc}")
        return None

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.discarded = True
                if conn.users == 0:
                    conn.cluster.shutdown()

    # --- rows and statements -------------------------------------------------------------------------

    def _reference(self, conn: _Connection, row: tuple[Any, ...]) -> Any:
        """A row bound by the driver itself (raises for a value it cannot serialize)."""
        return conn.insert.bind(in_bind_order(row))

    def _encode(self, conn: _Connection, records: Sequence[Record], now: datetime,
                plain_reason: str | None) -> tuple[list[EncodedRow], list[Record]]:
        """Serialized rows, and the records that could not be serialized (found out one by one later)."""
        encoder = conn.encoder
        if plain_reason is None and encoder is not None:
            return self._encode_with(encoder, records, now)
        rows: list[EncodedRow] = []
        suspect: list[Record] = []
        for rec in records:
            try:
                row = plain_row(self.host, rec, plain_reason, now) if plain_reason is not None else bound(
                    row_values(self.host, rec, store_raw=self.store_raw, ingested_at=now))
                rows.append(encoded_from_bound(rec, self._reference(conn, row).values, conn.routing))
            except Exception:  # on purpose: as below
                suspect.append(rec)
        return rows, suspect

    @staticmethod
    def _encode_with(encoder: RowEncoder, records: Sequence[Record],
                     now: datetime) -> tuple[list[EncodedRow], list[Record]]:
        rows: list[EncodedRow] = []
        suspect: list[Record] = []
        stamp = encoder.stamp(now)
        encode = encoder.encode
        for rec in records:
            try:
                rows.append(encode(rec, stamp))
            except Exception:  # on purpose: a value that does not fit its column; bound by the driver later
                suspect.append(rec)
        return rows, suspect

    def _chunks(self, rows: Sequence[EncodedRow]) -> list[list[EncodedRow]]:
        """Rows grouped by partition, in chunks of partition_batch_rows rows and partition_batch_bytes at most."""
        max_rows, max_bytes = self.settings.partition_batch_rows, self.settings.partition_batch_bytes
        open_chunks: dict[tuple[bytes, ...], tuple[list[EncodedRow], list[int]]] = {}
        out: list[list[EncodedRow]] = []
        for row in rows:
            entry = open_chunks.get(row.key)
            if entry is None or len(entry[0]) >= max_rows or entry[1][0] + row.size > max_bytes:
                entry = ([], [0])
                open_chunks[row.key] = entry
                out.append(entry[0])
            entry[0].append(row)
            entry[1][0] += row.size
        return out

    @staticmethod
    def _statement(conn: _Connection, chunk: Sequence[EncodedRow]) -> BatchStatement:
        """An unlogged batch of one partition's rows, routed to that partition's replicas."""
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.keyspace = conn.insert.keyspace
        batch.routing_key = routing_key(chunk[0].key)
        query_id = conn.insert.query_id
        add = batch._add_statement_and_params  # what BatchStatement.add() does with a bound statement
        for row in chunk:
            add(True, query_id, row.values)
        return batch

    # --- writing -----------------------------------------------------------------------------------------

    def _execute(self, conn: _Connection, rows: list[EncodedRow], pending: list[Record], refused: list[Refused],
                 now: datetime, *, plain_reason: str | None) -> list[EncodedRow]:
        """Write ``rows`` and the records of ``pending`` (encoded now: ``pending`` is emptied, so that nothing
        but their rows is kept). Returns the rows to send again, and leaves in ``pending`` the records to try
        again (ones that could not be encoded and were not written either). A chunk that fails for a reason
        other than the cluster's availability is taken apart row by row (:meth:`_isolate`)."""
        suspect: list[Record] = []
        if pending:
            new, suspect = self._encode(conn, pending, now, plain_reason)
            pending.clear()
            rows = rows + new if rows else new
        chunks = self._chunks(rows)
        del rows
        statements: list[tuple[BatchStatement, None]] = []
        unsent: list[EncodedRow] = []
        for chunk in chunks:
            try:
                statements.append((self._statement(conn, chunk), None))
            except Exception:  # on purpose: never seen; its rows are sent (or set aside) one at a time below
                log.exception("building a partition batch of %d rows failed; sending them one at a time",
                              len(chunk))
                unsent += chunk
        if unsent:
            chunks = [c for c in chunks if c[0] not in unsent]
        results = execute_concurrent(
            conn.session, statements, concurrency=self.settings.concurrency, raise_on_first_error=False
        ) if statements else []
        failed: list[EncodedRow] = []
        first_error: BaseException | None = None
        for chunk, (ok, result) in zip(chunks, results, strict=True):
            if ok:
                continue
            fatal = self._fatal(result)
            if fatal is not None:
                raise fatal
            if isinstance(result, RETRY_LATER):
                failed += chunk
                first_error = first_error or result
            else:
                unsent += chunk
        del chunks, statements, results

        def one_record(rec: Record) -> Any:
            return self._reference(conn, bound(row_values(self.host, rec, store_raw=self.store_raw, ingested_at=now)))

        failed += self._isolate(conn, unsent, lambda row: self._statement(conn, [row]),
                                refused=refused, now=now, plain_reason=plain_reason)
        pending += self._isolate(conn, suspect, one_record, refused=refused, now=now, plain_reason=plain_reason)
        if first_error is not None:
            with self._lock:
                self.last_error = f"{type(first_error).__name__}: {first_error}"
            if isinstance(first_error, NoHostAvailable):
                self._discard(conn)
        return failed

    def _isolate(self, conn: _Connection, items: Sequence[_L], statement: Callable[[_L], Any], *,
                 refused: list[Refused], now: datetime, plain_reason: str | None) -> list[_L]:
        """Send ``items`` (encoded rows, or records the driver binds) one at a time, ``statement`` making each
        one's statement; an item whose statement cannot be made, or whose row is refused while a plain row for
        it is accepted, is a poison record (written plain, returned in ``refused``). Returns the items to try
        again."""
        retry: list[_L] = []
        for item in items:
            reason = plain_reason
            if reason is None:
                try:
                    one = statement(item)
                except Exception as exc:  # on purpose: a record that cannot become a row must not block the rest
                    reason = f"cannot build its row: {type(exc).__name__}: {exc}"
                else:
                    try:
                        conn.session.execute(one)
                        continue
                    except RETRY_LATER as exc:
                        if (fatal := self._fatal(exc)) is not None:
                            raise fatal from None
                        retry.append(item)
                        continue
                    except Exception as exc:  # on purpose: whatever this one row causes, it must not block the rest
                        reason = f"its row was refused: {type(exc).__name__}: {exc}"
            if self._write_plain_row(conn, item, reason, now):
                if plain_reason is None:
                    refused.append(Refused(item, reason))
            else:
                retry.append(item)
        return retry

    def _write_plain_row(self, conn: _Connection, line: Line, reason: str, now: datetime) -> bool:
        """The plain row of ``line``; False when the cluster did not take it (to be tried again)."""
        try:
            conn.session.execute(self._reference(conn, plain_row(self.host, line, reason, now)))
        except InvalidRequest as exc:
            s = self.settings
            raise ServiceUnavailable(f"Cassandra refuses even a plain row in {s.keyspace}.{s.table} ({exc}): "
                                     "the table does not match this collector") from None
        except Exception:  # on purpose: the cluster, not the record: try the record again later
            return False
        return True

    def write(self, records: list[Record]) -> list[Refused]:
        """Deliver ``records``; return once Cassandra acknowledged all of them (see the module docstring),
        with the records that had to be written as plain rows (to be quarantined by the caller).

        Takes the records over: the list is emptied as they are encoded, and only their rows (each with the
        :class:`~.rows.Line` of its record) wait for acknowledgement, not the parsed records; a row is sent
        again as it is. Once the list is not whole any more, only :class:`AgentError` or
        :class:`DeliveryAborted` is raised (an unexpected error on a row sets that row aside instead)."""
        if not records:
            return []
        return self._deliver(records, None)

    def write_plain(self, records: Sequence[Record], reason: str) -> None:
        """Deliver plain rows for records the caller quarantines (see collector/quarantine.py); ``records`` is
        left as it is."""
        if records:
            self._deliver(list(records), reason)

    def _deliver(self, pending: list[Record], plain_reason: str | None) -> list[Refused]:
        now = datetime.now(UTC)
        refused: list[Refused] = []
        total = len(pending)
        rows: list[EncodedRow] = []
        # With the encoder of an earlier connection, the records are encoded at once, also while the cluster
        # is down (an outage is when rows wait longest).
        encoder = self._encoder if plain_reason is None else None
        by_encoder = encoder is not None
        if encoder is not None:
            rows, suspect = self._encode_with(encoder, pending, now)
            pending[:] = suspect
        delay = self.retry_initial_s
        while True:
            conn: _Connection | None = None
            try:
                conn = self._acquire()
                if rows and by_encoder and conn.encoder is None:
                    raise ServiceUnavailable(
                        f"{self.settings.keyspace}.{self.settings.table} changed its column types while rows "
                        "encoded for the old ones waited; they are read again at the next start")
                by_encoder = by_encoder or (bool(pending) and plain_reason is None and conn.encoder is not None)
                rows = self._execute(conn, rows, pending, refused, now, plain_reason=plain_reason)
                if not rows and not pending:
                    with self._lock:
                        self.rows_written += total
                        self.refused += len(refused)
                    return refused
                log.warning("%d of %d rows not acknowledged (%s); retrying in %.1fs", len(rows) + len(pending),
                            total, self.last_error, delay)
            except AgentError:
                raise
            except (InvalidRequest, Unauthorized) as exc:  # from prepare(): no such table or no permission
                self.close()
                if isinstance(exc, InvalidRequest) or self._fatal(exc) is not None:
                    raise self._fatal(exc) or ServiceUnavailable(
                        f"Cassandra refused to prepare the insert into {self.settings.keyspace}."
                        f"{self.settings.table}: {exc}") from None
                with self._lock:
                    self.last_error = f"{type(exc).__name__}: {exc}"
            except RETRYABLE as exc:
                fatal = self._fatal(exc)
                if fatal is not None:
                    self.close()
                    raise fatal from None
                with self._lock:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("Cassandra unreachable (%s); retrying in %.1fs", self.last_error, delay)
                if isinstance(exc, NoHostAvailable) and conn is not None:
                    self._discard(conn)
            finally:
                if conn is not None:
                    self._release(conn)
            with self._lock:
                self.retries += 1
            self._wait(delay)
            delay = min(delay * 2, self.retry_max_s)

    def _wait(self, delay: float) -> None:
        end = self._clock() + delay
        while True:
            if self.should_stop():
                deadline = self.drain_deadline()
                if deadline is not None and self._clock() >= deadline:
                    raise DeliveryAborted(f"stopping with a batch not acknowledged ({self.last_error}); "
                                          "it will be read again at the next start")
            left = end - self._clock()
            if left <= 0:
                return
            self._sleep(min(left, 0.2))
