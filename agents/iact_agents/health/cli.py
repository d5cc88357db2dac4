"""`iact-agent health`: run the checks, record them, raise and resolve alerts, exit like a Nagios plugin."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TextIO

from . import config as health_config
from .runner import HealthReport, run_health

_MARK = {"ok": "OK", "warning": "WARN", "critical": "CRIT", "unknown": "UNKNOWN"}


def format_table(report: HealthReport) -> str:
    rows = [(_MARK[r.status.value], r.component, r.check_name, "" if r.latency_ms is None else f"{r.latency_ms} ms",
             r.summary) for r in report.results]
    head = ("STATUS", "COMPONENT", "CHECK", "LATENCY", "SUMMARY")
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head[:-1])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head[:-1], widths, strict=True)) + "  " + head[-1]]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    counts = {s: sum(1 for r in report.results if r.status.value == s) for s in _MARK}
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    recorded = "recorded" if report.recorded else "not recorded"
    lines.append(f"{report.host}: {_MARK[report.status.value]} ({tally}; {recorded})")
    for alert in report.alerts:
        sent = ", ".join(f"{c.channel} {'ok' if c.ok else 'FAILED: ' + c.reason}" for c in alert.channels)
        lines.append(f"alert {alert.key}: {alert.event or alert.action}" + (f" [{sent}]" if sent else ""))
    return "\n".join(lines) + "\n"


def cmd_health(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    path: Path | None = args.config
    if path is None and health_config.DEFAULT_CONFIG_PATH.exists():
        path = health_config.DEFAULT_CONFIG_PATH
    cfg = health_config.load(path)
    if args.check_config:
        print(f"{path or 'defaults'}: OK", file=out)
        return 0
    if getattr(args, "verbose", 0) < 2:
        # The Cassandra driver logs each failed connection with a traceback; the check's own summary
        # already says what failed, in one line.
        logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    report = run_health(cfg, record=not args.no_record)
    if args.json:
        out.write(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    else:
        out.write(format_table(report))
    for problem in report.problems:
        print(f"iact-agent health: {problem}", file=err)
    return report.exit_code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health",
        help="run the health checks, record them and raise alerts (exit 0 ok, 1 warning, 2 critical, 3 unknown)",
    )
    p.add_argument("--config", type=Path, help=f"TOML file (default {health_config.DEFAULT_CONFIG_PATH} if present)")
    p.add_argument("--check-config", action="store_true", help="validate the configuration, then exit")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-record", action="store_true", help="only print: write nothing to MySQL, send no alert")
    p.set_defaults(func=cmd_health)
