"""Cassandra writer: prepared inserts, token-aware routing, bounded concurrency, retries with back-off.

The table belongs to ``roles/cassandra`` (``__cassandra_log_columns`` in its ``vars/main.yml``): partition
key ``(host, source, day)``, clustering ``(ts DESC, position ASC)``. ``COLUMNS`` below is the one place that
names the columns. Rows are written with a prepared ``UPDATE ... SET ..., fields = fields + ?`` (an upsert
like INSERT, but appending to the map writes no collection tombstone, which an INSERT of a non-frozen map
would); rows of one partition may go together in an unlogged batch, never rows of different partitions.

:meth:`CassandraSink.write` returns only when every row of the batch is acknowledged at the configured
consistency. While the cluster is unreachable it retries with exponential back-off (the caller's reader
is paused meanwhile, so memory stays bounded at one batch); it gives up only when told to stop and the
drain deadline has passed, raising :class:`DeliveryAborted` (nothing is lost: the batch was not
committed and is read again at the next start).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from cassandra import (
    AuthenticationFailed,
    ConsistencyLevel,
    InvalidRequest,
    OperationTimedOut,
    ReadTimeout,
    Unauthorized,
    Unavailable,
    WriteFailure,
    WriteTimeout,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.concurrent import execute_concurrent
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType

from ..errors import AgentError, ConfigError, ServiceUnavailable
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
    return (
        host, rec.source, rec.day, rec.ts, rec.position, rec.facility, rec.severity, rec.program, rec.pid,
        rec.message, rec.raw if store_raw or rec.parse_error else None, rec.parse_error, fields or None,
        ingested_at,
    )


# Failures that waiting can cure: the cluster (or enough replicas) is not reachable right now.
RETRYABLE: tuple[type[BaseException], ...] = (
    NoHostAvailable, OperationTimedOut, Unavailable, WriteTimeout, WriteFailure, ReadTimeout, ConnectionError,
    OSError,
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
        """Errors retrying cannot fix: bad credentials, missing table or column."""
        if isinstance(exc, NoHostAvailable) and exc.errors and all(
            isinstance(e, AuthenticationFailed) or "AuthenticationFailed" in repr(e) for e in exc.errors.values()
        ):
            return ConfigError(f"cassandra.username: authentication failed for {self.settings.username!r} "
                               "(check it and cassandra.password_file)")
        if isinstance(exc, InvalidRequest | Unauthorized):
            return ServiceUnavailable(f"Cassandra refused the insert into {self.settings.keyspace}."
                                      f"{self.settings.table}: {exc}")
        return None

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = self._insert = None

    # --- writing -----------------------------------------------------------------------------------------

    def _chunks(self, rows: Sequence[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
        """Rows grouped by partition, in chunks of partition_batch_rows rows and partition_batch_bytes at most."""
        max_rows, max_bytes = self.settings.partition_batch_rows, self.settings.partition_batch_bytes
        open_chunks: dict[tuple[Any, ...], tuple[list[tuple[Any, ...]], list[int]]] = {}
        out: list[list[tuple[Any, ...]]] = []
        for row in rows:
            key = tuple(row[i] for i in PARTITION_INDEXES)
            size = _row_size(row)
            entry = open_chunks.get(key)
            if entry is None or len(entry[0]) >= max_rows or entry[1][0] + size > max_bytes:
                entry = ([], [0])
                open_chunks[key] = entry
                out.append(entry[0])
            entry[0].append(row)
            entry[1][0] += size
        return out

    def _execute(self, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Insert all rows; return the ones that failed (empty when all are acknowledged).

        Rows of one partition go together in an unlogged batch (one mutation on one replica set: atomic and
        cheap); rows of different partitions are never batched together.
        """
        chunks = self._chunks(rows)
        statements: list[tuple[Any, Any]] = []
        for chunk in chunks:
            if len(chunk) == 1:
                statements.append((self._insert, tuple(chunk[0][i] for i in BIND_ORDER)))
            else:
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for row in chunk:
                    batch.add(self._insert, tuple(row[i] for i in BIND_ORDER))
                statements.append((batch, None))
        results = execute_concurrent(
            self._session, statements, concurrency=self.settings.concurrency, raise_on_first_error=False
        )
        failed: list[tuple[Any, ...]] = []
        first_error: BaseException | None = None
        for chunk, (ok, result) in zip(chunks, results, strict=True):
            if not ok:
                failed.extend(chunk)
                first_error = first_error or result
        if first_error is not None:
            fatal = self._fatal(first_error)
            if fatal is not None:
                raise fatal
            self.last_error = f"{type(first_error).__name__}: {first_error}"
            if isinstance(first_error, NoHostAvailable):
                self.close()
        return failed

    def write(self, records: Sequence[Record]) -> None:
        """Deliver ``records``; return once Cassandra acknowledged all of them (see the module docstring)."""
        if not records:
            return
        now = datetime.now(UTC)  # unset, not null, for missing values: nulls would write tombstones
        pending: list[tuple[Any, ...]] = [
            tuple(UNSET_VALUE if v is None else v
                  for v in row_values(self.host, r, store_raw=self.store_raw, ingested_at=now))
            for r in records
        ]
        delay = self.retry_initial_s
        while True:
            try:
                if self._session is None:
                    self._connect()
                pending = self._execute(pending)
                if not pending:
                    self.rows_written += len(records)
                    return
                log.warning("%d of %d rows not acknowledged (%s); retrying in %.1fs", len(pending), len(records),
                            self.last_error, delay)
            except AgentError:
                raise
            except (InvalidRequest, Unauthorized) as exc:
                self.close()
                raise self._fatal(exc) or ServiceUnavailable(str(exc)) from None
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
