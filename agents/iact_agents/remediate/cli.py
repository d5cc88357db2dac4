"""`iact-agent remediate run|report`: act on this host's newest health results within the guardrails, or show
the recorded decisions."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from .. import mysqlconn
from ..health import config as health_config
from . import config as remediate_config
from .actions import ALLOW_LIST
from .runner import RemediationReport, run_remediation
from .store import Decided, RemediationStore


def _configs(args: argparse.Namespace) -> tuple[remediate_config.RemediateConfig, health_config.HealthConfig, str]:
    path: Path | None = args.config
    if path is None and remediate_config.DEFAULT_CONFIG_PATH.exists():
        path = remediate_config.DEFAULT_CONFIG_PATH
    overrides = {"dry_run": True} if getattr(args, "dry_run", False) else None
    cfg = remediate_config.load(path, overrides=overrides)
    health_path = cfg.health_config if cfg.health_config.exists() or path is not None else None
    return cfg, health_config.load(health_path), str(path or "defaults")


def format_run(report: RemediationReport) -> str:
    mode = " (dry run)" if report.dry_run else ""
    if not report.decisions:
        lines = [f"{report.host}: nothing to remediate{mode}"]
    else:
        lines = [f"{d.outcome.value.upper():8} {d.action}: {d.summary}" for d in report.decisions]
        lines.append(f"{report.host}: {len(report.decisions)} decision(s){mode}")
    for alert in report.alerts:
        lines.append(f"alert {alert.key}: {alert.event or alert.action}")
    return "\n".join(lines) + "\n"


def format_decisions(rows: list[Decided]) -> str:
    if not rows:
        return "no remediation decision in this period\n"
    head = ("DECIDED (UTC)", "HOST", "ACTION", "OUTCOME", "SUMMARY")
    table = [(r.decided_at.strftime("%Y-%m-%d %H:%M:%S"), r.host, r.action,
              r.outcome + (f" ({r.guardrail})" if r.guardrail else ""), r.summary) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(head[:-1])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head[:-1], widths, strict=True)) + "  " + head[-1]]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] for row in table]
    return "\n".join(lines) + "\n"


def cmd_run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    cfg, health, source = _configs(args)
    if args.check_config:
        enabled = ", ".join(cfg.actions) or "none"
        print(f"{source}: OK (actions: {enabled}; dry_run: {str(cfg.dry_run).lower()})", file=out)
        return 0
    report = run_remediation(cfg, health)
    out.write(json.dumps(report.as_dict(), indent=2) + "\n" if args.json else format_run(report))
    return report.exit_code


def cmd_report(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    _, health, _ = _configs(args)
    conn = mysqlconn.connect(health.mysql.defaults_file, connect_timeout=health.mysql.connect_timeout_s)
    try:
        since = datetime.now(UTC) - timedelta(hours=args.hours)
        rows = RemediationStore(conn).recent(since, None if args.all_hosts else health.host, args.limit)
    finally:
        conn.close()
    out.write(json.dumps([r.as_dict() for r in rows], indent=2) + "\n" if args.json else format_decisions(rows))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("remediate", help="act on failed health checks within guardrails (allow-list, budgets, lock)")
    rsub = p.add_subparsers(dest="remediate_command", metavar="SUBCOMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path,
                        help=f"TOML file (default {remediate_config.DEFAULT_CONFIG_PATH} if present)")
    common.add_argument("--json", action="store_true", help="print JSON")
    run = rsub.add_parser("run", parents=[common],
                          help=f"decide and act on this host's newest health results ({', '.join(ALLOW_LIST)})")
    run.add_argument("--check-config", action="store_true", help="validate the configuration, then exit")
    run.add_argument("--dry-run", action="store_true", help="record and notify what would be done; change nothing")
    run.set_defaults(func=cmd_run)
    rep = rsub.add_parser("report", parents=[common], help="the recorded decisions")
    rep.add_argument("--hours", type=float, default=24.0, help="how far back (default 24)")
    rep.add_argument("--all-hosts", action="store_true", help="every host's decisions, not only this host's")
    rep.add_argument("--limit", type=int, default=200)
    rep.set_defaults(func=cmd_report)
