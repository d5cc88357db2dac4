"""What the operations pages and the API read: health results, alerts, job runs, backups, DR drills,
data-quality results, the fleet audit and remediation decisions, straight from the tables the agents write
(times are naive UTC there)."""

# ruff: noqa: S608  (SQL text is built only from this module's constants; values are bound)
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from iact_agents.audit.store import HostAudit
from iact_agents.audit.store import latest_runs as _latest_audit_runs
from iact_agents.storable import InvalidJson, loads

from ..core import audit
from ..mysqldb import agents_database
from .models import Alert, AlertAcknowledgement

BACKUP_JOBS = ("backup", "backup_binlogs")
HEALTH_DAYS = 7
"""Checks that have not run for this long are left off the health page (a removed check or host)."""


def _aware(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    try:
        return loads(value)
    except InvalidJson:
        return {"raw": str(value)[:500]}


def _rows(sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
    with connection.cursor() as cur:
        cur.execute(sql, args)
        names = [c[0] for c in cur.description]
        return [{n: _aware(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


# --- health ---------------------------------------------------------------------------------------------

def latest_health(host: str | None = None) -> list[dict[str, Any]]:
    """The newest result of every (host, component, check) seen in the last HEALTH_DAYS days."""
    where = "WHERE checked_at >= %s"
    args: list[Any] = [datetime.now(UTC).replace(tzinfo=None) - timedelta(days=HEALTH_DAYS)]
    if host is not None:
        where += " AND host = %s"
        args.append(host)
    rows = _rows(
        "SELECT h.id, h.checked_at, h.host, h.component, h.check_name, h.status, h.latency_ms, h.detail "
        "FROM health_checks h JOIN (SELECT MAX(id) AS id FROM health_checks "
        f"{where} GROUP BY host, component, check_name) newest ON newest.id = h.id "
        "ORDER BY h.host, h.component, h.check_name", args)
    for row in rows:
        detail = _json(row.pop("detail"))
        row["summary"] = str(detail.get("summary", "")) if isinstance(detail, dict) else ""
    return rows


def health_hosts() -> list[str]:
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=HEALTH_DAYS)
    return [r["host"] for r in _rows("SELECT DISTINCT host FROM health_checks WHERE checked_at >= %s ORDER BY host",
                                     [since])]


# --- alerts ----------------------------------------------------------------------------------------------

def open_alerts() -> list[dict[str, Any]]:
    rows = _rows(
        "SELECT a.id, a.alert_key, a.component, a.host, a.severity, a.status, a.summary, a.occurrences, "
        "a.first_seen_at, a.last_seen_at, a.notified_at, "
        "(SELECT k.acknowledged_by FROM alert_acknowledgements k WHERE k.alert_id = a.id "
        " ORDER BY k.acknowledged_at DESC, k.id DESC LIMIT 1) AS acknowledged_by, "
        "(SELECT MAX(k.acknowledged_at) FROM alert_acknowledgements k WHERE k.alert_id = a.id) AS acknowledged_at "
        "FROM alerts a WHERE a.status <> 'resolved' "
        "ORDER BY a.status = 'acknowledged', a.severity = 'warning', a.last_seen_at DESC")
    return rows


def recent_resolved_alerts(days: int = 7, limit: int = 100) -> list[dict[str, Any]]:
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
    return _rows(
        "SELECT id, alert_key, component, host, severity, status, summary, occurrences, first_seen_at, "
        "last_seen_at, resolved_at FROM alerts WHERE status = 'resolved' AND resolved_at >= %s "
        "ORDER BY resolved_at DESC LIMIT %s", [since, limit])


class AckRefused(Exception):
    """The alert cannot be acknowledged (unknown, already acknowledged, or resolved)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def acknowledge(alert_id: int, actor: str, note: str, request: Any = None) -> AlertAcknowledgement:
    """Mark an open alert acknowledged and record who, when, at which severity and why, in one transaction
    with its audit event. The health agent reads ``alerts.status``: while it is ``acknowledged`` no reminder
    is sent (see web/README.md, "Alert acknowledgements")."""
    with transaction.atomic():
        # The conditional UPDATE decides (and locks the row until the end of the transaction): of two
        # people acknowledging at once, one succeeds and the other gets 409; a resolved alert stays resolved.
        if not Alert.objects.filter(pk=alert_id, status="open").update(status="acknowledged"):
            found = Alert.objects.filter(pk=alert_id).values_list("status", flat=True).first()
            if found is None:
                raise AckRefused(404, f"no alert {alert_id}")
            raise AckRefused(409, f"alert {alert_id} is {found}, not open")
        alert = Alert.objects.get(pk=alert_id)
        ack = AlertAcknowledgement.objects.create(
            alert_id=alert.pk, alert_key=alert.alert_key, severity=alert.severity, acknowledged_by=actor[:150],
            note=note[:512])
        audit.record("alert_ack", request=request, actor=actor, object_type="alert", object_id=str(alert_id),
                     detail={"alert_key": alert.alert_key, "severity": alert.severity, "note": note[:512]},
                     strict=True)
    return ack


# --- jobs, backups, drills -------------------------------------------------------------------------------

def last_job_runs() -> list[dict[str, Any]]:
    """The newest run of every (job, host), with the newest successful one."""
    return _rows(
        "SELECT j.id, j.job_name, j.host, j.started_at, j.finished_at, j.status, j.exit_code, j.output_bytes, "
        "j.message, (SELECT MAX(COALESCE(s.finished_at, s.started_at)) FROM job_runs s "
        " WHERE s.job_name = j.job_name AND s.host = j.host AND s.status = 'success') AS last_success_at "
        "FROM job_runs j JOIN (SELECT MAX(id) AS id FROM job_runs GROUP BY job_name, host) newest "
        "ON newest.id = j.id ORDER BY j.job_name, j.host")


def _equal(**columns: str | None) -> tuple[str, list[Any]]:
    """A WHERE condition of ``column = value`` for the columns given a value (names are this module's own)."""
    where, args = ["1 = 1"], []
    for column, value in columns.items():
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    return " AND ".join(where), args


def _job_filter(job: str | None, host: str | None, status: str | None) -> tuple[str, list[Any]]:
    return _equal(job_name=job, host=host, status=status)


def count_job_runs(job: str | None = None, host: str | None = None, status: str | None = None) -> int:
    where, args = _job_filter(job, host, status)
    return int(_rows(f"SELECT COUNT(*) AS n FROM job_runs WHERE {where}", args)[0]["n"])


def job_runs(job: str | None = None, host: str | None = None, status: str | None = None,
             limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    where, args = _job_filter(job, host, status)
    return _rows(
        "SELECT id, job_name, host, started_at, finished_at, status, exit_code, output_bytes, message "
        f"FROM job_runs WHERE {where} ORDER BY started_at DESC, id DESC LIMIT %s OFFSET %s",
        [*args, limit, offset])


def backups(limit: int = 50) -> list[dict[str, Any]]:
    marks = ", ".join(["%s"] * len(BACKUP_JOBS))
    return _rows(
        "SELECT id, job_name, host, started_at, finished_at, status, exit_code, output_bytes, message "
        f"FROM job_runs WHERE job_name IN ({marks}) ORDER BY started_at DESC, id DESC LIMIT %s",
        [*BACKUP_JOBS, limit])


def recovery_point(now: datetime | None = None) -> list[dict[str, Any]]:
    """Per host: the newest successful full backup and binlog copy, and the data at risk now (the RPO if
    the host were lost this moment: time since the newest successful copy of either kind)."""
    moment = now or datetime.now(UTC)
    marks = ", ".join(["%s"] * len(BACKUP_JOBS))
    rows = _rows(
        "SELECT host, MAX(CASE WHEN job_name = 'backup' THEN COALESCE(finished_at, started_at) END) AS last_full, "
        "MAX(CASE WHEN job_name = 'backup_binlogs' THEN COALESCE(finished_at, started_at) END) AS last_binlogs "
        f"FROM job_runs WHERE status = 'success' AND job_name IN ({marks}) GROUP BY host ORDER BY host",
        list(BACKUP_JOBS))
    for row in rows:
        newest = max((t for t in (row["last_full"], row["last_binlogs"]) if t is not None), default=None)
        row["exposure_s"] = None if newest is None else round((moment - newest).total_seconds())
    return rows


def count_drills() -> int:
    return int(_rows("SELECT COUNT(*) AS n FROM dr_drills")[0]["n"])


def drills(limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    rows = _rows(
        "SELECT id, drill_id, started_at, finished_at, status, rpo_mysql_s, rto_total_s, report "
        "FROM dr_drills ORDER BY started_at DESC, id DESC LIMIT %s OFFSET %s", [limit, offset])
    for row in rows:
        report = _json(row.pop("report"))
        row["error"] = report.get("error") if isinstance(report, dict) else None
        for key in ("rpo_mysql_s", "rto_total_s"):
            row[key] = None if row[key] is None else float(row[key])
    return rows


# --- quality ----------------------------------------------------------------------------------------------

def latest_quality() -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The score row and the check rows of the newest quality run."""
    newest = _rows("SELECT run_id, checked_at FROM quality_results WHERE check_name = 'score' "
                   "ORDER BY checked_at DESC, id DESC LIMIT 1")
    if not newest:
        return None, []
    rows = _rows(
        "SELECT id, run_id, checked_at, dataset, check_name, category, status, observed_value, threshold, "
        "failing_rows, evaluated_rows, detail FROM quality_results WHERE run_id = %s ORDER BY category, check_name",
        [newest[0]["run_id"]])
    score = None
    checks = []
    for row in rows:
        row["detail"] = _json(row["detail"])
        if row["check_name"] == "score":
            score = row
        else:
            checks.append(row)
    return score, checks


def quality_history(limit: int = 60) -> list[dict[str, Any]]:
    return _rows("SELECT checked_at, observed_value AS score, status FROM quality_results "
                 "WHERE check_name = 'score' ORDER BY checked_at DESC, id DESC LIMIT %s", [limit])


def detail_text(value: Any, limit: int = 300) -> str:
    if isinstance(value, dict):
        return (str(value.get("description") or "") or json.dumps(value, default=str))[:limit]
    return "" if value is None else str(value)[:limit]


# --- remediation --------------------------------------------------------------------------------------

REMEDIATION_OUTCOMES = ("acted", "failed", "dry_run", "skipped")
"""The outcomes of a decision (migration 0016's CHECK constraint)."""


def remediations(host: str | None = None, outcome: str | None = None, limit: int = 50,
                 offset: int = 0) -> list[dict[str, Any]]:
    """Decisions of ``iact-agent remediate`` (migration 0016), newest first, with a one-line summary of the
    evidence each was taken on."""
    where, args = _equal(host=host, outcome=outcome)
    rows = _rows(
        "SELECT id, decided_at, host, action, target, trigger_key, outcome, guardrail, dry_run, summary, command, "
        f"duration_ms, evidence FROM remediations WHERE {where} ORDER BY decided_at DESC, id DESC LIMIT %s OFFSET %s",
        [*args, limit, offset])
    for row in rows:
        row["evidence_summary"] = evidence_summary(_json(row.pop("evidence")))
        row["dry_run"] = bool(row["dry_run"])
    return rows


def _text(value: Any, limit: int = 120) -> str:
    return " ".join(str(value).split())[:limit]


def _number(value: Any) -> str | None:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _triggers_text(triggers: Any) -> str | None:
    fired = []
    for t in triggers if isinstance(triggers, list) else []:
        if isinstance(t, dict):
            key = f"{_text(t.get('component', '?'), 32)}:{_text(t.get('check', '?'), 32)}"
            text = f"{key} {_text(t.get('status', '?'), 16)}"
            fired.append(text + (f" ({_text(t['summary'])})" if t.get("summary") else ""))
    return "fired by " + ", ".join(fired) if fired else None


def _attempts_text(attempts: Any, budget: Any) -> str | None:
    if not isinstance(attempts, dict):
        return None
    hour, day = _number(attempts.get("last_hour")), _number(attempts.get("last_day"))
    if hour is None or day is None:
        return None
    text = f"attempts {hour} in the last hour, {day} in the day"
    if isinstance(budget, dict):
        per_hour, per_day = _number(budget.get("per_hour")), _number(budget.get("per_day"))
        if per_hour is not None and per_day is not None:
            text += f" (budget {per_hour}/h, {per_day}/day)"
    return text


def _peers_text(peers: Any) -> str | None:
    if not isinstance(peers, dict) or not peers:
        return None
    return "peers " + ", ".join(
        f"{_text(name, 64)} {_text(report.get('status', '?'), 16) if isinstance(report, dict) else 'no report'}"
        for name, report in peers.items())


def evidence_summary(evidence: Any, limit: int = 400) -> str:
    """One line of what a decision was taken on: the health results that fired it, the attempts counted
    against its budget, the peers a cluster action looked at, and what acting left behind. Total: any JSON
    value (the column is the agent's, any shape) gives a string; unknown shapes give the raw text, cut."""
    if not isinstance(evidence, dict):
        return "" if evidence is None else _text(json.dumps(evidence, default=str), limit)
    waited = _number(evidence.get("waited_s"))
    parts = [
        _triggers_text(evidence.get("triggers")),
        _attempts_text(evidence.get("attempts"), evidence.get("budget")),
        _peers_text(evidence.get("peers")),
        f"command error: {_text(evidence['command_error'])}" if evidence.get("command_error") else None,
        None if waited is None else f"waited {waited} s",
    ]
    found = [p for p in parts if p is not None]
    if not found:
        return _text(json.dumps(evidence, default=str, sort_keys=True), limit)
    return "; ".join(found)[:limit]


# --- audit ----------------------------------------------------------------------------------------------

def latest_audits() -> list[HostAudit]:
    """The last compliance and security audit of every host: the query the DORA report uses
    (:func:`iact_agents.audit.store.latest_runs`), over the web's own MySQL account."""
    db = agents_database()
    try:
        return _latest_audit_runs(db)
    finally:
        db.close()
