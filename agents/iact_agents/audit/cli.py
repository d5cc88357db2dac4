"""``iact-agent audit``: run the checks on this host, list them, or show several hosts' reports.

Exit codes of ``audit run``: 0 passed; 1 a check of severity high or above failed; 3 no such failure, but a check
could not be judged or the run could not be recorded; 2 bad configuration. Results go to MySQL (``audit_runs``,
``audit_results``) and to ``report.json``/``report.md`` in the state folder unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ..errors import AgentError
from . import config as audit_config
from .facts import Facts
from .host import HostView
from .report import read_report, render_catalogue, render_fleet, render_json, render_markdown, render_table
from .runner import EXIT_UNDECIDED, AuditRun, catalogue, check_waivers, run_audit


def _record(cfg: audit_config.AuditConfig, run: AuditRun) -> None:
    """Store the run in MySQL and write the reports; what failed becomes a problem of the run."""
    from ..dora.store import Database  # noqa: PLC0415 - only a recording run needs the DORA store
    from .report import write_reports  # noqa: PLC0415
    from .store import record  # noqa: PLC0415

    db = Database(cfg.record.defaults_file, connect_timeout=cfg.record.connect_timeout_s, attempts=3)
    try:
        record(db, run)
    except AgentError as exc:
        run.problems.append(f"not recorded in MySQL: {exc}")
    finally:
        db.close()
    try:
        write_reports(run, cfg.state_dir)
    except OSError as exc:
        run.problems.append(f"reports not written to {cfg.state_dir}: {exc.strerror or exc}")


def cmd_run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    cfg = audit_config.load(args.config)
    check_waivers(cfg.waivers)
    if args.check_config:
        print(f"{args.config or audit_config.DEFAULT_CONFIG_PATH}: OK", file=out)
        return 0
    checks = catalogue(args.only or ())
    if not checks:
        raise AgentError(f"no check matches {', '.join(args.only)} (see `iact-agent audit list`)")
    facts = Facts(cfg, HostView(Path(args.root), command_timeout_s=cfg.command_timeout_s))
    run = run_audit(facts, checks)
    if not args.no_record:
        _record(cfg, run)
    out.write(render_json(run) if args.json else render_markdown(run) if args.markdown else render_table(run))
    for problem in run.problems:
        print(f"iact-agent audit: {problem}", file=err)
    if run.problems and run.exit_code == 0:
        return EXIT_UNDECIDED
    return run.exit_code


def cmd_list(args: argparse.Namespace) -> int:
    sys.stdout.write(render_catalogue(catalogue(args.only or ()), markdown=args.markdown))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    reports = [read_report(p) for p in args.files]
    sys.stdout.write(render_fleet(reports))
    return max((1 if r.outcome == "failed" else EXIT_UNDECIDED if r.outcome == "incomplete" else 0
                for r in reports), default=0)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="compliance (RNF-002) and security audit of this host")
    asub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    p = asub.add_parser("run", help="run the checks (exit 1: a check of severity high or above failed)")
    p.add_argument("--config", type=Path, help=f"TOML file (default {audit_config.DEFAULT_CONFIG_PATH} if present)")
    p.add_argument("--check-config", action="store_true", help="validate the configuration, then exit")
    p.add_argument("--only", action="append", metavar="ID", help="only this check or group, e.g. mysql (repeatable)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the run as JSON")
    out.add_argument("--markdown", action="store_true", help="print the Markdown report")
    p.add_argument("--no-record", action="store_true", help="only print: nothing to MySQL, no report files")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)  # tests: a tree shaped like a host
    p.set_defaults(func=cmd_run)

    p = asub.add_parser("list", help="list the checks with their reference and severity")
    p.add_argument("--only", action="append", metavar="ID")
    p.add_argument("--markdown", action="store_true")
    p.set_defaults(func=cmd_list)

    p = asub.add_parser("report", help="one table of several hosts' JSON reports (exit as the worst of them)")
    p.add_argument("files", nargs="+", type=Path, metavar="REPORT.json")
    p.set_defaults(func=cmd_report)
