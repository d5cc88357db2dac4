"""The health agent's SQL: results into ``health_checks``, alerts in ``alerts``, attempts in
``alert_notifications`` (migration 0010), last successful job runs from ``job_runs``.

Times are naive UTC ``DATETIME(6)`` values computed here, as ``iact-agent job run`` writes them, so that
ages compare within one clock. Tested against the real MariaDB in ``agents/tests/integration/health``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pymysql
import pymysql.cursors

from .alerting import Event, OpenAlert, Severity
from .channels import ChannelResult
from .checks import LastAudit
from .models import CheckResult, Status

ER_DUP_ENTRY = 1062


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _json(detail: Any) -> str:
    return json.dumps(detail, default=str, sort_keys=True)


class MySQLStore:
    def __init__(self, conn: pymysql.Connection) -> None:
        self.conn = conn

    # --- results ---------------------------------------------------------------------------------

    def record_results(self, results: Iterable[CheckResult], checked_at: datetime) -> int:
        rows = [
            (_naive_utc(checked_at), r.host[:255], r.component[:64], r.check_name[:128], r.status.value,
             r.latency_ms, _json(dict(r.detail) | {"summary": r.summary}))
            for r in results
        ]
        if not rows:
            return 0
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO health_checks (checked_at, host, component, check_name, status, latency_ms, detail)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        return len(rows)

    def last_successes(self, jobs: Mapping[str, str | None]) -> dict[str, datetime | None]:
        """Finish time of the last successful run of each job (None: never); a job mapped to a host name
        counts only that host's runs."""
        found: dict[str, datetime | None] = {}
        with self.conn.cursor() as cur:
            for name, host in jobs.items():
                if host is None:
                    cur.execute(
                        "SELECT MAX(COALESCE(finished_at, started_at)) FROM job_runs"
                        " WHERE job_name = %s AND status = 'success'",
                        (name,),
                    )
                else:
                    cur.execute(
                        "SELECT MAX(COALESCE(finished_at, started_at)) FROM job_runs"
                        " WHERE job_name = %s AND host = %s AND status = 'success'",
                        (name, host),
                    )
                row = cur.fetchone()
                found[name] = _aware(row[0]) if row else None
        return found

    def last_audit(self, host: str) -> LastAudit | None:
        """The newest ``audit_runs`` row of ``host`` (migration 0015), None when it was never audited."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT finished_at, outcome, failed, failed_high, errors FROM audit_runs WHERE host = %s"
                " ORDER BY finished_at DESC, id DESC LIMIT 1",
                (host,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        finished = _aware(row[0])
        assert finished is not None
        return LastAudit(finished, str(row[1]), int(row[2]), int(row[3]), int(row[4]))

    # --- alert store (see alerting.AlertStore) ---------------------------------------------------

    def recent(self, result: CheckResult, limit: int) -> list[tuple[Status, datetime]]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT status, checked_at FROM health_checks WHERE component = %s AND check_name = %s AND host = %s"
                " ORDER BY checked_at DESC, id DESC LIMIT %s",
                (result.component, result.check_name, result.host, limit),
            )
            rows = cur.fetchall()
        out = []
        for status, checked_at in rows:
            aware = _aware(checked_at)
            assert aware is not None
            out.append((Status(status), aware))
        return out

    def open_alert(self, key: str) -> OpenAlert | None:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT id, alert_key, severity, status, first_seen_at, notified_at, occurrences FROM alerts"
                " WHERE open_key = %s",
                (key,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        first_seen = _aware(row[4])
        assert first_seen is not None
        return OpenAlert(id=int(row[0]), alert_key=str(row[1]), severity=row[2], status=row[3],
                         first_seen_at=first_seen, notified_at=_aware(row[5]), occurrences=int(row[6]))

    def create_alert(self, result: CheckResult, severity: Severity, first_seen_at: datetime, occurrences: int,
                     now: datetime) -> OpenAlert | None:
        try:
            with self.conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO alerts (alert_key, component, host, severity, status, summary, detail, occurrences,"
                    " first_seen_at, last_seen_at) VALUES (%s, %s, %s, %s, 'open', %s, %s, %s, %s, %s)",
                    (result.key, result.component[:64], result.host[:255], severity, result.summary[:512],
                     _json({"check": result.check_name, "status": result.status.value, **dict(result.detail)}),
                     occurrences, _naive_utc(first_seen_at), _naive_utc(now)),
                )
                alert_id = int(cur.lastrowid)
        except pymysql.err.IntegrityError as exc:
            if exc.args and exc.args[0] == ER_DUP_ENTRY:
                return None
            raise
        return OpenAlert(id=alert_id, alert_key=result.key, severity=severity, status="open",
                         first_seen_at=first_seen_at, notified_at=None, occurrences=occurrences)

    def touch_alert(self, alert_id: int, result: CheckResult, severity: Severity, now: datetime) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE alerts SET occurrences = occurrences + 1, last_seen_at = %s, severity = %s, summary = %s"
                " WHERE id = %s",
                (_naive_utc(now), severity, result.summary[:512], alert_id),
            )

    def mark_notified(self, alert_id: int, now: datetime) -> None:
        with self.conn.cursor() as cur:
            cur.execute("UPDATE alerts SET notified_at = %s WHERE id = %s", (_naive_utc(now), alert_id))

    def resolve_alert(self, alert_id: int, result: CheckResult, now: datetime, duration_s: float) -> bool:
        with self.conn.cursor() as cur:
            changed = cur.execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = %s, last_seen_at = %s,"
                " detail = JSON_SET(COALESCE(detail, JSON_OBJECT()), '$.duration_s', %s, '$.resolved_by', %s)"
                " WHERE id = %s AND status <> 'resolved'",
                (_naive_utc(now), _naive_utc(now), round(duration_s, 3), result.summary[:512], alert_id),
            )
        return bool(changed)

    def record_notification(self, alert_id: int, alert_key: str, event: Event, outcome: ChannelResult,
                            now: datetime) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO alert_notifications (alert_id, alert_key, event, channel, success, reason, attempted_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (alert_id, alert_key, event, outcome.channel, int(outcome.ok), outcome.reason[:512] or None,
                 _naive_utc(now)),
            )
