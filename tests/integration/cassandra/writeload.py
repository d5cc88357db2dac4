"""A write load that counts what a client which never retries sees, while something else happens.

The client: cassandra-driver with its defaults (token-aware round robin over the local datacenter, protocol
negotiated, request timeout 10 s, reconnection on its own) except the consistency level and the retries:

- every write is one prepared ``INSERT`` of one row, at ``LOCAL_QUORUM``, sent once: the execution profile's
  retry policy is ``FallthroughRetryPolicy`` (timeouts, unavailable, overloaded and connection errors are
  returned to the caller instead of being re-sent), statements are not idempotent (the driver's default, so
  no speculative execution either). The driver still skips a host it holds no open connection to when it
  picks the coordinator; that happens before anything is sent and is not a retry.
- writes are paced (``rate`` per second) with at most ``concurrency`` in flight, bounded in count and time.
- every failed write is recorded with its time and the exception's type; every acknowledged write is kept so
  that it can be read back afterwards (``verify``).

Used by test_rolling_restart_quiet.py; also runnable by hand against the lab, around any command::

    source /root/labcreds/env.sh
    python tests/integration/cassandra/writeload.py --rate 200 -- \\
        ansible-playbook -i inventory/lab playbooks/ops/cassandra_rolling_restart.yml

prints one JSON summary (writes, failures by type, each failure's time) and exits 1 if any write failed or an
acknowledged write cannot be read back.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import FallthroughRetryPolicy, RetryPolicy
from cassandra_testlib import verifying_context

KEYSPACE = "iact_writeload"
TABLE = "writes"
BUCKET = 1000  # rows per partition: the read-back reads one partition per query
READBACK = "readback"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


@dataclass(frozen=True)
class Failure:
    seq: int
    at: float
    """seconds since the load started"""
    wall: str
    """UTC time of the failure"""
    error: str
    """the exception's type; for NoHostAvailable, the types of the errors it carries per host"""
    message: str


@dataclass
class Result:
    started: str = ""
    ended: str = ""
    attempted: int = 0
    acknowledged: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    """acknowledged writes that the read-back did not find"""

    def by_type(self) -> dict[str, int]:
        return dict(Counter(f.error for f in self.failures))

    def summary(self, failures_listed: int = 50) -> dict[str, Any]:
        return {
            "started": self.started,
            "ended": self.ended,
            "attempted": self.attempted,
            "acknowledged": len(self.acknowledged),
            "failed": len(self.failures),
            "failed_by_type": self.by_type(),
            "unread_acknowledged": len(self.missing),
            "failures": [f.__dict__ for f in self.failures[:failures_listed]],
        }


def error_name(exc: BaseException) -> str:
    if isinstance(exc, NoHostAvailable):
        inner = sorted({type(e).__name__ for e in exc.errors.values()})
        return "NoHostAvailable(" + ",".join(inner) + ")"
    return type(exc).__name__


def connect(hosts: Sequence[str], port: int, user: str, password: str, tls: ssl.SSLContext | None) -> Cluster:
    """The non-retrying client (module docstring); a second profile, READBACK, keeps the driver's retries."""
    profiles = {
        EXEC_PROFILE_DEFAULT: ExecutionProfile(
            consistency_level=ConsistencyLevel.LOCAL_QUORUM, retry_policy=FallthroughRetryPolicy()
        ),
        READBACK: ExecutionProfile(consistency_level=ConsistencyLevel.LOCAL_QUORUM, retry_policy=RetryPolicy()),
    }
    return Cluster(
        list(hosts),
        port=port,
        auth_provider=PlainTextAuthProvider(username=user, password=password),
        execution_profiles=profiles,
        ssl_context=tls,
    )


def create_table(session: Session) -> None:
    """The load's table, replicated three times in every datacenter (created once, kept between runs)."""
    dcs = {row.data_center for row in session.execute("SELECT data_center FROM system.peers")}
    dcs.add(session.execute("SELECT data_center FROM system.local").one().data_center)
    replication = ", ".join(f"'{dc}': 3" for dc in sorted(dcs))
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', {replication}}}",
        execution_profile=READBACK,
    )
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{TABLE} (run text, bucket int, seq int, at timestamp, "
        "PRIMARY KEY ((run, bucket), seq)) WITH default_time_to_live = 86400",
        execution_profile=READBACK,
    )


class WriteLoad:
    """Paced single-row inserts from a background thread until stop(), max_writes or max_seconds."""

    def __init__(self, session: Session, *, rate: float = 200, concurrency: int = 8,
                 max_writes: int = 500_000, max_seconds: float = 1800) -> None:
        self.session = session
        self.rate, self.max_writes, self.max_seconds = rate, max_writes, max_seconds
        self.run = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.result = Result()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._concurrency = concurrency
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="writeload", daemon=True)
        self._insert = session.prepare(f"INSERT INTO {KEYSPACE}.{TABLE} (run, bucket, seq, at) VALUES (?, ?, ?, ?)")
        self._t0 = 0.0

    def start(self) -> WriteLoad:
        self._t0 = time.monotonic()
        self.result.started = utc_now()
        self._thread.start()
        return self

    def stop(self) -> Result:
        """Stop sending, wait for the writes in flight (each ends by the request timeout), return the counts."""
        self._stop.set()
        self._thread.join()
        for _ in range(self._concurrency):  # every slot back: no write is in flight any more
            self._slots.acquire(timeout=60)
        self.result.ended = utc_now()
        return self.result

    def _loop(self) -> None:
        seq = 0
        while not self._stop.is_set() and seq < self.max_writes:
            due = self._t0 + seq / self.rate
            now = time.monotonic()
            if now - self._t0 > self.max_seconds:
                break
            if due > now:
                self._stop.wait(due - now)
                continue
            if not self._slots.acquire(timeout=1):
                continue
            values = (self.run, seq // BUCKET, seq, datetime.now(UTC))
            with self._lock:
                self.result.attempted += 1
            try:
                future = self.session.execute_async(self._insert, values)
            except Exception as exc:  # every error is what is counted
                self._failed(seq, exc)
            else:
                future.add_callbacks(self._acknowledged, self._failed_cb, callback_args=(seq,), errback_args=(seq,))
            seq += 1

    def _acknowledged(self, _rows: object, seq: int) -> None:
        with self._lock:
            self.result.acknowledged.append(seq)
        self._slots.release()

    def _failed_cb(self, exc: BaseException, seq: int) -> None:
        self._failed(seq, exc)

    def _failed(self, seq: int, exc: BaseException) -> None:
        failure = Failure(seq, round(time.monotonic() - self._t0, 3), utc_now(), error_name(exc), str(exc)[:300])
        with self._lock:
            self.result.failures.append(failure)
        self._slots.release()

    def verify(self) -> list[int]:
        """Read every partition of this run at LOCAL_QUORUM; record and return the acknowledged seqs not found."""
        found: set[int] = set()
        select = self.session.prepare(f"SELECT seq FROM {KEYSPACE}.{TABLE} WHERE run = ? AND bucket = ?")
        for bucket in range(self.result.attempted // BUCKET + 1):
            rows = self.session.execute(select, (self.run, bucket), execution_profile=READBACK)
            found.update(row.seq for row in rows)
        self.result.missing = sorted(set(self.result.acknowledged) - found)
        return self.result.missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=200, help="writes per second (default 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="writes in flight at most (default 8)")
    parser.add_argument("--before", type=float, default=10, help="seconds of load before the command")
    parser.add_argument("--after", type=float, default=15, help="seconds of load after the command")
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument("--json", help="also write the summary, every failure included, to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run under load")
    args = parser.parse_args(argv)
    env = os.environ
    hosts = env["IACT_TEST_CASSANDRA_HOSTS"].split(",")
    with open(env["IACT_TEST_CASSANDRA_PASSWORD_FILE"], encoding="utf-8") as fh:
        password = fh.read().strip()
    ca = env.get("IACT_TEST_CASSANDRA_CA")
    cluster = connect(hosts, int(env.get("IACT_TEST_CASSANDRA_PORT", "9042")), env["IACT_TEST_CASSANDRA_USER"],
                      password, verifying_context(Path(ca).read_text()) if ca else None)
    try:
        session = cluster.connect()
        create_table(session)
        load = WriteLoad(session, rate=args.rate, concurrency=args.concurrency, max_seconds=args.max_seconds)
        load.start()
        time.sleep(args.before)
        command = [c for c in args.command if c != "--"]
        rc = None
        if command:
            print(f"{utc_now()} command starts: {' '.join(command)}", file=sys.stderr, flush=True)
            rc = subprocess.run(command, check=False).returncode
            print(f"{utc_now()} command ended rc={rc}", file=sys.stderr, flush=True)
        time.sleep(args.after)
        result = load.stop()
        load.verify()
    finally:
        cluster.shutdown()
    doc = {"run": load.run, "rate": args.rate, "concurrency": args.concurrency, "command_rc": rc,
           **result.summary()}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({**doc, "failures": [f.__dict__ for f in result.failures]}, fh, indent=1)
    print(json.dumps(doc, indent=1))
    return 0 if not result.failures and not result.missing and rc in (None, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
