"""Part 5, DR throughput, measured by calling what exists on the lab hosts (``iact-backup``, ``mariabackup``),
never by changing it. Every duration is measured inside the host (``date +%s.%N`` around the command), so
``docker exec`` adds nothing.

MariaDB (the mysql host): a raw ``cp -a`` of the data directory on the same host (the baseline); ``iact-backup
run mysql`` (mariabackup --backup and --prepare, manifest, upload, verification by checksum, binary logs,
retention; its own meta.env says how long mariabackup took); the restore path up to the server:
``iact-backup fetch`` (download and verify) and ``mariabackup --copy-back`` into a scratch data directory
(the running server is not touched).

Cassandra: ``iact-backup run cassandra`` on every node at once (as the nightly job runs), at three data sizes
per node: what the lab holds, then about 100 MB and 1 GB per node of incompressible rows in a scratch keyspace
(``iact_bench``, RF 3), dropped afterwards (its drop snapshot cleared), after which one more backup leaves a
clean newest backup of the day. Each level takes two backups: the first sends what the fill added, the second
(right after) only what is new since, so it shows what the size alone costs. The benchmark's own backups are
then deleted from the backup target (the target's retention would delete them only at its daily run, holding
gigabytes until then); that newest one stays.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shlex
import time
from typing import Any

import lab
from common import Target, load_average

MB = 1 << 20
BENCH_KS = "iact_bench"


def timed(host: lab.Host, command: str, timeout: float = 3600) -> tuple[float, str]:
    """(seconds, output) of ``command`` on ``host``, timed on the host itself."""
    out = lab.sh(host, f"t0=$(date +%s.%N); {{ {command} ; }} 2>&1; rc=$?; t1=$(date +%s.%N); "
                       'echo "__timing $t0 $t1 $rc"', timeout=timeout)
    m = re.search(r"__timing (\S+) (\S+) (\d+)\s*$", out)
    if m is None:
        raise RuntimeError(f"{host.name}: cannot time {command!r}: {out[-2000:]}")
    if m.group(3) != "0":
        raise RuntimeError(f"{host.name}: {command!r} exited {m.group(3)}: {out[-3000:]}")
    return float(m.group(2)) - float(m.group(1)), out[: m.start()]


def du_bytes(host: lab.Host, path: str) -> int:
    return int(lab.sh(host, f"du -sb {path} | cut -f1").strip())


def _backup_line(output: str, kind: str) -> dict[str, Any]:
    """iact-backup prints ``<id> <size_bytes> <backup_seconds>`` when a backup is complete, Cassandra backups
    ``<sent_bytes>`` too (file data that went over the network; the rest came from the previous backup)."""
    for line in output.splitlines()[::-1]:
        parts = line.split()
        if len(parts) in (3, 4) and parts[0].startswith(f"{kind}-"):
            sent = int(parts[3]) if len(parts) == 4 else None
            return {"id": parts[0], "size_bytes": int(parts[1]), "snapshot_s": float(parts[2]), "sent_bytes": sent}
    raise RuntimeError(f"no backup id in the output of iact-backup run {kind}:\n{output[-2000:]}")


def mysql(*, keep_scratch: bool = False) -> dict[str, Any]:
    host = lab.group("mysql")[0]
    datadir = "/var/lib/mysql"
    scratch = "/var/backups/iact-backup/bench"  # beside the backup staging folder: the same file system
    size = du_bytes(host, datadir)
    lab.sh(host, f"rm -rf {scratch} && mkdir -p {scratch}")
    out: dict[str, Any] = {"host": host.name, "datadir_mb": round(size / MB, 1), "load_before": load_average()}
    try:
        copy_s, _ = timed(host, f"cp -a {datadir} {scratch}/copy")
        lab.sh(host, f"rm -rf {scratch}/copy")
        backup_s, log = timed(host, "iact-backup run mysql")
        b = _backup_line(log, "mysql")
        fetch_s, _ = timed(host, f"iact-backup fetch {b['id']} {scratch}/fetched")
        sealed = lab.sh(host, f"find {scratch}/fetched -name '*.age' | head -1").strip()
        if sealed:  # encrypted backups: only the restore itself holds the key (the restore playbooks put it there)
            copyback_s = None
        else:
            copyback_s, _ = timed(host, f"mariabackup --copy-back --target-dir={scratch}/fetched/data "
                                        f"--datadir={scratch}/datadir")
    finally:
        if not keep_scratch:
            lab.sh(host, f"rm -rf {scratch}", check=False)
    raw = size / copy_s
    out |= {
        "raw_copy_s": round(copy_s, 2), "raw_copy_mb_s": round(raw / MB, 1),
        "backup_id": b["id"], "backup_mb": round(b["size_bytes"] / MB, 1),
        "mariabackup_s": b["snapshot_s"], "mariabackup_mb_s": round(b["size_bytes"] / b["snapshot_s"] / MB, 1),
        "backup_total_s": round(backup_s, 2), "backup_total_mb_s": round(b["size_bytes"] / backup_s / MB, 1),
        "fetch_verify_s": round(fetch_s, 2),
        "copy_back_s": round(copyback_s, 2) if copyback_s is not None else None,
        "restore_mb_s": round(b["size_bytes"] / (fetch_s + (copyback_s or 0.0)) / MB, 1),
        "restore_measured": "fetch + verify + copy-back" if copyback_s is not None else
        "fetch + verify only: the backup is encrypted and its key is not on the host outside a restore",
    }
    out["ratio_mariabackup"] = round(out["mariabackup_mb_s"] / out["raw_copy_mb_s"], 2)
    out["ratio_backup_total"] = round(out["backup_total_mb_s"] / out["raw_copy_mb_s"], 2)
    out["ratio_restore"] = round(out["restore_mb_s"] / out["raw_copy_mb_s"], 2)
    out["load_after"] = load_average()
    return out


# --- Cassandra -------------------------------------------------------------------------------------------

def _fill(target: Target, per_node_bytes: int, start_key: int, blob: int = 64 << 10) -> int:
    """Write ``per_node_bytes`` of random blobs into the scratch table (RF 3: every node holds them all)."""
    from cassandra.concurrent import execute_concurrent_with_args  # noqa: PLC0415

    cluster, session = target.connect(admin=True)
    try:
        stmt = session.prepare(f"INSERT INTO {BENCH_KS}.blobs (k, c, v) VALUES (?, ?, ?)")  # noqa: S608
        n = per_node_bytes // blob
        for first in range(0, n, 512):
            args = [(start_key + i, 0, os.urandom(blob)) for i in range(first, min(n, first + 512))]
            execute_concurrent_with_args(session, stmt, args, concurrency=16, raise_on_first_error=True)
        return start_key + n
    finally:
        cluster.shutdown()


def _backup_all(nodes: list[lab.Host]) -> dict[str, Any]:
    with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:
        runs = dict(zip(nodes, pool.map(lambda h: timed(h, "iact-backup run cassandra"), nodes), strict=True))
    per_node = {}
    for h, (secs, log) in runs.items():
        b = _backup_line(log, "cassandra")
        per_node[h.name] = {"total_s": round(secs, 1), "snapshot_s": b["snapshot_s"],
                            "backed_up_mb": round(b["size_bytes"] / MB, 1),
                            "sent_mb": None if b["sent_bytes"] is None else round(b["sent_bytes"] / MB, 1),
                            "id": b["id"]}
    return per_node


def cassandra(target: Target, *, levels_mb: tuple[int, ...] = (100, 1024)) -> dict[str, Any]:
    nodes = lab.group("cassandra")
    if lab.nodes_up(nodes) != len(nodes):
        raise RuntimeError("not every Cassandra node is UN; not starting the backup benchmark")
    cluster, session = target.connect(admin=True)
    try:
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {BENCH_KS} WITH replication = "
                        f"{{'class': 'NetworkTopologyStrategy', '{target.dc}': {len(nodes)}}}")
        session.execute(f"CREATE TABLE IF NOT EXISTS {BENCH_KS}.blobs (k int, c int, v blob, PRIMARY KEY (k, c)) "
                        "WITH compression = {'enabled': 'false'}")
    finally:
        cluster.shutdown()
    steps: list[dict[str, Any]] = []
    out: dict[str, Any] = {"nodes": len(nodes), "load_before": load_average(), "steps": steps}
    key = 0
    try:
        for level in (0, *levels_mb):
            if level:
                have = min(du_bytes(h, "/var/lib/cassandra/data") for h in nodes)
                if level * MB > have:
                    t0 = time.monotonic()
                    key = _fill(target, level * MB - have, key)
                    for h in nodes:
                        lab.sh(h, f"nodetool flush {BENCH_KS}")
                    fill_s = time.monotonic() - t0
                else:
                    fill_s = 0.0
            else:
                fill_s = 0.0
            data = {h.name: round(du_bytes(h, "/var/lib/cassandra/data") / MB, 1) for h in nodes}
            per_node = _backup_all(nodes)
            # Backups send only what is new since the previous one: the first backup of a step sends the fill,
            # a second one right after it shows the cost of the size alone (nothing new but the flushes since).
            repeat = _backup_all(nodes)
            steps.append({"target_mb": level or None, "data_mb": data, "fill_s": round(fill_s, 1),
                          "backup": per_node, "max_total_s": max(p["total_s"] for p in per_node.values()),
                          "repeat": repeat, "max_repeat_s": max(p["total_s"] for p in repeat.values())})
    finally:
        _drop_bench(target, nodes)
        out["cleanup_backup"] = _backup_all(nodes)  # the day's newest backup without the scratch keyspace
        out["removed_backups"] = _drop_bench_backups(steps)
    if len(steps) >= 3:
        out["growth_100mb_to_1gb"] = round(steps[-1]["max_total_s"] / steps[-2]["max_total_s"], 2)
        out["growth_100mb_to_1gb_repeat"] = round(steps[-1]["max_repeat_s"] / steps[-2]["max_repeat_s"], 2)
    out["load_after"] = load_average()
    return out


def _drop_bench(target: Target, nodes: list[lab.Host]) -> None:
    cluster, session = target.connect(admin=True)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {BENCH_KS}", timeout=120)
    finally:
        cluster.shutdown()
    for h in nodes:  # auto_snapshot keeps a snapshot of a dropped keyspace: its files are the benchmark's
        lab.sh(h, f"nodetool clearsnapshot --all -- {BENCH_KS} >/dev/null 2>&1; "
                  f"rm -rf /var/lib/cassandra/data/{BENCH_KS}", check=False)


def _drop_bench_backups(steps: list[dict[str, Any]]) -> list[str]:
    """Delete the backups the steps made from the backup target (``<root>/<source>/data/<id>``, root from the
    target's /etc/iact/backup-target.toml), as its retention would at its next daily run; the paths removed."""
    removed = []
    for target in lab.group("backup_targets"):
        root = lab.sh(target, "python3 -c 'import tomllib; "
                              "print(tomllib.load(open(\"/etc/iact/backup-target.toml\", \"rb\"))[\"root\"])'").strip()
        for step in steps:
            for host, b in [*step["backup"].items(), *step.get("repeat", {}).items()]:
                if not re.fullmatch(r"cassandra-[0-9]{8}T[0-9]{6}Z", b["id"]):
                    continue
                path = shlex.quote(f"{root}/{host}/data/{b['id']}")
                if lab.sh(target, f"test -d {path} && rm -rf -- {path} && echo removed", check=False).strip():
                    removed.append(f"{target.name}:{root}/{host}/data/{b['id']}")
    return removed
