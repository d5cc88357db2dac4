"""The driver ceiling: the Python driver alone, writing rows built in memory before the clock starts, with the
collector's own statement, single-partition batching, consistency and account. Built with the sink's own
pieces (rows.RowEncoder, CassandraSink._chunks and ._statement), so the only difference from the collector
is everything the collector does besides sending: reading, parsing, committing, retrying.

Each client is a process of its own (``clients`` of them start together at a barrier), so the fleet part can
compare N collector processes with N driver processes.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import Target, cpu_seconds

BENCH_DIR = str(Path(__file__).resolve().parent)


def _records(path: Path, fmt: str, limit: int) -> list[Any]:
    from iact_agents.collector.tailer import FileTailer, TailParams  # noqa: PLC0415

    tailer = FileTailer(str(path), fmt, state=None, params=TailParams(batch_lines=1000))  # type: ignore[arg-type]
    out: list[Any] = []
    while len(out) < limit and (batch := tailer.read_batch()) is not None:
        out += batch.records
        tailer.ack(batch)
    tailer.close()
    return out[:limit]


def _client(job: dict[str, Any], ready: Any, go: Any, results: Any) -> None:
    """One driver client (in its own process): build every statement, wait for the others, send them all.
    ``job``: target, settings, host, path, fmt, rows, concurrency."""
    target: Target = job["target"]
    host, rows, concurrency = job["host"], job["rows"], job["concurrency"]
    if BENCH_DIR not in sys.path:
        sys.path.insert(0, BENCH_DIR)
    from cassandra.concurrent import execute_concurrent  # noqa: PLC0415
    from iact_agents.collector.config import CassandraSettings  # noqa: PLC0415
    from iact_agents.collector.sink import CassandraSink  # noqa: PLC0415

    try:
        sink = CassandraSink(CassandraSettings.model_validate(target.cassandra_settings(**job["settings"])), host=host,
                             store_raw=False, retry_initial_s=0.5, retry_max_s=5)
        conn = sink._acquire()
        records = _records(Path(job["path"]), job["fmt"], rows)
        encoded, suspect = sink._encode(conn, records, datetime.now(UTC), None)
        assert not suspect
        statements = [(sink._statement(conn, chunk), None) for chunk in sink._chunks(encoded)]
        del records, encoded
        ready.put(os.getpid())
        go.wait()
        cpu0, t0 = cpu_seconds(os.getpid()), time.monotonic()
        results_list = execute_concurrent(conn.session, statements, concurrency=concurrency,
                                          raise_on_first_error=False)
        t1, cpu1 = time.monotonic(), cpu_seconds(os.getpid())
        failed = sum(1 for ok, _ in results_list if not ok)
        sent = sum(len(s._statements_and_parameters) for s, _ in statements)
        sink._release(conn)
        sink.close()
        results.put({"host": host, "rows": sent, "failed_requests": failed, "requests": len(statements),
                     "t0": t0, "t1": t1, "cpu_s": cpu1 - cpu0})
    except BaseException as exc:  # the parent must hear about it, whatever it is
        ready.put(-1)
        results.put({"host": host, "error": f"{type(exc).__name__}: {exc}"})


def run(target: Target, path: Path, fmt: str, *, rows: int, concurrency: int, clients: int = 1,
        settings: dict[str, Any] | None = None, host_prefix: str = "bench-ceiling") -> dict[str, Any]:
    """``clients`` processes, each sending ``rows`` rows of ``path`` (as ``fmt``) under a host of its own;
    aggregate rows/s from the first start to the last finish."""
    import uuid  # noqa: PLC0415

    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    run_id = uuid.uuid4().hex[:6]
    hosts = [f"{host_prefix}-{run_id}-{i}" for i in range(clients)]
    jobs = [{"target": target, "settings": settings or {}, "host": h, "path": str(path), "fmt": fmt, "rows": rows,
             "concurrency": concurrency} for h in hosts]
    procs = [ctx.Process(target=_client, args=(job, ready, go, results)) for job in jobs]
    for p in procs:
        p.start()
    try:
        states = [ready.get(timeout=600) for _ in procs]
        if -1 not in states:
            go.set()
        got = [results.get(timeout=1800) for _ in procs]
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    errors = [g["error"] for g in got if "error" in g]
    if errors:
        raise RuntimeError(f"driver ceiling client failed: {errors[0]}")
    total = sum(g["rows"] for g in got)
    wall = max(g["t1"] for g in got) - min(g["t0"] for g in got)
    cpu = sum(g["cpu_s"] for g in got)
    return {"clients": clients, "concurrency": concurrency, "rows": total, "wall_s": round(wall, 3),
            "rows_per_s": round(total / wall), "rows_per_cpu_s": round(total / cpu) if cpu else None,
            "failed_requests": sum(g["failed_requests"] for g in got),
            "requests": sum(g["requests"] for g in got), "hosts": hosts}


def sweep(target: Target, path: Path, fmt: str, *, rows: int, levels: tuple[int, ...] = (8, 16, 32, 64, 128),
          settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """One client at each concurrency; the best is the ceiling."""
    points = [run(target, path, fmt, rows=rows, concurrency=c, settings=settings) for c in levels]
    best = max(points, key=lambda p: p["rows_per_s"])
    return {"points": points, "best": best}
