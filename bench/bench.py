#!/usr/bin/env python3
"""`make bench`: the six measurements of issue 17 on the lab, each as a ratio measured in the same run.

  1 parse     lines/CPU-s of each reader + parser / a bare read loop over the same bytes (no lab needed)
  2 ceiling   collector rows/s / the driver ceiling (same rows, statement, batching, consistency; best
              concurrency of a sweep)
  3 cost      rows per collector CPU-second and peak RSS in steady state (the run of part 2) and through an
              outage of every Cassandra node at 2 000 lines/s (``outage``), then drain rate / input rate
  4 fleet     every lab collector at once, several sources each / the driver ceiling with as many processes;
              the cluster's write latency p99 from its table metrics
  5 dr        MariaDB backup and restore MB/s / a raw copy; Cassandra snapshot-and-upload at ~10 MB, 100 MB,
              1 GB per node
  6 deploy    a FORCE=1 converge of site.yml with profile_tasks/profile_roles (and, with --fresh-inventory,
              the first converge of new hosts)
  7 rollout   a new agents release by the canary rollout (drill/rollout.py) / by the Ansible agents playbook

Writes ``bench/results/<name>-<time>.json`` and prints a Markdown table. Run it after ``make lab``, holding the
lab lock of this machine if it has one (the outage stops every Cassandra node; they are started again and
waited for, UN, whatever happens).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lab
import parse_bench
from common import RESULTS, Results, load_average

ALL = ("parse", "ceiling", "fleet", "outage", "dr", "deploy", "rollout")
TARGETS = {"parse": 0.03, "ceiling": 0.8, "rows_per_cpu_s": 30_000, "rss_mib": 64.0, "fleet": 0.8,
           "mariabackup": 0.5, "snapshot_growth": 2.0}


def _f(x: float | None, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}{unit}".replace(",", " ")


def report_parse(res: Results, data: dict[str, Any]) -> None:
    for name, r in data.items():
        syslog = name == "syslog file format"
        res.add("1 parse", f"{name}: reader + parser", f"{_f(r['reader_lines_per_cpu_s'])} lines/CPU-s",
                ratio=f"{r['ratio']:.4f} x bare loop ({_f(r['bare_loop_lines_per_cpu_s'])}/s)",
                target=">= 0.03" if syslog else "", met=r["ratio"] >= TARGETS["parse"] if syslog else None)


def report_ceiling(res: Results, d: dict[str, Any]) -> None:
    c = d["collector"]
    res.add("2 collector / ceiling", f"{d['lines']} JSON lines, rows/s", f"{_f(c['rows_per_s'])} rows/s",
            ratio=f"{d['ratio']:.2f} x driver ceiling ({_f(d['ceiling']['rows_per_s'])} rows/s at concurrency "
                  f"{d['ceiling']['concurrency']})", target=">= 0.8", met=d["ratio"] >= TARGETS["ceiling"])
    if "sweep_alt" in d:
        alt = d["sweep_alt"]
        top = max(alt["points"], key=lambda p: p["rows_per_s"])
        res.add("2 collector / ceiling", f"driver with {alt['partition_batch_rows']}-row partition batches (not the "
                "ceiling: other batching)", f"{_f(top['rows_per_s'])} rows/s at concurrency {top['concurrency']}",
                ratio=f"collector {c['rows_per_s'] / top['rows_per_s']:.2f} x this")
    for r in d.get("collector_rows", []):
        res.add("2 collector / ceiling", f"collector with rows_in_flight = {r['rows_in_flight']}",
                f"{_f(r['rows_per_s'])} rows/s", ratio=f"{r['rows_per_s'] / d['ceiling']['rows_per_s']:.2f} x ceiling; "
                f"peak RSS {_f(r['lifetime_peak_rss_mib'], ' MiB', 1)}, {_f(r['rows_per_cpu_s'])} rows/CPU-s")
    res.add("3 cost (steady)", "rows per collector CPU-second", _f(c["rows_per_cpu_s"]),
            ratio=f"driver alone: {_f(d['ceiling']['rows_per_cpu_s'])}", target=">= 30 000",
            met=c["rows_per_cpu_s"] >= TARGETS["rows_per_cpu_s"])
    res.add("3 cost (steady)", "peak RSS (whole run)", _f(c["lifetime_peak_rss_mib"], " MiB", 1), target="<= 64 MiB",
            met=c["lifetime_peak_rss_mib"] <= TARGETS["rss_mib"])


def report_outage(res: Results, d: dict[str, Any]) -> None:
    res.add("3 cost (outage)", f"all {d['down_s']:.0f} s down at {d['rate']} lines/s: peak RSS",
            _f(d["lifetime_peak_rss_mib"], " MiB", 1),
            ratio=f"while down: {_f(d['peak_rss_mib_while_down'], ' MiB', 1)}", target="<= 64 MiB",
            met=d["lifetime_peak_rss_mib"] <= TARGETS["rss_mib"])
    res.add("3 cost (outage)", "drain after the restart", f"{_f(d['drain_rows_per_s'])} rows/s for {d['drain_s']} s",
            ratio=f"{d['drain_over_input']:.2f} x input rate (backlog {_f(d['backlog_lines_at_restart'])} lines)")
    res.add("3 cost (outage)", "rows per collector CPU-second, whole outage run", _f(d["rows_per_cpu_s_overall"]),
            ratio=f"CPU while down: {d['cpu_s_while_down']} s")


def report_fleet(res: Results, d: dict[str, Any]) -> None:
    for st in d.get("steps", [])[:-1]:
        res.add("4 fleet", f"step: {st['collectors']} collectors, aggregate",
                f"{_f(st['collectors_rows_per_s'])} rows/s",
                ratio=f"{st['ratio']:.2f} x {st['collectors']} driver processes ({_f(st['ceiling_rows_per_s'])} "
                      "rows/s)")
    res.add("4 fleet", f"{d['collectors']} collectors x {d['sources_per_host']} sources, aggregate",
            f"{_f(d['collectors_rows_per_s'])} rows/s",
            ratio=f"{d['ratio']:.2f} x {d['ceiling']['clients']} driver processes ({_f(d['ceiling']['rows_per_s'])}"
                  " rows/s)", target=">= 0.8", met=d["ratio"] >= TARGETS["fleet"])
    pc, pd = d["p99_ms_collectors"], d["p99_ms_ceiling"]
    res.add("4 fleet", "write latency p99, coordinator / local (table metrics, worst node)",
            f"collectors {_f(pc['coordinator'], ' ms', 2)} / {_f(pc['local'], ' ms', 3)}",
            ratio=f"driver {_f(pd['coordinator'], ' ms', 2)} / {_f(pd['local'], ' ms', 3)}")


def report_dr_mysql(res: Results, m: dict[str, Any]) -> None:
    if m:
        res.add("5 DR", f"MariaDB backup, mariabackup --backup/--prepare ({m['backup_mb']} MB)",
                f"{m['mariabackup_mb_s']} MB/s", ratio=f"{m['ratio_mariabackup']:.2f} x raw copy "
                f"({m['raw_copy_mb_s']} MB/s)", target=">= 0.5", met=m["ratio_mariabackup"] >= TARGETS["mariabackup"])
        res.add("5 DR", "MariaDB backup, whole iact-backup run (upload, verify, binlogs, prune)",
                f"{m['backup_total_mb_s']} MB/s", ratio=f"{m['ratio_backup_total']:.2f} x raw copy")
        res.add("5 DR", f"MariaDB restore: {m['restore_measured']}", f"{m['restore_mb_s']} MB/s",
                ratio=f"{m['ratio_restore']:.2f} x raw copy")


def report_dr_cassandra(res: Results, c: dict[str, Any]) -> None:
    if c:
        sizes = []
        for step in c["steps"]:
            size = max(step["data_mb"].values())
            sizes.append(size)
            before = ", ".join(f"{n} {b['snapshot_s']} s" for n, b in step["backup"].items())
            res.add("5 DR", f"Cassandra snapshot + upload, {size:.0f} MB per node (all nodes at once)",
                    f"{step['max_total_s']} s", ratio=f"before the upload (snapshot, schema, nodetool): {before}")
        if "growth_100mb_to_1gb" in c:
            g = c["growth_100mb_to_1gb"]
            res.add("5 DR", f"Cassandra backup time, {sizes[-1]:.0f} MB / {sizes[-2]:.0f} MB per node", f"{g:.2f} x",
                    target="< 2 x (100 MB -> 1 GB)", met=g < TARGETS["snapshot_growth"])


def report_deploy(res: Results, d: dict[str, Any]) -> None:
    for kind, r in d.items():
        slow = ", ".join(f"{n} {s:.0f} s" for n, s in r["roles"][:4])
        res.add("6 deploy", f"{kind} converge of site.yml", f"{r['wall_s']} s, changed={r['changed']}, "
                f"failed={r['failed']}", ratio=f"slowest roles: {slow}")
        if r["slowest_tasks"]:
            name, secs = r["slowest_tasks"][0]
            res.add("6 deploy", f"{kind}: slowest task", f"{secs:.1f} s", ratio=name)


def report_rollout(res: Results, d: dict[str, Any]) -> None:
    res.add("7 rollout", f"new agents release to {d['hosts']} hosts: canary rollout (waves, restarts, health gates)",
            f"{d['rollout_s']} s", ratio=f"{d['ratio_rollout_to_ansible']} x the agents playbook "
            f"({d['ansible_agents_playbook_s']} s, no restart, no gate)")


def run_part(res: Results, name: str, fn: Callable[[], Any], report: Callable[[Results, Any], None]) -> None:
    print(f"bench: {name} (load {load_average()})", file=sys.stderr, flush=True)
    try:
        data = fn()
    except Exception as exc:  # (on purpose: one failed part must not lose the others' figures)
        res.data[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        res.add(name, "FAILED", f"{type(exc).__name__}: {str(exc)[:200]}")
        print(traceback.format_exc(), file=sys.stderr)
        return
    res.data[name] = data
    report(res, data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default=",".join(ALL), help=f"comma-separated, of {', '.join(ALL)}")
    ap.add_argument("--name", default="bench")
    ap.add_argument("--lines", type=int, default=100_000, help="collector run of part 2")
    ap.add_argument("--sweep-rows", type=int, default=50_000, help="rows per point of the ceiling sweep")
    ap.add_argument("--concurrency", default="8,16,32,64,128", help="ceiling sweep")
    ap.add_argument("--parse-lines", type=int, default=200_000)
    ap.add_argument("--outage-s", type=float, default=300.0)
    ap.add_argument("--outage-rate", type=int, default=2000)
    ap.add_argument("--fleet-sources", type=int, default=2)
    ap.add_argument("--fleet-lines", type=int, default=25_000, help="lines per source")
    ap.add_argument("--fleet-steps", default="", help="part 4: run it once per number of collectors of this "
                    "comma-separated list (e.g. 1,3,5: does the aggregate grow with collectors?); default: all")
    ap.add_argument("--cassandra-levels-mb", default="100,1024")
    ap.add_argument("--fresh-inventory", type=Path, help="first converge of these new hosts (part 6)")
    ap.add_argument("--profile", action="store_true", help="sample the collector with py-spy in part 2")
    ap.add_argument("--alt-batch-rows", type=int, help="part 2: also sweep the driver with partition batches of "
                    "this many rows (beside the ceiling, which uses the collector's own batching)")
    ap.add_argument("--collector-rows", default="", help="part 2: also run the collector once per rows_in_flight "
                    "level of this comma-separated list (rows/s and peak RSS against rows in flight)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(ALL)
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    res = Results(args.name)
    res.data["load_before"] = load_average()
    res.data["args"] = {k: str(v) for k, v in vars(args).items()}
    if "parse" in parts:
        run_part(res, "parse", lambda: parse_bench.run(args.parse_lines), report_parse)
    needs_lab = [p for p in parts if p != "parse"]
    if needs_lab:
        _run_lab_parts(res, args, needs_lab)
    res.data["load_after"] = load_average()
    path = res.write(args.out)
    print(res.markdown())
    print(f"\nwritten to {path}", file=sys.stderr)
    return 1 if any(r.what == "FAILED" for r in res.rows) else 0


def _run_lab_parts(res: Results, args: argparse.Namespace, parts: list[str]) -> None:
    import deploy  # noqa: PLC0415
    import dr  # noqa: PLC0415
    import e2e  # noqa: PLC0415
    import fleet  # noqa: PLC0415

    target, creds = lab.lab_target()
    cassandra = lab.group("cassandra")
    levels = tuple(int(x) for x in args.concurrency.split(","))
    try:
        with tempfile.TemporaryDirectory(prefix="iact-bench-") as tmp:
            work = Path(tmp)
            for sub in ("e2e", "fleet"):  # (the outage part makes its own)
                (work / sub).mkdir()
            best = 32
            if "ceiling" in parts:
                run_part(res, "ceiling", lambda: e2e.part2(target, work / "e2e", lines=args.lines,
                                                            sweep_rows=args.sweep_rows, levels=levels,
                                                            profile=args.profile,
                                                            alt_batch_rows=args.alt_batch_rows,
                                                            rows_levels=_ints(args.collector_rows)), report_ceiling)
                best = res.data["ceiling"].get("ceiling", {}).get("concurrency", best)
            if "fleet" in parts:
                def fleet_part() -> dict[str, Any]:
                    runs = [fleet.run(target, _mkdir(work / "fleet" / str(n or "all")),
                                      sources_per_host=args.fleet_sources, lines_per_source=args.fleet_lines,
                                      concurrency=best, collectors=n) for n in _ints(args.fleet_steps) or (None,)]
                    steps = [{k: r[k] for k in ("collectors", "collectors_rows_per_s", "collectors_rows_per_cpu_s",
                                                "ratio", "p99_ms_collectors", "p99_ms_ceiling", "load_before",
                                                "load_after")} | {"ceiling_rows_per_s": r["ceiling"]["rows_per_s"]}
                             for r in runs]
                    return runs[-1] | ({"steps": steps} if len(runs) > 1 else {})

                run_part(res, "fleet", fleet_part, report_fleet)
            if "outage" in parts:
                run_part(res, "outage", lambda: e2e.outage(target, _mkdir(work / "outage"), rate=args.outage_rate,
                                                            down_s=args.outage_s), report_outage)
            if "dr" in parts:
                mb = tuple(int(x) for x in args.cassandra_levels_mb.split(","))
                run_part(res, "dr_mysql", dr.mysql, report_dr_mysql)
                run_part(res, "dr_cassandra", lambda: dr.cassandra(target, levels_mb=mb), report_dr_cassandra)
            if "deploy" in parts:
                args.out.mkdir(parents=True, exist_ok=True)

                def converge() -> dict[str, Any]:
                    out = {"FORCE=1": deploy.converge(lab.INVENTORY, args.out / f"{args.name}-deploy-force.log")}
                    if args.fresh_inventory:
                        out["first"] = deploy.converge(args.fresh_inventory, args.out / f"{args.name}-deploy-first.log")
                    return out

                run_part(res, "deploy", converge, report_deploy)
            if "rollout" in parts:
                import rollout_bench  # noqa: PLC0415

                run_part(res, "rollout", lambda: rollout_bench.run(str(lab.INVENTORY)), report_rollout)
    finally:
        if lab.nodes_up(cassandra) != len(cassandra):  # whatever failed: the lab's Cassandra comes back
            print("bench: starting every Cassandra node again", file=sys.stderr)
            res.data["cassandra_restarted_at_end"] = lab.start_all(cassandra)
        if creds is not None:
            creds.cleanup()


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
