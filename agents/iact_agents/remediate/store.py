"""Remediation's SQL: the health results it acts on (``health_checks``), its decisions (``remediations``,
migration 0016), the budgets counted from them, and the cluster lock (``GET_LOCK``).

Times are naive UTC ``DATETIME(6)`` values computed here, as the health agent writes them. Tested against the
real MariaDB in ``agents/tests/integration/remediate``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql

from .. import storable
from ..health.models import CheckResult, Status
from .actions import Trigger
from .decide import Attempts, JobRun, Outcome, PeerReport, nodes_of

LOCK_NAME = "remediate:cassandra"
"""Prefixed with the database name (``GET_LOCK`` names are server-wide)."""


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _detail(raw: Any) -> dict[str, Any]:
    """A stored ``detail`` JSON (any bytes: total) as a dict; what is not an object becomes empty."""
    if not isinstance(raw, str | bytes):
        return {}
    try:
        doc = storable.loads(raw)
    except ValueError:
        return {}
    return dict(doc) if isinstance(doc, dict) else {}


def _status(raw: Any) -> Status:
    try:
        return Status(str(raw))
    except ValueError:
        return Status.UNKNOWN


@dataclass(frozen=True)
class Decided:
    """One row of ``remediations`` as the report shows it."""

    id: int
    decided_at: datetime
    host: str
    action: str
    target: str
    outcome: str
    guardrail: str | None
    dry_run: bool
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "decided_at": self.decided_at.isoformat(), "host": self.host, "action": self.action,
                "target": self.target, "outcome": self.outcome, "guardrail": self.guardrail,
                "dry_run": self.dry_run, "summary": self.summary}


class RemediationStore:
    def __init__(self, conn: pymysql.Connection) -> None:
        self.conn = conn

    # --- what the health agent recorded -------------------------------------------------------------

    def latest_results(self, host: str, triggers: Sequence[Trigger], since: datetime) -> list[CheckResult]:
        """The newest result of each trigger's key on ``host``, when it was recorded at or after ``since``
        (``detail["checked_at"]``: when, an aware datetime); a ``*`` trigger: of each check of its component."""
        found = []
        with self.conn.cursor() as cur:
            for trigger in triggers:
                if trigger.check_name == "*":
                    cur.execute(
                        "SELECT check_name, status, detail, checked_at FROM health_checks"
                        " WHERE component = %s AND host = %s AND checked_at >= %s"
                        " ORDER BY checked_at DESC, id DESC LIMIT 1000",
                        (trigger.component, host, _naive_utc(since)),
                    )
                    rows = list(cur.fetchall())
                else:
                    cur.execute(
                        "SELECT check_name, status, detail, checked_at FROM health_checks"
                        " WHERE component = %s AND check_name = %s AND host = %s"
                        " ORDER BY checked_at DESC, id DESC LIMIT 1",
                        (trigger.component, trigger.check_name, host),
                    )
                    rows = list(cur.fetchall())
                names: set[str] = set()
                for row in rows:
                    if str(row[0]) in names or _aware(row[3]) < since:
                        continue
                    names.add(str(row[0]))
                    detail = _detail(row[2])
                    summary = str(detail.pop("summary", ""))
                    detail["checked_at"] = _aware(row[3])
                    found.append(CheckResult(trigger.component, str(row[0]), host, _status(row[1]), summary,
                                             None, detail))
        return found

    def series(self, host: str, component: str, check_name: str, since: datetime) -> list[tuple[datetime, str,
                                                                                                 dict[str, Any]]]:
        """Every result of one check on ``host`` recorded at or after ``since``, oldest first:
        ``(checked_at, status, detail)``."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT checked_at, status, detail FROM health_checks"
                " WHERE component = %s AND check_name = %s AND host = %s AND checked_at >= %s"
                " ORDER BY checked_at, id LIMIT 20000",
                (component, check_name, host, _naive_utc(since)),
            )
            rows = cur.fetchall()
        return [(_aware(r[0]), str(r[1]), _detail(r[2])) for r in rows]

    def job_runs(self, host: str, job: str, since: datetime | None = None, limit: int = 1) -> list[JobRun]:
        """The newest ``job_runs`` rows of ``job`` on ``host`` (started at or after ``since``), newest first."""
        query = ("SELECT id, started_at, finished_at, status, exit_code, message FROM job_runs"
                 " WHERE job_name = %s AND host = %s")
        args: list[Any] = [job, host]
        if since is not None:
            query += " AND started_at >= %s"
            args.append(_naive_utc(since))
        query += " ORDER BY started_at DESC, id DESC LIMIT %s"
        args.append(limit)
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            rows = cur.fetchall()
        return [JobRun(int(r[0]), _aware(r[1]), None if r[2] is None else _aware(r[2]), str(r[3]),
                       None if r[4] is None else int(r[4]), storable.clean_text(str(r[5] or ""))[:300])
                for r in rows]

    def peer_reports(self, peers: Sequence[str], since: datetime, now: datetime) -> dict[str, PeerReport | None]:
        """The newest ``cassandra:nodes_up`` of each peer host recorded at or after ``since`` (None: none)."""
        reports: dict[str, PeerReport | None] = {}
        with self.conn.cursor() as cur:
            for peer in peers:
                cur.execute(
                    "SELECT status, detail, checked_at FROM health_checks"
                    " WHERE component = 'cassandra' AND check_name = 'nodes_up' AND host = %s AND checked_at >= %s"
                    " ORDER BY checked_at DESC, id DESC LIMIT 1",
                    (peer, _naive_utc(since)),
                )
                row = cur.fetchone()
                if row is None:
                    reports[peer] = None
                    continue
                detail = _detail(row[1])
                age = max(0.0, (now - _aware(row[2])).total_seconds())
                reports[peer] = PeerReport(peer, str(row[0]), age, nodes_of(detail), str(detail.get("summary", "")))
        return reports

    # --- decisions ---------------------------------------------------------------------------------------

    def attempts(self, host: str, action: str, now: datetime) -> Attempts:
        """Acted or failed decisions of ``action`` on ``host`` in the last hour and the last 24 hours."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT COALESCE(SUM(decided_at > %s), 0), COUNT(*) FROM remediations"
                " WHERE host = %s AND action = %s AND outcome IN ('acted', 'failed') AND decided_at > %s",
                (_naive_utc(now - timedelta(hours=1)), host, action, _naive_utc(now - timedelta(hours=24))),
            )
            row = cur.fetchone()
        return Attempts(int(row[0]), int(row[1])) if row else Attempts(0, 0)

    def decided_since(self, host: str, action: str, since: datetime) -> bool:
        """Whether ``action`` acted or dry-ran on ``host`` at or after ``since`` (skips and failures do not count)."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM remediations WHERE host = %s AND action = %s"
                        " AND outcome IN ('acted', 'dry_run') AND decided_at >= %s", (host, action, _naive_utc(since)))
            row = cur.fetchone()
        return bool(row and int(row[0]) > 0)

    def last_decided_at(self, host: str, action: str) -> datetime | None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT MAX(decided_at) FROM remediations WHERE host = %s AND action = %s", (host, action))
            row = cur.fetchone()
        return _aware(row[0]) if row and row[0] is not None else None

    def record(self, *, decided_at: datetime, host: str, action: str, target: str, trigger_key: str,
               outcome: Outcome, guardrail: str | None, dry_run: bool, summary: str, command: str | None,
               duration_ms: int | None, evidence: dict[str, Any]) -> int:
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO remediations (decided_at, host, action, target, trigger_key, outcome, guardrail, dry_run,"
                " summary, command, duration_ms, evidence) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (_naive_utc(decided_at), host[:255], action[:64], target[:128], trigger_key[:191], outcome.value,
                 guardrail, int(dry_run), storable.clean_text(summary)[:512],
                 None if command is None else command[:512], duration_ms,
                 json.dumps(evidence, default=str, sort_keys=True)),
            )
            return int(cur.lastrowid)

    def recent(self, since: datetime, host: str | None = None, limit: int = 200) -> list[Decided]:
        query = ("SELECT id, decided_at, host, action, target, outcome, guardrail, dry_run, summary FROM remediations"
                 " WHERE decided_at >= %s")
        args: list[Any] = [_naive_utc(since)]
        if host is not None:
            query += " AND host = %s"
            args.append(host)
        query += " ORDER BY decided_at DESC, id DESC LIMIT %s"
        args.append(limit)
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            rows = cur.fetchall()
        return [Decided(int(r[0]), _aware(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]),
                        None if r[6] is None else str(r[6]), bool(r[7]), str(r[8])) for r in rows]

    # --- the cluster lock ------------------------------------------------------------------------------

    def try_lock(self, wait_s: int = 0) -> bool:
        """Take the cluster lock for this connection's session (False: another session holds it). It is
        released by :meth:`unlock` or when the connection ends, so a crashed run cannot keep it."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(CONCAT(DATABASE(), '.', %s), %s)", (LOCK_NAME, wait_s))
            row = cur.fetchone()
        return bool(row and row[0] == 1)

    def unlock(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(CONCAT(DATABASE(), '.', %s))", (LOCK_NAME,))
