"""The health agent against the real MariaDB: results recorded, the alert state machine in ``alerts``
(open after N failures, no duplicate while open, reminder, resolve with the duration), every notification
attempt in ``alert_notifications``. A failing check is a disk threshold of 0 %; recovery is 100 %."""

from __future__ import annotations

import json
import mailbox
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest
from iact_agents import cli
from iact_agents.errors import InputError
from iact_agents.health import config as health_config
from iact_agents.health.models import CheckResult, Status
from iact_agents.health.runner import run_health
from iact_agents.health.store import MySQLStore
from iact_agents.retention import parse_keep, prune

pytestmark = pytest.mark.integration


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, mysql_defaults: Path, host: str, *, failing: bool, n: int = 3,
                 reminder_min: float = 240) -> Path:
    threshold = 0 if failing else 100
    path = tmp_path / f"health-{'failing' if failing else 'ok'}.toml"
    path.write_text(
        f'host = "{host}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[mysql]\ndefaults_file = "{mysql_defaults}"\n'
        f"[disk]\nwarn_percent = {threshold}\ncrit_percent = {threshold}\n"
        f'[[disk.paths]]\npath = "{tmp_path}"\n'
        "[time_sync]\nenabled = false\n"
        f"[alerting]\nconsecutive_failures = {n}\nreminder_interval_min = {reminder_min}\n"
        "[alerting.syslog]\nenabled = false\n"
        f'[alerting.mailbox]\nenabled = true\npath = "{tmp_path / "mbox"}"\n'
        # A webhook nobody answers: its failures are recorded and never stop the mailbox.
        f'[alerting.webhook]\nenabled = true\nurl = "http://127.0.0.1:{closed_port()}/hook"\ntimeout_s = 2\n'
    )
    return path


def query(db: pymysql.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def run_cli(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = cli.main(["health", "--config", str(config), "--json"])
    return code, json.loads(capsys.readouterr().out)


def mails(tmp_path: Path) -> list[str]:
    box = tmp_path / "mbox"
    return [str(m["X-IACT-Event"]) for m in mailbox.mbox(str(box))] if box.exists() else []


def test_results_are_recorded_with_the_write_probe(tmp_path: Path, mysql_defaults: Path, db: pymysql.Connection,
                                                   test_host: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, mysql_defaults, test_host, failing=False)
    code, doc = run_cli(config, capsys)
    assert code == 0, doc
    assert doc["recorded"] is True
    rows = query(db, "SELECT component, check_name, status, latency_ms, detail FROM health_checks WHERE host = %s"
                     " ORDER BY id", test_host)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("mysql", "reachable", "ok"),
        ("disk", str(tmp_path), "ok"),
        ("health", "state", "ok"),
        ("mysql", "writable", "ok"),
    ]
    assert rows[0][3] is not None
    assert json.loads(rows[1][4])["used_percent"] >= 0


def test_no_record_writes_nothing(tmp_path: Path, mysql_defaults: Path, db: pymysql.Connection,
                                  test_host: str) -> None:
    config = write_config(tmp_path, mysql_defaults, test_host, failing=True, n=1)
    assert cli.main(["health", "--config", str(config), "--no-record"]) == 2
    assert query(db, "SELECT COUNT(*) FROM health_checks WHERE host = %s", test_host) == [(0,)]
    assert mails(tmp_path) == []


def test_alert_opens_after_n_failures_stays_single_and_resolves(
    tmp_path: Path, mysql_defaults: Path, db: pymysql.Connection, test_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = write_config(tmp_path, mysql_defaults, test_host, failing=True, n=3)
    key = f"disk:{tmp_path}:{test_host}"

    for _ in range(2):
        code, doc = run_cli(failing, capsys)
        assert code == 2 and doc["alerts"] == []
    assert query(db, "SELECT COUNT(*) FROM alerts WHERE alert_key = %s", key) == [(0,)]

    code, doc = run_cli(failing, capsys)
    assert code == 2
    [opened] = doc["alerts"]
    assert (opened["key"], opened["event"]) == (key, "open")
    assert {(c["channel"], c["ok"]) for c in opened["channels"]} == {("mailbox", True), ("webhook", False)}
    assert mails(tmp_path) == ["open"]
    [row] = query(db, "SELECT id, status, severity, occurrences, open_key, notified_at IS NOT NULL FROM alerts"
                      " WHERE alert_key = %s", key)
    alert_id = row[0]
    assert row[1:] == ("open", "critical", 3, key, 1)

    for _ in range(2):  # still failing: no second alert, no second message
        code, doc = run_cli(failing, capsys)
        assert code == 2 and [a["action"] for a in doc["alerts"]] == ["update"]
    assert query(db, "SELECT id, occurrences FROM alerts WHERE alert_key = %s", key) == [(alert_id, 5)]
    assert mails(tmp_path) == ["open"]

    recovered = write_config(tmp_path, mysql_defaults, test_host, failing=False, n=3)
    code, doc = run_cli(recovered, capsys)
    assert code == 0
    assert [(a["key"], a["event"]) for a in doc["alerts"]] == [(key, "resolved")]
    assert mails(tmp_path) == ["open", "resolved"]
    [row] = query(db, "SELECT status, open_key, resolved_at IS NOT NULL,"
                      " JSON_VALUE(detail, '$.duration_s') + 0, TIMESTAMPDIFF(MICROSECOND, first_seen_at, resolved_at)"
                      " FROM alerts WHERE id = %s", alert_id)
    assert row[:3] == ("resolved", None, 1)
    assert row[3] > 0 and row[3] == pytest.approx(row[4] / 1e6, abs=0.01)

    code, doc = run_cli(recovered, capsys)
    assert code == 0 and doc["alerts"] == []
    assert mails(tmp_path) == ["open", "resolved"]

    attempts = query(db, "SELECT event, channel, success, reason IS NOT NULL FROM alert_notifications"
                         " WHERE alert_id = %s ORDER BY id", alert_id)
    assert attempts == [
        ("open", "mailbox", 1, 0),
        ("open", "webhook", 0, 1),
        ("resolved", "mailbox", 1, 0),
        ("resolved", "webhook", 0, 1),
    ]

    for _ in range(3):  # a new run of failures opens a new alert: the old one no longer holds the key
        code, doc = run_cli(failing, capsys)
    assert [a["event"] for a in doc["alerts"]] == ["open"]
    assert query(db, "SELECT status FROM alerts WHERE alert_key = %s ORDER BY id", key) == [("resolved",), ("open",)]


def test_reminder_after_the_interval(tmp_path: Path, mysql_defaults: Path, db: pymysql.Connection,
                                     test_host: str) -> None:
    cfg = health_config.load(write_config(tmp_path, mysql_defaults, test_host, failing=True, n=1, reminder_min=10))
    t0 = datetime.now(UTC)
    events = []
    for minutes in (0, 5, 11, 15, 22):
        report = run_health(cfg, now=t0 + timedelta(minutes=minutes))
        events.append([a.event for a in report.alerts])
    assert events == [["open"], [None], ["reminder"], [None], ["reminder"]]
    assert mails(tmp_path) == ["open", "reminder", "reminder"]
    [(occurrences,)] = query(db, "SELECT occurrences FROM alerts WHERE host = %s AND component = 'disk'", test_host)
    assert occurrences == 5


def test_mysql_down_is_alerted_from_local_state_and_resolved_when_it_answers_again(
        tmp_path: Path, mysql_defaults: Path, db: pymysql.Connection, test_host: str) -> None:
    """The same state folder and mailbox, first with a MySQL nobody answers on, then with the real one."""
    down_cnf = tmp_path / "mysql-down.cnf"
    down_cnf.write_text(f"[client]\nuser = iact_health\npassword = x\nhost = 127.0.0.1\nport = {closed_port()}\n")
    down_cnf.chmod(0o600)
    ok = health_config.load(write_config(tmp_path, mysql_defaults, test_host, failing=False, n=2, reminder_min=240))
    down = ok.model_copy(update={"mysql": ok.mysql.model_copy(update={"defaults_file": down_cnf})})
    t0 = datetime.now(UTC)
    events = []
    for minutes in (0, 5, 10):
        report = run_health(down, now=t0 + timedelta(minutes=minutes))
        assert not report.recorded
        events.append([a.event for a in report.alerts])
    assert events == [[], ["open"], []]
    report = run_health(ok, now=t0 + timedelta(minutes=15))
    assert report.recorded and [(a.key, a.event) for a in report.alerts] == [(f"mysql:reachable:{test_host}",
                                                                             "resolved")]
    assert mails(tmp_path) == ["open", "resolved"]
    assert run_health(ok, now=t0 + timedelta(minutes=20)).alerts == []
    # The outage never reached the alerts table: it was said without it.
    assert query(db, "SELECT COUNT(*) FROM alerts WHERE host = %s", test_host) == [(0,)]


def test_the_database_refuses_a_second_open_alert(db: pymysql.Connection, test_host: str) -> None:
    store = MySQLStore(db)
    result = CheckResult("itest", "dup", test_host, Status.CRITICAL, "down")
    now = datetime.now(UTC)
    first = store.create_alert(result, "critical", now, 3, now)
    assert first is not None
    assert store.create_alert(result, "critical", now, 3, now) is None
    found = store.open_alert(result.key)
    assert found is not None and found.id == first.id
    assert store.resolve_alert(first.id, result, now, 1.0) is True
    assert store.resolve_alert(first.id, result, now, 1.0) is False
    assert store.open_alert(result.key) is None


def test_job_ages_are_read_from_job_runs(tmp_path: Path, mysql_defaults: Path, test_host: str) -> None:
    never = f"itest_never_{test_host[-12:]}"
    cfg = health_config.load(None, environ={}, overrides={
        "host": test_host, "state_dir": str(tmp_path / "state"), "mysql": {"defaults_file": str(mysql_defaults)},
        "time_sync": {"enabled": False},
        "disk": {"paths": [{"path": str(tmp_path)}], "warn_percent": 100, "crit_percent": 100},
        "jobs": {never: {"warn_age_h": 1, "crit_age_h": 2}, "backup": {"warn_age_h": 26, "crit_age_h": 50,
                                                                       "never_run": "warning"}},
        "alerting": {"enabled": False},
    })
    report = run_health(cfg, record=False)
    by_name = {(r.component, r.check_name): r for r in report.results}
    assert by_name[("jobs", never)].status is Status.CRITICAL
    assert "no successful run recorded" in by_name[("jobs", never)].summary
    assert by_name[("backup", "last_success")].status in (Status.OK, Status.WARNING, Status.CRITICAL)


def test_a_per_host_job_counts_only_this_hosts_runs(tmp_path: Path, mysql_defaults: Path, db: pymysql.Connection,
                                                    test_host: str) -> None:
    """Another host's fresh backup must not hide that this host has none (``this_host_only``)."""
    job = f"itest_backup_{test_host[-12:]}"
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.cursor() as cur:
        cur.execute("INSERT INTO job_runs (job_name, host, started_at, finished_at, status, exit_code)"
                    " VALUES (%s, %s, %s, %s, 'success', 0)", (job, f"{test_host}-other", now, now))
    db.commit()

    def status(this_host_only: bool) -> Status:
        cfg = health_config.load(None, environ={}, overrides={
            "host": test_host, "state_dir": str(tmp_path / "state"), "mysql": {"defaults_file": str(mysql_defaults)},
        "time_sync": {"enabled": False},
            "disk": {"paths": [{"path": str(tmp_path)}], "warn_percent": 100, "crit_percent": 100},
            "jobs": {job: {"warn_age_h": 26, "crit_age_h": 50, "this_host_only": this_host_only}},
            "alerting": {"enabled": False},
        })
        results = {(r.component, r.check_name): r for r in run_health(cfg, record=False).results}
        return results[("jobs", job)].status

    assert status(this_host_only=False) is Status.OK
    assert status(this_host_only=True) is Status.CRITICAL
    with db.cursor() as cur:
        cur.execute("INSERT INTO job_runs (job_name, host, started_at, finished_at, status, exit_code)"
                    " VALUES (%s, %s, %s, %s, 'success', 0)", (job, test_host, now, now))
    db.commit()
    try:
        assert status(this_host_only=True) is Status.OK
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM job_runs WHERE job_name = %s", (job,))
        db.commit()


def test_retention_deletes_only_rows_older_than_their_retention(mysql_defaults: Path, db: pymysql.Connection,
                                                                test_host: str) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO health_checks (checked_at, host, component, check_name, status) VALUES (%s, %s, 'itest',"
            " 'retention', 'ok')",
            [(now - timedelta(days=days), test_host) for days in (200, 120, 91, 89, 1, 0)],
        )
        cur.executemany(
            "INSERT INTO job_runs (job_name, host, started_at, finished_at, status) VALUES ('itest_retention', %s, %s,"
            " %s, 'success')",
            [(test_host, now - timedelta(days=days), now - timedelta(days=days)) for days in (500, 401, 399)],
        )
    db.commit()
    # chunk=1 makes every row its own DELETE: the loop, not one statement, must reach them all.
    results = {r.table: r for r in prune(mysql_defaults, {"health_checks": 90, "job_runs": 400}, chunk=1, pause=0)}
    assert results["health_checks"].complete and results["job_runs"].complete
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM health_checks WHERE host = %s", (test_host,))
        assert cur.fetchone() == (3,)
        cur.execute("SELECT COUNT(*) FROM job_runs WHERE host = %s", (test_host,))
        assert cur.fetchone() == (1,)
    # Other hosts' old rows were old too, so the counts say at least ours, never fewer.
    assert results["health_checks"].deleted >= 3 and results["job_runs"].deleted >= 2
    with db.cursor() as cur:
        cur.execute("DELETE FROM health_checks WHERE host = %s", (test_host,))
        cur.execute("DELETE FROM job_runs WHERE host = %s", (test_host,))
    db.commit()


def test_retention_deletes_only_remediation_decisions_older_than_their_retention(
        mysql_defaults: Path, db: pymysql.Connection, test_host: str) -> None:
    """Remediation decisions (migration 0016) are pruned by decided_at at the default (400 days): the older
    ones go, the one just inside the retention and a fresh one stay."""
    now = datetime.now(UTC).replace(tzinfo=None)
    keep = parse_keep(None)["remediations"]
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO remediations (decided_at, host, action, target, trigger_key, outcome, guardrail, dry_run,"
            " summary, evidence) VALUES (%s, %s, 'itest_retention', 'x.service', 'itest:retention', 'skipped',"
            " 'budget', 0, 'retention test', '{}')",
            [(now - timedelta(days=days), test_host) for days in (keep + 100, keep + 1, keep - 1, 0)],
        )
    db.commit()
    try:
        results = prune(mysql_defaults, {"remediations": keep}, chunk=1, pause=0)
        assert [(r.table, r.complete) for r in results] == [("remediations", True)]
        assert results[0].deleted >= 2  # other hosts' old decisions may go too, never fewer than ours
        with db.cursor() as cur:
            cur.execute("SELECT DATEDIFF(%s, decided_at) FROM remediations WHERE host = %s ORDER BY decided_at",
                        (now, test_host))
            assert [int(r[0]) for r in cur.fetchall()] == [keep - 1, 0]
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM remediations WHERE host = %s", (test_host,))
        db.commit()


def test_retention_refuses_an_unknown_table_and_a_zero_retention(mysql_defaults: Path) -> None:
    with pytest.raises(InputError, match="unknown table 'users'"):
        prune(mysql_defaults, {"users": 10})
    with pytest.raises(InputError, match="at least 1 day"):
        prune(mysql_defaults, {"health_checks": 0})
    with pytest.raises(InputError, match="TABLE=DAYS"):
        parse_keep(["health_checks"])
