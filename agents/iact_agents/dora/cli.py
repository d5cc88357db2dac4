"""``iact-agent dora ...`` and ``iact-agent quality run``: thin commands over the library.

Exit codes: 0 done, 1 ``--strict`` ingest with rejected lines, 2 bad configuration or input (one line,
no traceback), 3 MySQL unreachable or a transient error that outlasted the retries, 4 MySQL answered and
refused a statement (:class:`~.store.StoreRefused`: a privilege, a packet over ``max_allowed_packet``).
A bad input line is never an error of the command: it becomes a dead letter.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from .. import storable
from ..audit.store import latest_runs as latest_audits
from ..errors import ConfigError, InputError
from ..quality.runner import quality_config, run_quality
from . import config as dora_config
from .benchmarks import load_table
from .models import ParseResult, Rejection, parse_document, parse_object
from .report import ReportData, render_html, render_json, render_table, write_if_changed
from .snapshot import snapshot_rows
from .store import (
    Database,
    IngestCounts,
    LoadedEvents,
    StoreRefused,
    ingest,
    latest_snapshot_day,
    list_dead_letters,
    load_events,
    read_snapshots,
    retry_dead_letters,
    write_snapshots,
)


def _config(args: argparse.Namespace) -> dora_config.DoraConfig:
    overrides: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    if getattr(args, "window", None):
        metrics["windows"] = args.window
    if getattr(args, "benchmark_year", None) is not None:
        metrics["benchmark_year"] = args.benchmark_year
    if metrics:
        overrides["metrics"] = metrics
    cfg = dora_config.load(args.config, overrides)
    load_table(cfg.metrics.benchmark_year)  # an unknown year is a config error now, not after the work
    return cfg


def _db(cfg: dora_config.DoraConfig, quality: bool = False) -> Database:
    r = cfg.retry
    return Database(
        cfg.mysql.quality_defaults_file if quality else cfg.mysql.defaults_file,
        connect_timeout=cfg.mysql.connect_timeout_s, attempts=r.attempts, base_delay=r.base_delay_s,
        max_delay=r.max_delay_s,
    )


def _as_of(args: argparse.Namespace, cfg: dora_config.DoraConfig) -> date:
    value: date | None = getattr(args, "as_of", None) or cfg.metrics.as_of
    return value or datetime.now(UTC).date()


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def _source_name(text: str) -> str:
    """``--source``: compared exactly in the database, so written as events write it (lower case)."""
    return text.strip().lower()


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True, default=str))


# --- ingest and record --------------------------------------------------------------------------------


def _describe(name: str, c: IngestCounts) -> str:
    return (f"{name}: read {c.read}, accepted {c.accepted} (inserted {c.inserted}, updated {c.updated}, "
            f"unchanged {c.unchanged}), duplicates {c.duplicates}, rejected {c.rejected} "
            f"(new dead letters {c.dead_letters_new}), dead letters resolved {c.dead_letters_resolved}, "
            f"retries {c.retries}")


def cmd_ingest(args: argparse.Namespace) -> int:
    cfg = _config(args)
    texts: list[tuple[str, bytes]] = []
    for path in args.files:
        name = storable.clean_text(str(path))  # a file name need not be UTF-8
        try:
            texts.append((name, path.read_bytes()))  # decoded line by line: a bad line is one dead letter
        except FileNotFoundError:
            raise InputError(f"{name}: no such file") from None
        except (PermissionError, IsADirectoryError):
            raise InputError(f"{name}: not readable") from None
    db = _db(cfg)
    total = IngestCounts()
    per_file: dict[str, dict[str, Any]] = {}
    try:
        for name, text in texts:
            parsed = parse_document(text, default_source=args.source)
            counts = ingest(db, parsed, name, default_source=args.source)
            total.add(counts)
            per_file[name] = {**counts.as_dict(), "rejections": counts.rejections}
            if not args.json:
                print(_describe(name, counts))
                for line in counts.rejections:
                    print(f"  rejected {line}", file=sys.stderr)
    finally:
        db.close()
    if args.json:
        _print_json({"files": per_file, "total": total.as_dict()})
    elif len(texts) > 1:
        print(_describe("total", total))
    return 1 if args.strict and total.rejected else 0


def cmd_record(args: argparse.Namespace) -> int:
    cfg = _config(args)
    obj: dict[str, Any] = {"type": args.event_type, "source_event_id": args.id, "service": args.service}
    if args.source:
        obj["source"] = args.source
    for name in ("environment", "deployed_at", "started_at", "status", "version", "commit_sha", "committed_at",
                 "authored_at", "first_commit_at", "deployment_id", "resolved_at", "severity", "title"):
        value = getattr(args, name, None)
        if value is not None:
            obj[name] = value
    if getattr(args, "change_id", None):
        obj["change_ids"] = args.change_id
    event = parse_object(obj, 1, json.dumps(obj, sort_keys=True))
    if isinstance(event, Rejection):
        reasons = "; ".join(f"{e.field}: {e.reason}" for e in event.errors)
        raise InputError(f"{args.event_type} not recorded: {reasons}")
    db = _db(cfg)
    try:
        counts = ingest(db, ParseResult(accepted=[event]), "command line")
    finally:
        db.close()
    outcome = "inserted" if counts.inserted else "updated" if counts.updated else "unchanged (already recorded)"
    print(f"{event.type} {event.source}/{event.source_event_id}: {outcome}")
    return 0


# --- compute ------------------------------------------------------------------------------------------


def _quality_score(loaded: LoadedEvents, day: date, cfg: dora_config.DoraConfig) -> float | None:
    q = cfg.quality
    qcfg = quality_config(q.stale_incident_after_days, q.unlinked_change_after_days, q.anomaly_days,
                          cfg.metrics.metrics_config())
    return run_quality(loaded, _end_of(day), qcfg).score.score


def cmd_compute(args: argparse.Namespace) -> int:
    cfg = _config(args)
    as_of = _as_of(args, cfg)
    if args.backfill < 1:
        raise InputError("--backfill must be at least 1 day")
    db = _db(cfg)
    try:
        loaded = load_events(db, args.source or ())
        rows: list[dict[str, Any]] = []
        for offset in range(args.backfill - 1, -1, -1):
            day = as_of - timedelta(days=offset)
            score = _quality_score(loaded, day, cfg)
            for row in snapshot_rows(
                loaded.deployments, loaded.changes, loaded.incidents, computed_on=day,
                window_days=cfg.metrics.windows, year=cfg.metrics.benchmark_year,
                config=cfg.metrics.metrics_config(),
            ):
                rows.append({**row, "quality_score": score})
        counts = write_snapshots(db, rows)
    finally:
        db.close()
    summary = {"as_of": as_of.isoformat(), "days": args.backfill, "windows": cfg.metrics.windows,
               "benchmark_year": cfg.metrics.benchmark_year, "events": loaded.total,
               "skipped_rows": loaded.skipped, "rows": len(rows), **counts.as_dict()}
    if args.json:
        _print_json(summary)
    else:
        print(f"snapshots as of {as_of} ({args.backfill} day(s), windows {cfg.metrics.windows}, benchmark year "
              f"{cfg.metrics.benchmark_year}) from {loaded.total} events: {counts.inserted} inserted, "
              f"{counts.replaced} replaced, {counts.unchanged} unchanged")
    if loaded.skipped:
        print(f"{loaded.skipped} stored row(s) are not valid events and were left out; "
              "`iact-agent quality run` lists them (check schema.stored_rows)", file=sys.stderr)
    return 0


# --- report -------------------------------------------------------------------------------------------


def load_report(db: Database, requested: date, history_days: int) -> ReportData:
    day = latest_snapshot_day(db, requested)
    if day is None:
        raise InputError(f"no DORA snapshot on or before {requested}: run `iact-agent dora compute` first")
    rows = read_snapshots(db, day, day)
    history = [r for r in read_snapshots(db, day - timedelta(days=history_days - 1), day) if r["service"] == "*"]
    try:
        audits, note = latest_audits(db), ""
    except StoreRefused as exc:  # no table (migration 0015 not applied) or no SELECT on it: the rest still shows
        audits, note = [], f"audit results unavailable: {exc.detail}"
    return ReportData(day, requested, rows, history, audits, note)


_CONFIGURED = Path("<[report] html_path>")
"""``--html`` without a path: the page goes where the configuration says."""


def cmd_report(args: argparse.Namespace) -> int:
    cfg = _config(args)
    db = _db(cfg)
    try:
        data = load_report(db, _as_of(args, cfg), cfg.report.history_days)
    finally:
        db.close()
    if args.json:
        sys.stdout.write(render_json(data))
    elif args.html is not None:
        path = cfg.report.html_path if args.html is _CONFIGURED else args.html
        written = write_if_changed(path, render_html(data))
        print(f"{path}: {'written' if written else 'unchanged'} ({data.as_of})")
    else:
        sys.stdout.write(render_table(data))
    return 0


# --- dead letters -------------------------------------------------------------------------------------


def cmd_dead_letters(args: argparse.Namespace) -> int:
    cfg = _config(args)
    db = _db(cfg)
    try:
        if args.action == "list":
            letters = list_dead_letters(db, pending_only=not args.all, source=args.source, ids=args.id or ())
            if args.json:
                _print_json([{k: v for k, v in vars(d).items()} for d in letters])
            else:
                for d in letters:
                    state = "pending" if d.reprocessed_at is None else f"reprocessed {d.reprocessed_at}"
                    print(f"{d.id}\t{d.source}\t{d.event_type or '-'}\t{d.source_event_id or '-'}\t{state}\t"
                          f"attempts {d.attempts}\t{d.input_name or '-'}\t{d.reason}")
                print(f"{len(letters)} dead letter(s)", file=sys.stderr)
            return 0
        fixed: bytes | None = None
        if args.fixed is not None:
            if not args.id or len(args.id) != 1:
                raise InputError("--fixed needs exactly one --id")
            try:
                fixed = args.fixed.read_bytes().strip()  # judged like an input line (UTF-8, size, JSON)
            except OSError as exc:
                raise InputError(f"{args.fixed}: {exc.strerror}") from None
        letters = list_dead_letters(db, pending_only=True, source=args.source, ids=args.id or ())
        if args.id and len(letters) != len(set(args.id)):
            found = {d.id for d in letters}
            missing = sorted(set(args.id) - found)
            raise InputError(f"no pending dead letter with id {', '.join(map(str, missing))}")
        counts = retry_dead_letters(db, letters, fixed_payload=fixed)
    finally:
        db.close()
    if args.json:
        _print_json(counts.as_dict())
    else:
        for m in counts.messages:
            print(m)
        print(f"retried {counts.retried}: {counts.ingested} ingested, {counts.still_rejected} still rejected")
    return 0


# --- quality ------------------------------------------------------------------------------------------



def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _config(args)
    print(f"{args.config or dora_config.DEFAULT_CONFIG_PATH}: ok (windows {cfg.metrics.windows}, "
          f"benchmark year {cfg.metrics.benchmark_year})")
    return 0


def _check_config_or_usage(args: argparse.Namespace) -> int:
    if not args.check_config:
        raise InputError("an ACTION (ingest, record, compute, report) or --check-config is needed")
    return cmd_check_config(args)


# --- argparse -----------------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path,
                   help=f"TOML file (default {dora_config.DEFAULT_CONFIG_PATH} if present)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dora = sub.add_parser("dora", help="DORA metrics: ingest events, compute snapshots, report")
    # --check-config as for the other agents (collect, health, audit run).
    dora.add_argument("--check-config", action="store_true", help="validate the configuration, then exit")
    _common(dora)
    dora.set_defaults(func=_check_config_or_usage)
    dsub = dora.add_subparsers(dest="dora_command", metavar="ACTION")
    _register_ingest(dsub)
    _register_record(dsub)
    _register_compute_report(dsub)


def _register_ingest(dsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:

    p = dsub.add_parser("ingest", help="ingest JSON or JSON-lines event files (format: dora/FORMAT.md)")
    _common(p)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--source", type=_source_name, help="source of events that do not name one")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when any line was rejected")
    p.set_defaults(func=cmd_ingest)

    p = dsub.add_parser("dead-letters", help="list rejected events, or retry them after a fix")
    _common(p)
    p.add_argument("action", choices=("list", "retry"), nargs="?", default="list")
    p.add_argument("--id", type=int, action="append", help="only this dead letter (repeatable)")
    p.add_argument("--source", type=_source_name)
    p.add_argument("--all", action="store_true", help="list: include reprocessed ones")
    p.add_argument("--fixed", type=Path, metavar="FILE", help="retry: corrected JSON event for one --id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dead_letters)


def _register_record(dsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rec = dsub.add_parser("record", help="record one event from the command line")
    rsub = rec.add_subparsers(dest="event_type", metavar="TYPE", required=True)
    for name in ("deployment", "change", "incident"):
        r = rsub.add_parser(name, help=f"record one {name}")
        _common(r)
        r.add_argument("--id", required=True, help="source_event_id")
        r.add_argument("--service", required=True)
        r.add_argument("--source", type=_source_name, help="reporting system (default manual)")
        if name == "deployment":
            r.add_argument("--environment", default="production")
            r.add_argument("--deployed-at", required=True, help="ISO 8601 with offset")
            r.add_argument("--started-at")
            r.add_argument("--status", required=True, help="success, failed or rolled_back")
            r.add_argument("--version")
            r.add_argument("--commit-sha")
            r.add_argument("--change-id", action="append", help="a change's source_event_id (repeatable)")
        elif name == "change":
            r.add_argument("--commit-sha", required=True)
            r.add_argument("--committed-at", required=True)
            r.add_argument("--authored-at")
            r.add_argument("--first-commit-at", help="squash/rebase merges: first original commit time")
            r.add_argument("--deployment-id")
        else:
            r.add_argument("--environment")
            r.add_argument("--started-at", required=True)
            r.add_argument("--resolved-at")
            r.add_argument("--deployment-id")
            r.add_argument("--severity")
            r.add_argument("--title")
        r.set_defaults(func=cmd_record)


def _register_compute_report(dsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = dsub.add_parser("compute", help="compute and store snapshots (one row per service + overall, window, day)")
    _common(p)
    p.add_argument("--window", type=int, action="append", metavar="DAYS", help="window length (repeatable)")
    p.add_argument("--as-of", type=_date, help="last day of the windows (default: config, else today UTC)")
    p.add_argument("--benchmark-year", type=int, help="DORA report year of the classes")
    p.add_argument("--backfill", type=int, default=1, metavar="DAYS",
                   help="compute the DAYS days ending with --as-of (trend history)")
    p.add_argument("--source", action="append", type=_source_name, help="only events of this source (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compute)

    p = dsub.add_parser("report", help="print the latest snapshots (table, --json) or write an HTML page")
    _common(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--html", type=Path, nargs="?", const=_CONFIGURED, metavar="PATH",
                     help="write a self-contained HTML page (to PATH, else to the config's [report] html_path)")
    p.add_argument("--as-of", type=_date, help="latest snapshot on or before this day (default: config, else today)")
    p.set_defaults(func=cmd_report)



__all__ = ["ConfigError", "register"]
