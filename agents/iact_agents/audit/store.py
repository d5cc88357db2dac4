"""``audit_runs`` and ``audit_results`` (migration 0015): one run recorded in one transaction, and the last run
of every host for the DORA/operations report.

Writes go through :class:`~iact_agents.dora.store.Database` (the retrying transaction the DORA agent uses) as
``iact_audit``, which may only INSERT into these two tables and ``job_runs``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pymysql.cursors

from ..dora.store import Database, utc_aware, utc_naive
from .model import Result, Status
from .runner import AuditRun

RUN_COLUMNS = ("run_id", "host", "started_at", "finished_at", "outcome", "exit_code", "checks", "passed", "failed",
               "failed_high", "not_applicable", "errors", "version")
RESULT_COLUMNS = ("run_id", "host", "checked_at", "check_id", "title", "reference", "severity", "status", "evidence",
                  "findings")


def run_row(run: AuditRun, run_id: str) -> tuple[Any, ...]:
    c = run.counts
    return (run_id, run.host[:255], utc_naive(run.started_at), utc_naive(run.finished_at), run.outcome, run.exit_code,
            len(run.results), c[Status.PASS], c[Status.FAIL], len(run.failed_high), c[Status.NOT_APPLICABLE],
            c[Status.ERROR], run.version[:32])


def _evidence(result: Result) -> str:
    """The evidence column; a waived failure says so there (the table has no column of its own for it)."""
    return f"{result.evidence} ({result.waiver})" if result.waiver else result.evidence


def result_rows(run: AuditRun, run_id: str) -> list[tuple[Any, ...]]:
    return [(run_id, run.host[:255], utc_naive(run.finished_at), r.id[:64], r.title[:255], r.reference[:255],
             r.severity.value, r.status.value, _evidence(r), json.dumps(list(r.findings)) if r.findings else None)
            for r in run.results]


def record(db: Database, run: AuditRun) -> str:
    """Store the run and its results in one transaction; the run's id (a UUID)."""
    run_id = str(uuid.uuid4())

    def work(cur: pymysql.cursors.Cursor) -> str:
        cur.execute(f"INSERT INTO audit_runs ({', '.join(RUN_COLUMNS)}) "  # noqa: S608 - fixed column names
                    f"VALUES ({', '.join(['%s'] * len(RUN_COLUMNS))})", run_row(run, run_id))
        cur.executemany(f"INSERT INTO audit_results ({', '.join(RESULT_COLUMNS)}) "  # noqa: S608
                        f"VALUES ({', '.join(['%s'] * len(RESULT_COLUMNS))})", result_rows(run, run_id))
        return run_id

    return db.run(work, "recording the audit run")


@dataclass(frozen=True)
class HostAudit:
    """The last audit of one host, as the reports show it."""

    host: str
    run_id: str
    finished_at: datetime
    outcome: str
    checks: int
    passed: int
    failed: int
    failed_high: int
    not_applicable: int
    errors: int
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    """(check id, severity, status) of the checks that failed or could not be judged."""

    def problems_text(self) -> str:
        """The checks that failed or could not be judged, as the reports show them: ``check (severity[, error])``."""
        return ", ".join(f"{check} ({severity}{', error' if status == 'error' else ''})"
                         for check, severity, status in self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "run_id": self.run_id, "finished_at": self.finished_at.isoformat(),
                "outcome": self.outcome, "checks": self.checks, "passed": self.passed, "failed": self.failed,
                "failed_high": self.failed_high, "not_applicable": self.not_applicable, "errors": self.errors,
                "problems": [{"check": c, "severity": s, "status": st} for c, s, st in self.problems]}


def latest_runs(db: Database) -> list[HostAudit]:
    """The last run of every host that was ever audited, by host name."""

    def work(cur: pymysql.cursors.Cursor) -> list[HostAudit]:
        cur.execute(
            "SELECT r.run_id, r.host, r.finished_at, r.outcome, r.checks, r.passed, r.failed, r.failed_high,"
            " r.not_applicable, r.errors FROM audit_runs r"
            " JOIN (SELECT host, MAX(finished_at) AS last FROM audit_runs GROUP BY host) m"
            " ON r.host = m.host AND r.finished_at = m.last ORDER BY r.host, r.id DESC")
        runs: dict[str, HostAudit] = {}
        for row in cur.fetchall():
            if row[1] not in runs:
                n = [int(v) for v in row[4:10]]
                runs[row[1]] = HostAudit(row[1], row[0], utc_aware(row[2]), row[3], checks=n[0], passed=n[1],
                                         failed=n[2], failed_high=n[3], not_applicable=n[4], errors=n[5])
        if runs:
            ids = [a.run_id for a in runs.values()]
            cur.execute("SELECT run_id, check_id, severity, status FROM audit_results"  # noqa: S608 - placeholders only
                        f" WHERE run_id IN ({', '.join(['%s'] * len(ids))}) AND status IN ('fail', 'error')"
                        " ORDER BY check_id", ids)
            by_run = {a.run_id: a for a in runs.values()}
            for run_id, check_id, severity, status in cur.fetchall():
                by_run[run_id].problems.append((check_id, severity, status))
        return list(runs.values())

    return db.run(work, "reading the last audit runs")
