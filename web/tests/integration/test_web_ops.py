"""Operations pages and API on real MariaDB: health per host, job runs, and an alert acknowledged on the page,
recorded, audited, and honoured by the health agent's own alert logic (its store and state machine)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import pytest
from django.test import Client
from iact_agents.health.alerting import decide
from iact_agents.health.models import CheckResult, Status
from iact_agents.health.store import MySQLStore
from iact_web.core.models import AuditEvent
from iact_web.ops.models import AlertAcknowledgement
from webtest_helpers import Token

pytestmark = pytest.mark.integration


def _result(host: str, status: Status) -> CheckResult:
    return CheckResult("disk", "free", host, status, f"disk is {status.value}", 4, {"free_pct": 9})


def test_health_and_jobs_of_a_host(health_db: pymysql.Connection, host: str, api_token: Token,
                                   browser: Client) -> None:
    store = MySQLStore(health_db)
    now = datetime.now(UTC)
    store.record_results([_result(host, Status.OK)], now - timedelta(minutes=2))
    store.record_results([_result(host, Status.CRITICAL)], now)
    with health_db.cursor() as cur:
        cur.execute("INSERT INTO job_runs (job_name, host, started_at, finished_at, status, exit_code, message) "
                    "VALUES ('backup', %s, %s, %s, 'failure', 3, 'disk full')",
                    (host, (now - timedelta(hours=1)).replace(tzinfo=None), now.replace(tzinfo=None)))
    health_db.commit()
    rows = api_token.http().get(f"/api/v1/health?host={host}").json()["results"]
    assert [(r["component"], r["check_name"], r["status"]) for r in rows] == [("disk", "free", "critical")]
    page = browser.get(f"/ops/health/?host={host}").content.decode()
    assert "disk is critical" in page and "disk is ok" not in page  # the newest result only
    runs = api_token.http().get(f"/api/v1/jobs?host={host}&status=failure").json()
    assert runs["count"] == 1 and runs["results"][0]["message"] == "disk full"
    exported = browser.get(f"/ops/jobs/?host={host}&export=runs")
    assert [r["message"] for r in csv.DictReader(io.StringIO(exported.content.decode()))] == ["disk full"]
    recovery = browser.get("/ops/recovery/?export=recovery_point")
    assert recovery.status_code == 200 and recovery["Content-Type"].startswith("text/csv")


def _open_alert(health_db: pymysql.Connection, host: str) -> Any:
    store = MySQLStore(health_db)
    now = datetime.now(UTC)
    alert = store.create_alert(_result(host, Status.WARNING), "warning", now - timedelta(minutes=15), 3, now)
    assert alert is not None
    store.mark_notified(alert.id, now - timedelta(hours=2))  # notified long ago: a reminder is due
    health_db.commit()
    return alert


def test_acknowledge_on_the_page_stops_the_health_agents_reminders(health_db: pymysql.Connection, host: str,
                                                                   browser: Client, principal: Any) -> None:
    alert = _open_alert(health_db, host)
    store = MySQLStore(health_db)
    now = datetime.now(UTC)
    recent = [(Status.WARNING, now)] * 3

    def agent_decision() -> Any:
        health_db.commit()  # a fresh snapshot, as the agent's next run has
        current = store.open_alert(alert.alert_key)
        assert current is not None
        return decide(recent, current, threshold=3, reminder_interval=timedelta(minutes=60),
                      alert_on_unknown=False, now=now)

    assert agent_decision().notify == "reminder"  # before: the agent would remind

    page = browser.get("/ops/alerts/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert csrf and f"/ops/alerts/{alert.id}/acknowledge/" in page
    done = browser.post(f"/ops/alerts/{alert.id}/acknowledge/", {"csrfmiddlewaretoken": csrf.group(1),
                                                                 "note": "replacing the disk"})
    assert done.status_code == 302

    decision = agent_decision()
    assert decision.action == "update" and decision.notify is None  # after: no reminder
    ack = AlertAcknowledgement.objects.get(alert_id=alert.id)
    assert (ack.acknowledged_by, ack.note, ack.severity) == (principal.user.username, "replacing the disk", "warning")
    assert AuditEvent.objects.filter(event="alert_ack", object_id=str(alert.id),
                                     actor=principal.user.username).exists()
    # Once is enough: a second acknowledgement is refused, the record stays single.
    again = browser.get("/ops/alerts/").content.decode()
    csrf2 = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', again)
    assert csrf2
    browser.post(f"/ops/alerts/{alert.id}/acknowledge/", {"csrfmiddlewaretoken": csrf2.group(1)})
    assert AlertAcknowledgement.objects.filter(alert_id=alert.id).count() == 1
    # Recovery still resolves an acknowledged alert.
    assert decide([(Status.OK, now)], store.open_alert(alert.alert_key), threshold=3,
                  reminder_interval=timedelta(minutes=60), alert_on_unknown=False, now=now).action == "resolve"


def test_acknowledge_through_the_api(health_db: pymysql.Connection, host: str, api_token: Token) -> None:
    alert = _open_alert(health_db, host)
    http = api_token.http()
    listed = http.get("/api/v1/alerts").json()["results"]
    assert any(a["id"] == alert.id and a["status"] == "open" for a in listed)
    made = http.post(f"/api/v1/alerts/{alert.id}/acknowledge", data={"note": "on it"},
                     content_type="application/json")
    assert made.status_code == 201
    assert made.json()["acknowledged_by"] == f"client:{api_token.client.name}"
    second = http.post(f"/api/v1/alerts/{alert.id}/acknowledge", data={}, content_type="application/json")
    assert second.status_code == 409 and second.json()["status"] == 409
    listed = http.get("/api/v1/alerts").json()["results"]
    mine = next(a for a in listed if a["id"] == alert.id)
    assert mine["status"] == "acknowledged" and mine["acknowledged_by"] == f"client:{api_token.client.name}"
    assert http.post("/api/v1/alerts/999999999/acknowledge", data={}, content_type="application/json"
                     ).status_code == 400


def test_live_endpoint_counts(health_db: pymysql.Connection, host: str, api_token: Token) -> None:
    before = api_token.http().get("/api/v1/live").json()
    _open_alert(health_db, host)
    after = api_token.http().get("/api/v1/live").json()
    assert after["open_alerts"] == before["open_alerts"] + 1
    assert set(after) >= {"open_alerts", "acknowledged_alerts", "critical_alerts", "health_problems",
                          "failed_jobs_24h", "updated_at"}


def test_the_audit_page_shows_the_last_audit_of_every_host(dora_db: pymysql.Connection, browser: Client) -> None:
    """The deployment audits every host (roles/audit): the page and its CSV show each host's newest run with
    its counts, and names every check of that run that failed or could not be judged."""
    with dora_db.cursor() as cur:
        cur.execute("SELECT run_id, host, outcome, checks, passed, failed FROM audit_runs "
                    "ORDER BY host, finished_at DESC, id DESC")
        newest: dict[str, tuple[Any, ...]] = {}
        for row in cur.fetchall():
            newest.setdefault(row[1], row)
        cur.execute("SELECT run_id, check_id FROM audit_results WHERE status IN ('fail', 'error')")
        problems: dict[str, set[str]] = {}
        for run_id, check_id in cur.fetchall():
            problems.setdefault(run_id, set()).add(check_id)
    assert newest, "no audit recorded: the audit role audits every host when it deploys"
    page = browser.get("/ops/audit/")
    assert page.status_code == 200
    assert f"Hosts passed: {sum(1 for r in newest.values() if r[2] == 'passed')}" in page.content.decode()
    exported = browser.get("/ops/audit/?export=audits")
    rows = {r["host"]: r for r in csv.DictReader(io.StringIO(exported.content.decode()))}
    assert set(rows) == set(newest)
    for host, (run_id, _, outcome, checks, passed, failed) in newest.items():
        row = rows[host]
        assert (row["run_id"], row["outcome"], row["checks"], row["passed"], row["failed"]) == (
            run_id, outcome, str(checks), str(passed), str(failed)), host
        named = set(re.findall(r"(\S+) \(", row["problems"]))  # "<check id> (<severity>[, not judged])"
        assert named == problems.get(run_id, set()), host
