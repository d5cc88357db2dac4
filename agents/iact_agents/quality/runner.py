"""``iact-agent quality run``: the checks of :mod:`.checks` over the stored DORA events, written to
``quality_results`` (one row per check and one ``score`` row per run, all with the run's UUID).

The schema checks over stored data: ``schema.ingest``, whose population is the stored events plus the
pending dead letters, each pending dead letter a failure; and ``schema.stored_rows``, whose population is
every stored row read, each row that is not a valid event (skipped by ``dora compute``: a timestamp
outside the storable range stored before ingest checked it, a value written around the agent) a failure.

Row values: ``status`` ``pass`` when nothing failed (the score row: when the score is at least
``min_score``), else ``fail``; ``observed_value`` the pass rate 0..1 (the score row: the score 0..100);
``threshold`` 1.0 (score row: ``min_score``); ``failing_rows`` and ``evaluated_rows`` the counts;
``detail`` the description and up to 20 findings (score row: the category pass rates and weights).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pymysql.cursors

from ..dora.store import Database, LoadedEvents
from .checks import QualityConfig, QualityReport, run_checks
from .score import CATEGORY_WEIGHTS, CheckResult, Finding, quality_score

DEFAULT_MIN_SCORE = 90.0
MAX_FINDINGS = 20


def stored_schema_check(loaded: LoadedEvents) -> CheckResult:
    findings = tuple(
        Finding("schema.ingest", etype, ref, None, reason) for etype, ref, reason in loaded.dead_letter_samples
    )
    return CheckResult(
        "schema.ingest", "schema", "stored events that passed validation (pending dead letters fail)",
        loaded.total + loaded.pending_dead_letters, loaded.pending_dead_letters, findings, "ingest",
    )


def stored_rows_check(loaded: LoadedEvents) -> CheckResult:
    name = "schema.stored_rows"
    findings = tuple(
        Finding(name, r.event_type, r.source_event_id, r.service,
                f"{r.table} row {r.row_id}: {r.reason}; left out of the metrics")
        for r in loaded.skipped_rows
    )
    return CheckResult(
        name, "schema", "stored rows that are valid events (the others are left out of the metrics)",
        loaded.total + loaded.skipped, loaded.skipped, findings, "dora",
    )


def run_quality(loaded: LoadedEvents, as_of: datetime, config: QualityConfig | None = None) -> QualityReport:
    report = run_checks(loaded.deployments, loaded.changes, loaded.incidents, as_of=as_of, config=config)
    checks = (stored_schema_check(loaded), stored_rows_check(loaded), *report.checks)
    return QualityReport(report.as_of, checks, quality_score(checks))


def quality_config(stale_days: int, unlinked_days: int, anomaly_days: int, metrics: Any) -> QualityConfig:
    return QualityConfig(
        stale_incident_after=timedelta(days=stale_days), unlinked_change_after=timedelta(days=unlinked_days),
        anomaly_days=anomaly_days, metrics=metrics,
    )


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    rows: int


def _finding(f: Finding) -> dict[str, Any]:
    return {"event_type": f.event_type, "id": f.source_event_id, "service": f.service, "message": f.message}


def write_results(db: Database, report: QualityReport, min_score: float = DEFAULT_MIN_SCORE) -> StoredRun:
    """One row per check and one ``score`` row, all with a new run UUID, in one transaction."""
    run_id = str(uuid.uuid4())
    rows: list[tuple[Any, ...]] = []
    for c in report.checks:
        detail = {"description": c.description, "findings": [_finding(f) for f in c.findings[:MAX_FINDINGS]],
                  "findings_total": len(c.findings)}
        rows.append((run_id, c.dataset or "dora", c.check, c.category, "pass" if c.failed == 0 else "fail",
                     c.pass_rate, 1.0, c.failed, c.evaluated, json.dumps(detail)))
    score = report.score
    status = "pass" if score.score is not None and score.score >= min_score else "fail"
    detail = {"category_rates": score.category_rates, "weights": dict(CATEGORY_WEIGHTS), "reason": score.reason,
              "as_of": report.as_of.isoformat()}
    rows.append((run_id, "dora", "score", "score", status, score.score, min_score, None, None, json.dumps(detail)))

    def work(cur: pymysql.cursors.Cursor) -> int:
        cur.executemany(
            "INSERT INTO quality_results (run_id, dataset, check_name, category, status, observed_value, threshold, "
            "failing_rows, evaluated_rows, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
        return len(rows)

    return StoredRun(run_id, db.run(work, "writing the quality results"))
