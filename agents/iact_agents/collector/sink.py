"""Cassandra writer: prepared inserts, token-aware routing, bounded concurrency, retries with back-off.

The table belongs to ``roles/cassandra`` (``__cassandra_log_columns`` in its ``vars/main.yml``): partition
key ``(host, source, day)``, clustering ``(ts DESC, position ASC)``. ``COLUMNS`` below is the one place that
names the columns. Rows are written with a prepared ``UPDATE ... SET ..., fields = fields + ?`` (an upsert
like INSERT, but appending to the map writes no collection tombstone, which an INSERT of a non-frozen map
would); rows of one partition may go together in an unlogged batch, never rows of different partitions.

:meth:`CassandraSink.write` returns only when every row of the batch is acknowledged at the configured
consistency. A row that Cassandra or the driver refuses while a plain row is accepted (a value that cannot be
serialized, a request Cassandra calls invalid) is a poison record: it is written as a plain ``parse_error``
row instead and returned to the caller, which quarantines it (collector/quarantine.py); it never blocks
the batch. While the cluster is unreachable it retries with exponential back-off (the caller's reader
is paused meanwhile, so memory stays bounded at one batch); it gives up only when told to stop and the
drain deadline has passed, raising :class:`DeliveryAborted` (nothing is lost: the batch was not
committed and is read again at the next start).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType

from ..errors import AgentError, ConfigError, ServiceUnavailable
from ..storable import clean_text, utc_in_range
from .config import CassandraSettings
from .records import Record

log = logging.getLogger(__name__)

# Column names of the log table, in insert order: change here only (and in row_values) to follow a rename.
COLUMNS: tuple[str, ...] = (
    "host", "source", "day", "ts", "position", "facility", "severity", "program", "pid", "message", "raw",
    "parse_error", "fields", "ingested_at",
)

PARTITION_KEY: tuple[str, ...] = ("host", "source", "day")
PRIMARY_KEY: tuple[str, ...] = (*PARTITION_KEY, "ts", "position")
APPENDED: tuple[str, ...] = ("fields",)  # collections: appended to, so that no tombstone is written
PARTITION_INDEXES: tuple[int, ...] = tuple(COLUMNS.index(c) for c in PARTITION_KEY)
# Positions (in COLUMNS order) of the bound values of write_cql(): the SET values, then the WHERE values.
BIND_ORDER: tuple[int, ...] = (
    *(i for i, c in enumerate(COLUMNS) if c not in PRIMARY_KEY), *(COLUMNS.index(c) for c in PRIMARY_KEY)
)


def _row_size(row: tuple[Any, ...]) -> int:
    """Rough serialized size of a row, to keep partition batches under Cassandra's batch size warning."""
    size = 64
    for v in row:
        if isinstance(v, str):
            size += len(v)
        elif isinstance(v, dict):
            size += sum(len(k) + len(x) + 8 for k, x in v.items())
        else:
            size += 8
    return size


class DeliveryAborted(AgentError):
    """Stopping before Cassandra acknowledged the batch in flight (it will be re-read, not lost)."""

    exit_code = 0


def write_cql(keyspace: str, table: str) -> str:
    """The prepared upsert of one row; its bound values are ``row_values()`` taken in ``BIND_ORDER``."""
    sets = ", ".join(f"{c} = {c} + ?" if c in APPENDED else f"{c} = ?" for c in COLUMNS if c not in PRIMARY_KEY)
    where = " AND ".join(f"{c} = ?" for c in PRIMARY_KEY)
    # keyspace and table are checked CQL identifiers (config.py); values are bound, never formatted in.
    return f"UPDATE {keyspace}.{table} SET {sets} WHERE {where}"  # noqa: S608


def row_values(host: str, rec: Record, *, store_raw: bool, ingested_at: datetime) -> tuple[Any, ...]:
    """The values of one row, in ``COLUMNS`` order."""
    fields = rec.fields
    if rec.hostname is not None and rec.hostname != host:
        fields = {**fields, "hostname": rec.hostname}
    if rec.quarantine is not None:
        fields = {**fields, "quarantine": rec.quarantine}
    return (
        host, rec.source, rec.day, rec.ts, rec.position, rec.facility, rec.severity, rec.program, rec.pid,
        rec.message, rec.raw if store_raw or rec.parse_error else None, rec.parse_error, fields or None,
        ingested_at,
    )


def _bound(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values as the driver gets them: unset (not null: nulls would write tombstones) for missing values,
    and text that encodes as UTF-8 (the parsers already give such text; this is the last line of defence)."""
    out: list[Any] = []
    for v in values:
        if v is None:
            out.append(UNSET_VALUE)
        elif isinstance(v, str):
            out.append(clean_text(v))
        elif isinstance(v, dict):
            out.append({clean_text(str(k)): clean_text(str(x)) for k, x in v.items()})
        else:
            out.append(v)
    return tuple(out)


PLAIN_TEXT_MAX = 64 << 10


def plain_row(host: str, rec: Record, reason: str, ingested_at: datetime) -> tuple[Any, ...]:
    """The row of a poison record: same row key, ASCII-escaped raw text, ``parse_error``, the reason in
    ``fields['quarantine']``, nothing else. Any Cassandra that accepts rows accepts this one."""
    ts = utc_in_range(rec.ts) if isinstance(rec.ts, datetime) else None
    ts = ts if ts is not None else ingested_at
    text = ascii(rec.raw)[1:-1][:PLAIN_TEXT_MAX]
    values = (
        host, rec.source, ts.date(), ts, rec.position, None, None, None, None, text, text, True,
        {"quarantine": ascii(reason)[1:-1][:1000]}, ingested_at,
    )
    return _bound(values)


@dataclass(frozen=True, slots=True)
class Refused:
    """A record whose own row could not be written (a plain parse_error row was written instead)."""

    record: Record
    reason: str


Pending = tuple[Record, tuple[Any, ...]]


# Failures that waiting can cure: the cluster (or enough replicas) is not reachable or not able right now.
RETRYABLE: tuple[type[BaseException], ...] = (
    NoHostAvailable, OperationTimedOut, RequestExecutionException, OverloadedErrorMessage,
    IsBootstrappingErrorMessage, ConnectionError, OSError,
)


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
        self._cluster: Any = None
        self._session: Any = None
        self._insert: Any = None
        self.rows_written = 0
        self.retries = 0
        self.refused = 0
        self.last_error: str | None = None

    # --- connection ----------------------------------------------------------------------------------

    def _connect(self) -> None:
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
        self._cluster, self._session, self._insert = cluster, session, insert
        log.info("connected to Cassandra (local DC %s), writing %s.%s at %s", s.local_dc, s.keyspace, s.table,
                 s.consistency)

    def _fatal(self, exc: BaseException) -> AgentError | None:
        """Errors neither retrying nor skipping a record can fix: bad credentials, missing permission."""
        if isinstance(exc, NoHostAvailable) and exc.errors and all(
            isinstance(e, AuthenticationFailed) or "AuthenticationFailed" in repr(e) for e in exc.errors.values()
        ):
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
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = self._insert = None

    # --- writing -----------------------------------------------------------------------------------------

    def _chunks(self, rows: Sequence[Pending]) -> list[list[Pending]]:
        """Rows grouped by partition, in chunks of partition_batch_rows rows and partition_batch_bytes at most."""
        max_rows, max_bytes = self.settings.partition_batch_rows, self.settings.partition_batch_bytes
        open_chunks: dict[tuple[Any, ...], tuple[list[Pending], list[int]]] = {}
        out: list[list[Pending]] = []
        for item in rows:
            row = item[1]
            key = tuple(row[i] for i in PARTITION_INDEXES)
            size = _row_size(row)
            entry = open_chunks.get(key)
            if entry is None or len(entry[0]) >= max_rows or entry[1][0] + size > max_bytes:
                entry = ([], [0])
                open_chunks[key] = entry
                out.append(entry[0])
            entry[0].append(item)
            entry[1][0] += size
        return out

    def _bind(self, row: tuple[Any, ...]) -> Any:
        return self._insert.bind(tuple(row[i] for i in BIND_ORDER))

    def _statement(self, chunk: Sequence[Pending]) -> Any:
        """One bound statement, or an unlogged batch of one partition's rows (binding serializes the values,
        so a value the driver cannot serialize raises here)."""
        if len(chunk) == 1:
            return self._bind(chunk[0][1])
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for _, row in chunk:
            batch.add(self._bind(row))
        return batch

    def _execute(self, rows: Sequence[Pending], refused: list[Refused], now: datetime) -> list[Pending]:
        """Insert all rows; return the ones to try again (empty when all are acknowledged).

        Rows of one partition go together in an unlogged batch (one mutation on one replica set: atomic and
        cheap); rows of different partitions are never batched together. A chunk that fails for a reason
        other than the cluster's availability is taken apart row by row (:meth:`_isolate`).
        """
        statements: list[tuple[Any, Any]] = []
        sent: list[list[Pending]] = []
        suspect: list[list[Pending]] = []
        for chunk in self._chunks(rows):
            try:
                statements.append((self._statement(chunk), None))
                sent.append(chunk)
            except Exception:  # on purpose: a value the driver cannot serialize: found row by row below
                suspect.append(chunk)
        results = execute_concurrent(
            self._session, statements, concurrency=self.settings.concurrency, raise_on_first_error=False
        ) if statements else []
        failed: list[Pending] = []
        first_error: BaseException | None = None
        for chunk, (ok, result) in zip(sent, results, strict=True):
            if ok:
                continue
            fatal = self._fatal(result)
            if fatal is not None:
                raise fatal
            if isinstance(result, RETRYABLE):
                failed.extend(chunk)
                first_error = first_error or result
            else:
                suspect.append(chunk)
        for chunk in suspect:
            failed.extend(self._isolate(chunk, refused, now))
        if first_error is not None:
            self.last_error = f"{type(first_error).__name__}: {first_error}"
            if isinstance(first_error, NoHostAvailable):
                self.close()
        return failed

    def _isolate(self, chunk: Sequence[Pending], refused: list[Refused], now: datetime) -> list[Pending]:
        """Write the rows of a failed chunk one at a time; a row refused while a plain row for the same record
        is accepted is a poison record (written plain, returned in ``refused``). Returns rows to retry."""
        retry: list[Pending] = []
        s = self.settings
        for rec, row in chunk:
            try:
                self._session.execute(self._bind(row))
                continue
            except RETRYABLE as exc:
                if (fatal := self._fatal(exc)) is not None:
                    raise fatal from None
                retry.append((rec, row))
                continue
            except Unauthorized as exc:
                raise self._fatal(exc) or ServiceUnavailable(str(exc)) from None
            except Exception as exc:  # on purpose: whatever this one row causes, it must not block the rest
                reason = f"its row was refused: {type(exc).__name__}: {exc}"
            plain = plain_row(self.host, rec, reason, now)
            try:
                self._session.execute(self._bind(plain))
            except InvalidRequest as exc:
                raise ServiceUnavailable(f"Cassandra refuses even a plain row in {s.keyspace}.{s.table} ({exc}): "
                                         "the table does not match this collector") from None
            except Exception:  # on purpose: the cluster, not the record: try the record again later
                retry.append((rec, row))
                continue
            refused.append(Refused(rec, reason))
        return retry

    def write(self, records: Sequence[Record]) -> list[Refused]:
        """Deliver ``records``; return once Cassandra acknowledged all of them (see the module docstring),
        with the records that had to be written as plain rows (to be quarantined by the caller)."""
        if not records:
            return []
        now = datetime.now(UTC)
        refused: list[Refused] = []
        pending: list[Pending] = []
        for rec in records:
            try:
                row = _bound(row_values(self.host, rec, store_raw=self.store_raw, ingested_at=now))
            except Exception as exc:  # on purpose: a record that cannot become a row must not block the rest
                reason = f"cannot build its row: {type(exc).__name__}: {exc}"
                refused.append(Refused(rec, reason))
                row = plain_row(self.host, rec, reason, now)
            pending.append((rec, row))
        return self._deliver(pending, refused, len(records), now)

    def write_plain(self, records: Sequence[Record], reason: str) -> None:
        """Deliver plain rows for records the caller quarantines (see collector/quarantine.py)."""
        now = datetime.now(UTC)
        pending = [(rec, plain_row(self.host, rec, reason, now)) for rec in records]
        self._deliver(pending, [], len(records), now)

    def _deliver(self, pending: list[Pending], refused: list[Refused], total: int, now: datetime) -> list[Refused]:
        delay = self.retry_initial_s
        while True:
            try:
                if self._session is None:
                    self._connect()
                pending = self._execute(pending, refused, now)
                if not pending:
                    self.rows_written += total
                    self.refused += len(refused)
                    return refused
                log.warning("%d of %d rows not acknowledged (%s); retrying in %.1fs", len(pending), total,
                            self.last_error, delay)
            except AgentError:
                raise
            except (InvalidRequest, Unauthorized) as exc:  # from prepare(): no such table or no permission
                self.close()
                raise self._fatal(exc) or ServiceUnavailable(
                    f"Cassandra refused to prepare the insert into {self.settings.keyspace}."
                    f"{self.settings.table}: {exc}") from None
            except RETRYABLE as exc:
                fatal = self._fatal(exc)
                if fatal is not None:
                    self.close()
                    raise fatal from None
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("Cassandra unreachable (%s); retrying in %.1fs", self.last_error, delay)
                if isinstance(exc, NoHostAvailable):
                    self.close()  # no host left in the pool: connect afresh instead of waiting for the driver
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
