"""``iact-agent quality run``: the data-quality checks of the DORA events (checks in :mod:`.checks`, the run and
its storage in :mod:`.runner`). It reads the DORA agent's configuration and events, so the configuration,
connection and argument helpers are the DORA command line's."""

from __future__ import annotations

import argparse

from ..dora.cli import _as_of, _common, _config, _date, _db, _end_of, _print_json, _source_name
from ..dora.store import load_events
from .runner import DEFAULT_MIN_SCORE, quality_config, run_quality, write_results


def cmd_quality_run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    as_of = _as_of(args, cfg)
    db = _db(cfg, quality=True)
    try:
        loaded = load_events(db, args.source or ())
        q = cfg.quality
        report = run_quality(loaded, _end_of(as_of), quality_config(
            q.stale_incident_after_days, q.unlinked_change_after_days, q.anomaly_days, cfg.metrics.metrics_config()))
        stored = None if args.no_record else write_results(db, report, args.min_score)
    finally:
        db.close()
    if args.json:
        _print_json({
            "as_of": as_of.isoformat(), "score": report.score.score, "run_id": stored.run_id if stored else None,
            "checks": [{"check": c.check, "category": c.category, "evaluated": c.evaluated, "failed": c.failed}
                       for c in report.checks],
        })
    else:
        for c in report.checks:
            print(f"{'PASS' if c.failed == 0 else 'FAIL'}  {c.check}: {c.failed} of {c.evaluated} failed")
            for f in c.findings[:5]:
                print(f"      {f.source_event_id}: {f.message}")
        score = "-" if report.score.score is None else f"{report.score.score:.1f}"
        run = f"; run {stored.run_id}, {stored.rows} rows" if stored else ""
        print(f"quality score {score}/100 as of {as_of}{run}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    quality = sub.add_parser("quality", help="data quality checks of the DORA events")
    qsub = quality.add_subparsers(dest="quality_command", metavar="ACTION", required=True)
    p = qsub.add_parser("run", help="run the checks, store them in quality_results, print the score")
    _common(p)
    p.add_argument("--as-of", type=_date, help="judge the data as of the end of this day (default: today)")
    p.add_argument("--source", action="append", type=_source_name, help="only events of this source (repeatable)")
    p.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE, help="score row passes from this score")
    p.add_argument("--no-record", action="store_true", help="print only, write nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_quality_run)
