"""Parts 2 and 3: the collector end to end against the driver ceiling, and what it costs (CPU, memory), in
steady state and through an outage of every Cassandra node.

Part 2 runs the ceiling sweep, then the collector over the same lines, then the ceiling at its best
concurrency again (the cluster's speed drifts on a shared machine; the ceiling is the best of all its runs).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ceiling
import lab
from collector_proc import CollectorProc, py_spy, thread_cpu
from common import JsonLines, Target, bench_host, delete_partitions, json_file, load_average, rss_kib
from spy import summarize


def collector_run(target: Target, path: Path, fmt: str, lines: int, workdir: Path, *,
                  settings: dict[str, Any] | None = None, cassandra: dict[str, Any] | None = None,
                  env: dict[str, str] | None = None, profile: Path | None = None) -> dict[str, Any]:
    """The real collector command ships ``path``; steady state from its first commit to its last."""
    c = CollectorProc(workdir, target, bench_host("collector"), [(path, fmt)], settings=settings or {},
                      cassandra=cassandra or {}, env=env or {})
    c.start()
    spy = None
    threads: dict[str, float] = {}
    try:
        first = c.wait_lines(1, 120)
        before = thread_cpu(c.pid)
        if profile is not None and first is not None:
            spy = py_spy(c.pid, profile, 600)
        shipped = c.ship(lines)
        after = thread_cpu(c.pid)
        threads = {str(t): round(after[t] - before.get(t, 0.0), 2) for t in sorted(after)}
        peak = rss_kib(c.pid)[1]
    finally:
        code = c.stop()
        if spy is not None:
            spy.terminate()
            spy.wait(60)
    out = shipped.as_json() | {"exit_code": code, "lifetime_peak_rss_mib": round(peak / 1024, 1), "host": c.host,
                               "thread_cpu_s": threads}
    if profile is not None and profile.exists():
        out["profile"] = summarize(profile)
    return out


def part2(target: Target, workdir: Path, *, lines: int, sweep_rows: int, levels: tuple[int, ...],
          profile: bool = False, alt_batch_rows: int | None = None,
          rows_levels: tuple[int, ...] = ()) -> dict[str, Any]:
    """With ``alt_batch_rows``, the driver is also swept with partition batches of that many rows (recorded
    beside the ceiling, not part of it: the ceiling uses the collector's own batching), to show what the
    collector's batch size costs or gains the driver itself. With ``rows_levels``, the collector also ships
    the same lines once per level with ``rows_in_flight`` set to it and ``batch_lines`` to a quarter of it, at
    least 250 (``collector_rows``; the ratio stays the one of its default settings): rows/s and peak RSS
    against rows in flight, in the same run."""
    path = workdir / "app.json.log"
    json_file(path, lines)
    result: dict[str, Any] = {"lines": lines, "load_before": load_average()}
    alt_hosts: list[str] = []
    sw = ceiling.sweep(target, path, "json", rows=sweep_rows, levels=levels)
    result["sweep"] = [{k: p[k] for k in ("concurrency", "rows", "rows_per_s", "rows_per_cpu_s")}
                       for p in sw["points"]]
    if alt_batch_rows is not None:
        alt = ceiling.sweep(target, path, "json", rows=sweep_rows, levels=levels,
                            settings={"partition_batch_rows": alt_batch_rows})
        result["sweep_alt"] = {"partition_batch_rows": alt_batch_rows, "points": [
            {k: p[k] for k in ("concurrency", "rows", "rows_per_s", "rows_per_cpu_s")} for p in alt["points"]]}
        alt_hosts = [h for p in alt["points"] for h in p["hosts"]]
    result["collector"] = collector_run(target, path, "json", lines, workdir / "collector",
                                        profile=workdir / "collector.spy" if profile else None)
    extra_hosts: list[str] = []
    if rows_levels:
        result["collector_rows"] = []
        for n in rows_levels:
            # (4 batches in flight by default: batch_lines must grow with the rows, or they do not fit)
            level = {"rows_in_flight": n, "batch_lines": max(250, -(-n // 4))}
            r = collector_run(target, path, "json", lines, workdir / f"collector-{n}", settings=level)
            result["collector_rows"].append(level | {k: r[k] for k in (
                "rows_per_s", "rows_per_cpu_s", "cpu_s", "lifetime_peak_rss_mib", "exit_code")})
            extra_hosts.append(r["host"])
    again = ceiling.run(target, path, "json", rows=sweep_rows, concurrency=sw["best"]["concurrency"])
    result["ceiling_again"] = {k: again[k] for k in ("concurrency", "rows", "rows_per_s", "rows_per_cpu_s")}
    best = max([sw["best"], again], key=lambda p: p["rows_per_s"])
    result["ceiling"] = {k: best[k] for k in ("concurrency", "rows_per_s", "rows_per_cpu_s")}
    result["ratio"] = round(result["collector"]["rows_per_s"] / best["rows_per_s"], 3)
    result["load_after"] = load_average()
    hosts = [result["collector"]["host"]] + [h for p in [*sw["points"], again] for h in p["hosts"]]
    hosts += alt_hosts + extra_hosts
    _cleanup(target, hosts, [str(path)])
    return result


def _cleanup(target: Target, hosts: list[str], sources: list[str]) -> None:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    today = datetime.now(UTC).date()
    for host in hosts:
        delete_partitions(target, host, sources, [today - timedelta(days=1), today])


# --- the outage -----------------------------------------------------------------------------------------

class Feeder(threading.Thread):
    """Appends JSON lines to a file at a fixed rate (in ticks of 0.1 s) until stopped."""

    def __init__(self, path: Path, rate: int) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.rate = rate
        self.written = 0
        self.written_at_stop = 0
        self.stopped = threading.Event()
        self.gen = JsonLines(seed=3)

    def run(self) -> None:
        tick = 0.1
        per_tick = max(1, round(self.rate * tick))
        start = time.monotonic()
        with self.path.open("a", encoding="utf-8") as fh:
            while not self.stopped.is_set():
                due = int((time.monotonic() - start) / tick) + 1
                while self.written < due * per_tick:
                    fh.write(self.gen.make(per_tick))
                    self.written += per_tick
                fh.flush()
                self.stopped.wait(tick)


def outage(target: Target, workdir: Path, *, rate: int, down_s: float, warm_s: float = 20,
           drain_timeout_s: float = 1800) -> dict[str, Any]:
    """The collector follows a file growing at ``rate`` lines/s; every Cassandra node is stopped for ``down_s``
    seconds and started again; then the collector drains its backlog while the input keeps coming."""
    cassandra = lab.group("cassandra")
    if lab.nodes_up(cassandra) != len(cassandra):
        raise RuntimeError("not every Cassandra node is UN before the outage; refusing to stop them")
    path = workdir / "outage.json.log"
    path.write_text("")
    feeder = Feeder(path, rate)
    c = CollectorProc(workdir / "collector", target, bench_host("outage"), [(path, "json")],
                      settings={"retry_initial_s": 0.5, "retry_max_s": 30.0})
    out: dict[str, Any] = {"rate": rate, "down_s": down_s, "load_before": load_average()}
    c.start()
    feeder.start()
    rss_down: list[int] = []
    try:
        if c.wait_lines(1, 120) is None:
            raise RuntimeError(f"the collector shipped nothing before the outage:\n{c.tail()}")
        first = c.sample()
        time.sleep(warm_s)
        before = c.sample()
        lab.stop_all(cassandra)
        down_at = c.sample()
        feeder.written_at_stop = feeder.written - down_at.lines
        while time.monotonic() - down_at.at < down_s:
            rss_down.append(rss_kib(c.pid)[0])
            time.sleep(1)
        at_start = c.sample()
    finally:
        back = lab.start_all(cassandra)
    if not back:
        raise RuntimeError("Cassandra did not come back: every node must be UN again (check nodetool status)")
    up = c.sample()
    written_at_up = feeder.written
    drained = c.wait_lines(feeder.written, drain_timeout_s, interval=0.2)
    while drained is not None and drained.lines < feeder.written:  # the input keeps coming: catch up with it
        drained = c.wait_lines(feeder.written, drain_timeout_s, interval=0.2)
    feeder.stopped.set()
    feeder.join(10)
    end = c.sample()
    c.stop()
    if drained is None:
        raise RuntimeError(f"the collector did not catch up within {drain_timeout_s}s:\n{c.tail()}")
    drain_s = drained.at - up.at
    drain_rate = (drained.lines - up.lines) / drain_s if drain_s > 0 else 0.0
    out |= {
        "rows_per_s_before": round((before.lines - first.lines) / (before.at - first.at)),
        "backlog_lines_at_stop": feeder.written_at_stop,
        "backlog_lines_at_restart": written_at_up - up.lines,
        "restart_s": round(up.at - at_start.at, 1),
        "drain_s": round(drain_s, 1),
        "drain_rows_per_s": round(drain_rate),
        "drain_over_input": round(drain_rate / rate, 2),
        "cpu_s_while_down": round(at_start.cpu_s - down_at.cpu_s, 2),
        "peak_rss_mib_while_down": round(max(rss_down, default=0) / 1024, 1),
        "lifetime_peak_rss_mib": round(end.rss_kib / 1024, 1),
        "rows_per_cpu_s_overall": round((end.lines - before.lines) / (end.cpu_s - before.cpu_s))
        if end.cpu_s > before.cpu_s else None,
        "lines": feeder.written,
        "load_after": load_average(),
    }
    _cleanup(target, [c.host], [str(path)])
    return out


def main() -> None:  # pragma: no cover - manual runs of one part
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415

    target, creds = lab.lab_target()
    with tempfile.TemporaryDirectory(prefix="iact-bench-") as tmp:
        if sys.argv[1:2] == ["outage"]:
            res = outage(target, Path(tmp), rate=2000, down_s=float(sys.argv[2]) if len(sys.argv) > 2 else 300)
        else:
            res = part2(target, Path(tmp), lines=int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
                        sweep_rows=50_000, levels=(16, 32, 64), profile="--profile" in sys.argv)
    print(json.dumps(res, indent=2))
    if creds is not None:
        creds.cleanup()


if __name__ == "__main__":
    main()
