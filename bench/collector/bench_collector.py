#!/usr/bin/env python3
"""Collector benchmark: parse-only speed and end-to-end rows/s, each as a ratio to a baseline of the run.

1. parse: lines/s of the collector's file reader + syslog parser over a file of real captured lines
   (agents/tests/fixtures/collector, repeated), and its ratio to a plain ``for line in file`` loop over
   the same file.
2. end-to-end (needs a Cassandra, same IACT_TEST_CASSANDRA_* variables as the integration tests): rows/s
   of the collector (reader, parser, prepared concurrent inserts, offset commits) into the table, and its
   ratio to a naive synchronous loop of one ``session.execute`` per line with the same prepared insert and
   consistency.
3. cassandra-stress: reported as unavailable unless ``--stress`` names a cassandra-stress executable
   (the assembled lab archive has no tools/: Maven Central publishes cassandra-all but no cassandra-stress
   artifact, and the Apache release tarball that ships tools/bin/cassandra-stress is unreachable here).

Writes JSON to ``bench/results/collector-<UTC time>.json`` (and stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cassandra.query import UNSET_VALUE
from iact_agents.collector.config import CollectorConfig
from iact_agents.collector.daemon import Collector
from iact_agents.collector.records import parse_syslog
from iact_agents.collector.sink import BIND_ORDER, CassandraSink, row_values
from iact_agents.collector.tailer import FileTailer, TailParams

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "agents" / "tests" / "fixtures" / "collector"
ENV = "IACT_TEST_CASSANDRA_"


def make_file(path: Path, n: int) -> int:
    src = [ln for name in ("syslog_traditional.log", "syslog_rfc3339.log", "auth.log", "rfc5424.log")
           for ln in (FIXTURES / name).read_text().splitlines()]
    with path.open("w") as fh:
        for i in range(n):
            fh.write(src[i % len(src)] + f" #{i}\n")
    return path.stat().st_size


def bench_parse(path: Path, n: int, repeat: int) -> dict[str, Any]:
    best_plain = best_ours = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = 0
        with path.open(encoding="utf-8") as fh:
            for _line in fh:
                count += 1
        best_plain = min(best_plain, time.perf_counter() - t0)
        assert count == n
        t0 = time.perf_counter()
        tailer = FileTailer(str(path), "syslog", state=None, params=TailParams(batch_lines=1000))
        got = 0
        while (batch := tailer.read_batch()) is not None:
            got += len(batch.records)
            tailer.ack(batch)
        tailer.close()
        best_ours = min(best_ours, time.perf_counter() - t0)
        assert got == n, got
    return {
        "lines": n,
        "plain_loop_lines_per_s": round(n / best_plain),
        "collector_parse_lines_per_s": round(n / best_ours),
        "ratio_collector_to_plain_loop": round(best_plain / best_ours, 4),
    }


def bench_end_to_end(tmpdir: Path, n: int, naive_n: int) -> dict[str, Any]:
    hosts = os.environ.get(ENV + "HOSTS")
    if not hosts:
        return {"skipped": f"set {ENV}HOSTS, {ENV}DC (and {ENV}USER, {ENV}PASSWORD_FILE)"}
    cass: dict[str, Any] = {
        "contact_points": hosts, "port": int(os.environ.get(ENV + "PORT", "9042")),
        "local_dc": os.environ.get(ENV + "DC", "dc1"),
        "keyspace": os.environ.get(ENV + "KEYSPACE", "iact_logs"),
        "table": os.environ.get(ENV + "TABLE", "infrastructure_logs"),
        "consistency": os.environ.get(ENV + "CONSISTENCY", "LOCAL_QUORUM"),
    }
    if os.environ.get(ENV + "USER"):
        cass |= {"username": os.environ[ENV + "USER"], "password_file": os.environ[ENV + "PASSWORD_FILE"]}
    log = tmpdir / "e2e.log"
    make_file(log, n)
    host = f"bench-{uuid.uuid4().hex[:8]}"
    cfg = CollectorConfig.model_validate({
        "host": host, "state_dir": str(tmpdir / "state"), "batch_lines": 1000,
        "cassandra": cass, "files": [{"paths": [str(log)]}],
    })
    sink = CassandraSink(cfg.cassandra, host=host, store_raw=False, retry_initial_s=0.5, retry_max_s=5)
    sink._connect()  # connect before the clock starts, as the naive loop does
    t0 = time.perf_counter()
    Collector(cfg, sink).run(once=True)
    ours = time.perf_counter() - t0
    assert sink.rows_written == n, sink.rows_written

    # Naive baseline: the same prepared insert, one synchronous execute per line.
    naive = CassandraSink(cfg.cassandra, host=host + "-naive", store_raw=False, retry_initial_s=0.5, retry_max_s=5)
    naive._connect()
    session, insert = naive._session, naive._insert
    now = datetime.now(UTC)
    lines = log.read_text().splitlines()[:naive_n]
    t0 = time.perf_counter()
    for i, line in enumerate(lines):
        rec = parse_syslog(line, source=str(log), position=f"naive:{i}", fallback_ts=now, now=now)
        row = row_values(naive.host, rec, store_raw=False, ingested_at=now)
        session.execute(insert, tuple(UNSET_VALUE if row[i] is None else row[i] for i in BIND_ORDER))
    naive_s = time.perf_counter() - t0
    naive.close()
    return {
        "collector_rows": n,
        "collector_rows_per_s": round(n / ours),
        "naive_rows": naive_n,
        "naive_sync_rows_per_s": round(naive_n / naive_s),
        "ratio_collector_to_naive": round((n / ours) / (naive_n / naive_s), 2),
        "contact_points": cass["contact_points"],
        "consistency": cass["consistency"],
        "concurrency": cfg.cassandra.concurrency,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parse-lines", type=int, default=200_000)
    ap.add_argument("--e2e-lines", type=int, default=20_000)
    ap.add_argument("--naive-lines", type=int, default=3_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stress", help="path of cassandra-stress, if available")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "benchmark": "collector",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        path = tmpdir / "parse.log"
        result["parse_file_bytes"] = make_file(path, args.parse_lines)
        result["parse"] = bench_parse(path, args.parse_lines, args.repeat)
        result["end_to_end"] = bench_end_to_end(tmpdir, args.e2e_lines, args.naive_lines)
    result["cassandra_stress"] = (
        {"skipped": "not run: comparing with cassandra-stress is not implemented yet"} if args.stress
        else {"skipped": "cassandra-stress not available: the archive assembled from Maven Central has no tools/"
                 " (Maven Central has no cassandra-stress artifact)"}
    )
    text = json.dumps(result, indent=2)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"collector-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(text + "\n")
    print(text)
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
