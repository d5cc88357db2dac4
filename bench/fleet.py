"""Part 4, fleet: every collector of the lab (the deployed ``iact-collector`` services) ships at once, several
sources per host, against the driver ceiling with as many client processes.

The bench files go where the collectors already look (``/var/log/iact/*.json.log``), written from this
machine into each container's file system; progress is read from each collector's own state file the same
way (no process is started inside the containers while measuring). Each file first gets one line, so that
every collector has found it (globs are re-scanned every ``rescan_interval_s``) before the clock starts; then
all the lines are appended at once. The cluster's write latency p99 comes from Cassandra's own table metrics
(``system_views.coordinator_write_latency`` and ``local_write_latency``, per node), read right after each
phase (they are decaying histograms: they describe the last minutes, i.e. that phase).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ceiling
import lab
from common import JsonLines, Target, cpu_seconds, delete_partitions, json_file, load_average, rss_kib

LOG_DIR = "var/log/iact"
STATE = "var/lib/iact-collector/positions.json"


def _offsets(root: Path, paths: list[str]) -> dict[str, int]:
    try:
        doc = json.loads((root / STATE).read_text())
    except (OSError, ValueError):
        return {}
    sources = doc.get("sources", {})
    return {p: int(sources[f"file:{p}"]["offset"]) for p in paths if f"file:{p}" in sources}


def latency_p99(target: Target) -> dict[str, Any]:
    """Per node: the log table's coordinator and local write latency (p50, p99 in ms, and count); a node that
    does not answer (marked down by the driver on a loaded machine) gets the error instead."""
    cluster, session = target.connect(admin=True)
    out: dict[str, Any] = {}
    try:
        for host in cluster.metadata.all_hosts():
            node: dict[str, Any] = {}
            for kind in ("coordinator", "local"):
                try:
                    rows = list(session.execute(
                        f"SELECT p50th_ms, p99th_ms, count FROM system_views.{kind}_write_latency "  # noqa: S608
                        "WHERE keyspace_name = %s AND table_name = %s", (target.keyspace, target.table), host=host))
                except Exception as exc:  # (on purpose: a node the driver marked down under load loses its row only)
                    node[f"{kind}_error"] = f"{type(exc).__name__}: {exc}"[:300]
                    continue
                if rows:
                    node[kind] = {"p50_ms": rows[0].p50th_ms, "p99_ms": rows[0].p99th_ms, "count": rows[0].count}
            out[str(host.endpoint.address)] = node
    finally:
        cluster.shutdown()
    return out


def worst(latency: dict[str, Any], kind: str) -> float | None:
    values = [n[kind]["p99_ms"] for n in latency.values() if kind in n]
    return max(values) if values else None


def _prepare(run_id: str, sources_per_host: int, gen: JsonLines, collectors: int | None) -> list[dict[str, Any]]:
    """Every lab collector (or the first ``collectors`` of them), its process, its file system, and its bench
    files (one line each, so that every collector has found its files before the clock starts)."""
    hosts: list[dict[str, Any]] = []
    group = lab.group("collectors")
    if collectors is not None and not 1 <= collectors <= len(group):
        raise ValueError(f"collectors: {collectors} is not between 1 and the lab's {len(group)}")
    for h in group[:collectors]:
        pid = lab.process_pid(h, "iact-agent collect")
        if pid is None:
            raise RuntimeError(f"{h.name}: no running iact-collector (apply playbooks/collector.yml)")
        root = lab.rootfs(h)
        st = os.stat(root / LOG_DIR)
        paths = [f"/{LOG_DIR}/bench-{run_id}-{k}.json.log" for k in range(sources_per_host)]
        for p in paths:
            f = root / p.lstrip("/")
            f.write_text(gen.make(1))
            os.chown(f, st.st_uid, st.st_gid)
            f.chmod(0o640)
        hosts.append({"host": h, "pid": pid, "root": root, "paths": paths})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [_offsets(h["root"], h["paths"]) for h in hosts]
        if all(len(f) == len(h["paths"]) and all(f.values()) for f, h in zip(found, hosts, strict=True)):
            break
        time.sleep(0.5)
    return hosts


def _ship(hosts: list[dict[str, Any]], bodies: dict[str, str], timeout: float) -> float:
    """Append every body at once; wait until each collector committed its files to their end. The start."""
    for h in hosts:
        h["cpu0"] = cpu_seconds(h["pid"])
    t0 = time.monotonic()
    for h in hosts:
        for p in h["paths"]:
            with (h["root"] / p.lstrip("/")).open("a", encoding="utf-8") as fh:
                fh.write(bodies[p])
    sizes = {(h["host"].name, p): (h["root"] / p.lstrip("/")).stat().st_size for h in hosts for p in h["paths"]}
    pending = {h["host"].name for h in hosts}
    while pending and time.monotonic() - t0 < timeout:
        for h in hosts:
            name = h["host"].name
            offs = _offsets(h["root"], h["paths"])
            if name in pending and all(offs.get(p, 0) >= sizes[(name, p)] for p in h["paths"]):
                h["t1"], h["cpu1"] = time.monotonic(), cpu_seconds(h["pid"])
                pending.discard(name)
        time.sleep(0.2)
    if pending:
        raise RuntimeError(f"collectors {sorted(pending)} did not ship their bench files in {timeout}s")
    return t0


def run(target: Target, workdir: Path, *, sources_per_host: int, lines_per_source: int, concurrency: int,
        timeout: float = 1800, collectors: int | None = None) -> dict[str, Any]:
    """The fleet at once: every lab collector, or the first ``collectors`` of them (and as many driver
    clients)."""
    gen = JsonLines(seed=11)
    hosts = _prepare(uuid.uuid4().hex[:6], sources_per_host, gen, collectors)
    bodies = {p: gen.make(lines_per_source) for h in hosts for p in h["paths"]}
    out: dict[str, Any] = {"collectors": len(hosts), "sources_per_host": sources_per_host,
                           "lines_per_source": lines_per_source, "load_before": load_average()}
    per_host_lines = sources_per_host * lines_per_source
    try:
        t0 = _ship(hosts, bodies, timeout)
        del bodies
        out["latency_collectors"] = latency_p99(target)
        wall = max(h["t1"] for h in hosts) - t0
        out["per_host"] = {h["host"].name: {"wall_s": round(h["t1"] - t0, 1),
                                            "rows_per_s": round(per_host_lines / (h["t1"] - t0)),
                                            "cpu_s": round(h["cpu1"] - h["cpu0"], 2),
                                            "rss_mib": round(rss_kib(h["pid"])[0] / 1024, 1)} for h in hosts}
        out["collectors_rows_per_s"] = round(len(hosts) * per_host_lines / wall)
        out["collectors_rows_per_cpu_s"] = round(len(hosts) * per_host_lines
                                                 / sum(h["cpu1"] - h["cpu0"] for h in hosts))
        # The driver ceiling with as many client processes, each as many rows as one collector shipped.
        sample = workdir / "fleet.json.log"
        json_file(sample, per_host_lines)
        ceil = ceiling.run(target, sample, "json", rows=per_host_lines, concurrency=concurrency,
                           clients=len(hosts), host_prefix="bench-fleet")
        out["latency_ceiling"] = latency_p99(target)
    finally:
        _cleanup(target, hosts)
    for host in ceil["hosts"]:
        delete_partitions(target, host, [str(sample)], _days())
    out["ceiling"] = {k: ceil[k] for k in ("clients", "concurrency", "rows", "rows_per_s", "rows_per_cpu_s",
                                           "failed_requests")}
    out["ratio"] = round(out["collectors_rows_per_s"] / ceil["rows_per_s"], 3)
    out["p99_ms_collectors"] = {k: worst(out["latency_collectors"], k) for k in ("coordinator", "local")}
    out["p99_ms_ceiling"] = {k: worst(out["latency_ceiling"], k) for k in ("coordinator", "local")}
    out["load_after"] = load_average()
    return out


def _days() -> list[Any]:
    today = datetime.now(UTC).date()
    return [today - timedelta(days=1), today]


def _cleanup(target: Target, hosts: list[dict[str, Any]]) -> None:
    """The bench files (each collector then drops its reader) and every row written from them."""
    for h in hosts:
        for p in h["paths"]:
            (h["root"] / p.lstrip("/")).unlink(missing_ok=True)
        delete_partitions(target, h["host"].name, h["paths"], _days())
