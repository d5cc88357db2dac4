"""Remediation against the real MariaDB: the health results it reads, the decisions and their budgets, the
GET_LOCK cluster lock held by another session, the critical alert of a spent budget (the health agent's own
alert state machine and a real local mailbox).

The commands (``sudo systemctl restart``, ``nodetool status``) go to a recording runner: this machine has no
systemd and no Cassandra; the stack test (tests/integration/remediate) runs them for real on the lab hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest
from iact_agents.errors import ServiceUnavailable
from iact_agents.health import config as health_config
from iact_agents.health.channels import MailboxChannel
from iact_agents.health.checks import CommandOutput, judge_nodes
from iact_agents.health.config import MailboxChannelSettings
from iact_agents.health.models import CheckResult, Status
from iact_agents.health.store import MySQLStore
from iact_agents.remediate import config as remediate_config
from iact_agents.remediate.decide import Outcome
from iact_agents.remediate.runner import run_remediation
from iact_agents.remediate.store import RemediationStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "health"
SELF_ADDRESS = "172.18.0.4"  # the down node of status_1down.txt
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC) + timedelta(microseconds=1)
RESTART_COLLECTOR = "sudo -n /usr/bin/systemctl restart iact-collector.service"
RESTART_CASSANDRA = "sudo -n /usr/bin/systemctl restart cassandra.service"


class Commands:
    """Answers argv (joined with spaces) from a table; records every call."""

    def __init__(self, answers: dict[str, CommandOutput]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandOutput:
        key = " ".join(argv)
        self.calls.append(key)
        return self.answers[key]


class Clock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


OK = CommandOutput(0, "", "")
ACTIVE = CommandOutput(0, "active\n", "")


def configs(tmp_path: Path, mysql_defaults: Path, host: str, **overrides: Any) -> tuple[
        remediate_config.RemediateConfig, health_config.HealthConfig]:
    health = health_config.load(None, environ={}, overrides={
        "host": host, "mysql": {"defaults_file": str(mysql_defaults)},
        "cassandra": {"enabled": True, "nodetool": ["nodetool"], "expected_nodes": 3},
        "alerting": {"syslog": {"enabled": False}}})
    base: dict[str, Any] = {"dry_run": False, "actions": ["restart_collector", "restart_cassandra"],
                            "cassandra": {"self_address": SELF_ADDRESS, "peers": [f"{host}-p1", f"{host}-p2"],
                                          "up_timeout_s": 60, "poll_s": 5}}
    return remediate_config.load(None, environ={}, overrides=base | overrides), health


def mailbox(tmp_path: Path) -> MailboxChannel:
    return MailboxChannel(MailboxChannelSettings(enabled=True, path=tmp_path / "mbox"), "itest")


def messages(tmp_path: Path, event: str) -> list[str]:
    box = tmp_path / "mbox"
    text = box.read_text() if box.exists() else ""
    return [m for m in text.split("\nFrom ") if f"X-IACT-Event: {event}" in m]


def health_run(db: pymysql.Connection, at: datetime, *results: CheckResult) -> None:
    MySQLStore(db).record_results(results, at)


def collector_down(host: str) -> CheckResult:
    return CheckResult("service", "iact-collector.service", host, Status.CRITICAL, "failed (failed)", None,
                       {"state": "failed"})


def cassandra_down(host: str) -> CheckResult:
    return CheckResult("service", "cassandra.service", host, Status.CRITICAL, "failed (failed)", None,
                       {"state": "failed"})


def nodes_up(host: str, fixture: str) -> CheckResult:
    return judge_nodes((FIXTURES / fixture).read_text(), 3, host)


def rows(db: pymysql.Connection, host: str) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute("SELECT action, outcome, guardrail, dry_run, command, evidence FROM remediations WHERE host = %s"
                    " ORDER BY id", (host,))
        return list(cur.fetchall())


def open_alert(db: pymysql.Connection, key: str) -> tuple[str, str] | None:
    with db.cursor() as cur:
        cur.execute("SELECT severity, status FROM alerts WHERE open_key = %s", (key,))
        row = cur.fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


# --- a host action: the collector ------------------------------------------------------------------


def test_failed_collector_is_restarted_once_then_the_budget_stops_it_with_a_critical_alert(
        db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_collector"])
    chans = [mailbox(tmp_path)]
    health_run(db, T0, collector_down(test_host))
    run = Commands({RESTART_COLLECTOR: OK, "/usr/bin/systemctl is-active iact-collector.service": ACTIVE})
    first = run_remediation(cfg, health, run=run, channels=chans, now=T0 + timedelta(seconds=30))
    assert [d.outcome for d in first.decisions] == [Outcome.ACTED] and first.exit_code == 0
    assert run.calls == [RESTART_COLLECTOR, "/usr/bin/systemctl is-active iact-collector.service"]
    assert [m for m in messages(tmp_path, "remediation") if "acted" in m]

    # the same health results are not acted on twice
    again = run_remediation(cfg, health, run=run, channels=chans, now=T0 + timedelta(seconds=40))
    assert again.decisions == [] and len(run.calls) == 2

    # killed again within the hour: the budget (1 an hour) stops it, a critical alert opens at once
    health_run(db, T0 + timedelta(minutes=5), collector_down(test_host))
    second = run_remediation(cfg, health, run=run, channels=chans, now=T0 + timedelta(minutes=5, seconds=30))
    assert [(d.outcome, d.guardrail) for d in second.decisions] == [(Outcome.SKIPPED, "budget")]
    assert second.exit_code == 2 and len(run.calls) == 2
    key = f"remediation:restart_collector:{test_host}"
    assert open_alert(db, key) == ("critical", "open")
    assert len([m for m in messages(tmp_path, "open") if key in m]) == 1
    recorded = rows(db, test_host)
    assert [(r[1], r[2]) for r in recorded] == [("acted", None), ("skipped", "budget")]
    assert '"last_hour": 1' in recorded[1][5] and "failed (failed)" in recorded[1][5]

    # after the hour, one more attempt is allowed (3 a day); when the collector is fine the alert resolves
    health_run(db, T0 + timedelta(minutes=70), collector_down(test_host))
    third = run_remediation(cfg, health, run=run, channels=chans, now=T0 + timedelta(minutes=70, seconds=30))
    assert [d.outcome for d in third.decisions] == [Outcome.ACTED]
    health_run(db, T0 + timedelta(minutes=75), CheckResult("service", "iact-collector.service", test_host, Status.OK,
                                                           "active (running)", None, {"state": "active"}))
    fine = run_remediation(cfg, health, run=run, channels=chans, now=T0 + timedelta(minutes=75, seconds=30))
    assert fine.decisions == [] and open_alert(db, key) is None
    assert len([m for m in messages(tmp_path, "resolved") if key in m]) == 1


def test_day_budget(db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_collector"])
    run = Commands({RESTART_COLLECTOR: OK, "/usr/bin/systemctl is-active iact-collector.service": ACTIVE})
    outcomes = []
    for i in range(4):  # one every 2 hours: the hour budget never stops it, the day budget (3) does
        at = T0 + timedelta(hours=2 * i)
        health_run(db, at, collector_down(test_host))
        report = run_remediation(cfg, health, run=run, channels=[], now=at + timedelta(seconds=10))
        outcomes += [(d.outcome.value, d.guardrail) for d in report.decisions]
    assert outcomes == [("acted", None)] * 3 + [("skipped", "budget")]
    assert run.calls.count(RESTART_COLLECTOR) == 3


def test_stale_results_fire_nothing(db: pymysql.Connection, mysql_defaults: Path, test_host: str,
                                    tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_collector"])
    health_run(db, T0, collector_down(test_host))
    run = Commands({})
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=cfg.max_result_age_s + 1))
    assert report.decisions == [] and run.calls == [] and rows(db, test_host) == []


def test_failed_restart_and_unit_that_stays_down_are_failures_with_an_alert(
        db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_collector"],
                          budget={"per_hour": 2, "per_day": 3})
    health_run(db, T0, collector_down(test_host))
    refused = CommandOutput(1, "", "sudo: a password is required\n")
    report = run_remediation(cfg, health, run=Commands({RESTART_COLLECTOR: refused}), channels=[mailbox(tmp_path)],
                             now=T0 + timedelta(seconds=10))
    assert [d.outcome for d in report.decisions] == [Outcome.FAILED] and report.exit_code == 2
    assert "sudo: a password is required" in report.decisions[0].summary
    assert open_alert(db, f"remediation:restart_collector:{test_host}") == ("critical", "open")

    health_run(db, T0 + timedelta(minutes=5), collector_down(test_host))
    clock = Clock()
    down = Commands({RESTART_COLLECTOR: OK,
                     "/usr/bin/systemctl is-active iact-collector.service": CommandOutput(3, "failed\n", "")})
    report = run_remediation(cfg, health, run=down, channels=[], now=T0 + timedelta(minutes=5, seconds=10),
                             sleep=clock.sleep, clock=clock)
    assert [d.outcome for d in report.decisions] == [Outcome.FAILED]
    assert "not iact-collector.service active within 60 s: failed" in report.decisions[0].summary
    assert 2 < down.calls.count("/usr/bin/systemctl is-active iact-collector.service") <= 32


def test_dry_run_changes_nothing_records_and_notifies_and_spends_no_budget(
        db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, dry_run=True)
    health_run(db, T0, collector_down(test_host), cassandra_down(test_host),
               nodes_up(f"{test_host}-p1", "status_1down.txt"), nodes_up(f"{test_host}-p2", "status_1down.txt"))
    run = Commands({})
    report = run_remediation(cfg, health, run=run, channels=[mailbox(tmp_path)], now=T0 + timedelta(seconds=10))
    assert run.calls == []
    assert sorted((d.action, d.outcome.value) for d in report.decisions) == [
        ("restart_cassandra", "dry_run"), ("restart_collector", "dry_run")]
    assert all(r[3] == 1 and r[4].startswith("sudo -n /usr/bin/systemctl restart") for r in rows(db, test_host))
    assert len(messages(tmp_path, "remediation")) == 2
    assert RemediationStore(db).attempts(test_host, "restart_collector", T0 + timedelta(minutes=1)).last_day == 0
    with db.cursor() as cur:  # the dry run took no lock: another session could take it meanwhile
        cur.execute("SELECT IS_USED_LOCK(CONCAT(DATABASE(), '.remediate:cassandra'))")
        assert cur.fetchone() == (None,)


# --- a cluster action: a Cassandra node ------------------------------------------------------------


def cassandra_answers(status_fixture: str = "status_3up.txt") -> dict[str, CommandOutput]:
    return {RESTART_CASSANDRA: OK, "nodetool status": CommandOutput(0, (FIXTURES / status_fixture).read_text(), "")}


def test_dead_node_is_restarted_when_every_other_node_is_un(
        db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_cassandra"])
    health_run(db, T0, cassandra_down(test_host), nodes_up(f"{test_host}-p1", "status_1down.txt"),
               nodes_up(f"{test_host}-p2", "status_1down.txt"))
    run = Commands(cassandra_answers())
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20))
    assert [d.outcome for d in report.decisions] == [Outcome.ACTED]
    assert run.calls == [RESTART_CASSANDRA, "nodetool status"]
    evidence = rows(db, test_host)[0][5]
    assert f'"{SELF_ADDRESS}": "DN"' in evidence and f"{test_host}-p2" in evidence
    with db.cursor() as cur:  # released after the node came back UN
        cur.execute("SELECT IS_USED_LOCK(CONCAT(DATABASE(), '.remediate:cassandra'))")
        assert cur.fetchone() == (None,)


def test_dead_node_is_not_restarted_while_another_node_is_down(
        db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_cassandra"],
                          cassandra={"self_address": "172.18.0.2", "peers": [f"{test_host}-p1", f"{test_host}-p2"]})
    # p1 sees 172.18.0.4 down too; p2's own node is the down one: its nodetool cannot list the ring
    peer_down = CheckResult("cassandra", "nodes_up", f"{test_host}-p2", Status.CRITICAL,
                            "nodetool status failed: nodetool: Failed to connect to '127.0.0.1:7199'")
    health_run(db, T0, cassandra_down(test_host), nodes_up(f"{test_host}-p1", "status_1down.txt"), peer_down)
    run = Commands({})
    report = run_remediation(cfg, health, run=run, channels=[mailbox(tmp_path)], now=T0 + timedelta(seconds=20))
    assert [(d.outcome, d.guardrail) for d in report.decisions] == [(Outcome.SKIPPED, "peers")]
    assert run.calls == [] and report.exit_code == 0
    summary = report.decisions[0].summary
    assert "172.18.0.4 DN" in summary and f"{test_host}-p2: could not list the ring" in summary
    assert len(messages(tmp_path, "remediation")) == 1
    # a skip by the peers guard spends no budget
    assert RemediationStore(db).attempts(test_host, "restart_cassandra", T0 + timedelta(minutes=1)).last_hour == 0


def test_no_fresh_peer_report_is_a_refusal(db: pymysql.Connection, mysql_defaults: Path, test_host: str,
                                           tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_cassandra"])
    health_run(db, T0 - timedelta(hours=1), nodes_up(f"{test_host}-p1", "status_1down.txt"),
               nodes_up(f"{test_host}-p2", "status_1down.txt"))
    health_run(db, T0, cassandra_down(test_host))
    report = run_remediation(cfg, health, run=Commands({}), channels=[], now=T0 + timedelta(seconds=20))
    assert [(d.outcome, d.guardrail) for d in report.decisions] == [(Outcome.SKIPPED, "peers")]


def test_one_node_at_a_time_the_lock_held_elsewhere_stops_it(
        db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_cassandra"])
    health_run(db, T0, cassandra_down(test_host), nodes_up(f"{test_host}-p1", "status_1down.txt"),
               nodes_up(f"{test_host}-p2", "status_1down.txt"))
    other = RemediationStore(db)  # another node's run, in its own session
    assert other.try_lock()
    try:
        run = Commands({})
        report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20))
        assert [(d.outcome, d.guardrail) for d in report.decisions] == [(Outcome.SKIPPED, "lock")]
        assert run.calls == []
    finally:
        other.unlock()
    health_run(db, T0 + timedelta(minutes=5), cassandra_down(test_host),
               nodes_up(f"{test_host}-p1", "status_1down.txt"), nodes_up(f"{test_host}-p2", "status_1down.txt"))
    report = run_remediation(cfg, health, run=Commands(cassandra_answers()), channels=[],
                             now=T0 + timedelta(minutes=5, seconds=20))
    assert [d.outcome for d in report.decisions] == [Outcome.ACTED]


def test_node_not_back_un_in_time_is_a_failure_and_the_lock_is_released(
        db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(tmp_path, mysql_defaults, test_host, actions=["restart_cassandra"])
    health_run(db, T0, cassandra_down(test_host), nodes_up(f"{test_host}-p1", "status_1down.txt"),
               nodes_up(f"{test_host}-p2", "status_1down.txt"))
    clock = Clock()
    run = Commands(cassandra_answers("status_1down.txt"))
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20),
                             sleep=clock.sleep, clock=clock)
    assert [d.outcome for d in report.decisions] == [Outcome.FAILED]
    assert "not every node UN within 60 s: down: 172.18.0.4" in report.decisions[0].summary
    assert run.calls.count("nodetool status") == 13  # every 5 s for 60 s
    assert RemediationStore(db).try_lock()
    RemediationStore(db).unlock()


def test_without_mysql_nothing_is_done(tmp_path: Path, test_host: str) -> None:
    cnf = tmp_path / "bad.cnf"
    cnf.write_text("[client]\nhost = 127.0.0.1\nport = 1\nuser = nobody\n")
    cfg, health = configs(tmp_path, cnf, test_host)
    run = Commands({})
    with pytest.raises(ServiceUnavailable):
        run_remediation(cfg, health, run=run, channels=[], now=T0)
    assert run.calls == []
