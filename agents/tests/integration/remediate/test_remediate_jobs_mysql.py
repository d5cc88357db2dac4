"""The three job actions against the real MariaDB: the health results and ``job_runs`` rows they read, the decisions
they record with their evidence, their budgets, the cluster lock and the other nodes' UN for repair_node.

The commands (``sudo systemd-run ... iact-agent job run ...``) go to a recording runner and the installed cron file
is read from a folder of the test: this machine has no systemd, no backup target and no Cassandra. Nothing here
needs the lab; a stack run would show the transient units really starting (not written yet: no lab now).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest
from iact_agents.health import config as health_config
from iact_agents.health.checks import CommandOutput, judge_nodes
from iact_agents.health.models import CheckResult, Status
from iact_agents.health.store import MySQLStore
from iact_agents.remediate import config as remediate_config
from iact_agents.remediate.actions import PRUNE_BACKUPS, REPAIR_NODE, RERUN_BACKUP
from iact_agents.remediate.decide import Outcome
from iact_agents.remediate.runner import run_remediation
from iact_agents.remediate.store import RemediationStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "health"
SELF_ADDRESS = "172.18.0.4"  # the down node of status_1down.txt
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC) + timedelta(microseconds=1)  # cron's 02:00 run is 17 h away
RERUN = shlex.join(["sudo", "-n", *RERUN_BACKUP.argv])
PRUNE = shlex.join(["sudo", "-n", *PRUNE_BACKUPS.argv])
REPAIR = shlex.join(["sudo", "-n", *REPAIR_NODE.argv])
OK = CommandOutput(0, "", "")
CRON_BACKUP = """# /etc/cron.d/iact-backup as roles/cron writes it
SHELL=/bin/sh
PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/bin
# m h dom mon dow user command
0 2 * * * root iact-agent job run --name backup --timeout 14400 --mysql-defaults /etc/iact/backup-job.cnf -- \
/usr/local/sbin/iact-backup run
"""


class Commands:
    """Answers argv (joined as a shell would read it) from a table; records every call."""

    def __init__(self, answers: dict[str, CommandOutput]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandOutput:
        key = shlex.join(argv)
        self.calls.append(key)
        return self.answers[key]


def cron_dir(tmp_path: Path, text: str = CRON_BACKUP) -> Any:
    """The reader of installed cron files: /etc/cron.d/<name> from a folder of the test."""
    folder = tmp_path / "cron.d"
    folder.mkdir(exist_ok=True)
    (folder / "iact-backup").write_text(text)
    return lambda path: (folder / Path(path).name).read_text()


def configs(mysql_defaults: Path, host: str, **overrides: Any) -> tuple[remediate_config.RemediateConfig,
                                                                         health_config.HealthConfig]:
    health = health_config.load(None, environ={}, overrides={
        "host": host, "mysql": {"defaults_file": str(mysql_defaults)},
        "cassandra": {"enabled": True, "nodetool": ["nodetool"], "expected_nodes": 3},
        "alerting": {"syslog": {"enabled": False}}})
    base: dict[str, Any] = {"dry_run": False, "cassandra": {"self_address": SELF_ADDRESS,
                                                            "peers": [f"{host}-p1", f"{host}-p2"]}}
    return remediate_config.load(None, environ={}, overrides=base | overrides), health


def health_run(db: pymysql.Connection, at: datetime, *results: CheckResult) -> None:
    MySQLStore(db).record_results(results, at)


def job_run(db: pymysql.Connection, host: str, job: str, status: str, started: datetime,
            minutes: float | None = 3) -> None:
    finished = None if minutes is None else started + timedelta(minutes=minutes)
    with db.cursor() as cur:
        cur.execute("INSERT INTO job_runs (job_name, host, started_at, finished_at, status, exit_code, message)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (job, host, started.replace(tzinfo=None), None if finished is None else finished.replace(
                        tzinfo=None), status, None if minutes is None else int(status == "failure"), "itest"))


def rows(db: pymysql.Connection, host: str) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute("SELECT action, outcome, guardrail, dry_run, command, evidence, target FROM remediations"
                    " WHERE host = %s ORDER BY id", (host,))
        return list(cur.fetchall())


def backup_stale(host: str) -> CheckResult:
    return CheckResult("backup", "last_success", host, Status.WARNING, "backup: last success 27.0 h ago", None,
                       {"job": "backup", "age_h": 27.0})


# --- rerun_backup --------------------------------------------------------------------------------------


def test_failed_backup_is_run_again_once(db: pymysql.Connection, mysql_defaults: Path, test_host: str,
                                         tmp_path: Path) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["rerun_backup"],
                          budgets={"rerun_backup": {"per_hour": 1, "per_day": 1}})
    read = cron_dir(tmp_path)
    job_run(db, test_host, "backup", "success", T0 - timedelta(hours=31))
    job_run(db, test_host, "backup", "failure", T0 - timedelta(hours=7))
    health_run(db, T0, backup_stale(test_host))
    run = Commands({RERUN: OK})
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20), read=read, tz=UTC)
    assert [(d.action, d.outcome) for d in report.decisions] == [("rerun_backup", Outcome.ACTED)]
    assert run.calls == [RERUN] and "started as iact-remediate-backup" in report.decisions[0].summary
    recorded = rows(db, test_host)
    assert [(r[1], r[4], r[6]) for r in recorded] == [("acted", RERUN, "backup")]
    evidence = json.loads(recorded[0][5])
    assert evidence["last_run"]["status"] == "failure" and evidence["next_run"] == "2026-12-01T02:00:00+00:00"
    assert evidence["transient_unit"] == "iact-remediate-backup"

    # the next health run still sees the stale backup: the same failed run is not run again
    health_run(db, T0 + timedelta(minutes=5), backup_stale(test_host))
    again = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(minutes=5, seconds=20), read=read,
                            tz=UTC)
    assert again.decisions == [] and run.calls == [RERUN]

    # while the re-run runs, and after it failed again: a new failure is a new decision, the day budget (1) stops it
    job_run(db, test_host, "backup", "running", T0 + timedelta(minutes=1), minutes=None)
    health_run(db, T0 + timedelta(minutes=10), backup_stale(test_host))
    assert run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(minutes=10, seconds=20),
                           read=read, tz=UTC).decisions == []
    job_run(db, test_host, "backup", "failure", T0 + timedelta(minutes=30))
    health_run(db, T0 + timedelta(hours=2), backup_stale(test_host))
    stopped = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(hours=2, seconds=20), read=read,
                              tz=UTC)
    assert [(d.outcome, d.guardrail) for d in stopped.decisions] == [(Outcome.SKIPPED, "budget")]
    assert stopped.exit_code == 2 and run.calls == [RERUN]


@pytest.mark.parametrize(("now", "text", "newest"), [
    (datetime(2026, 11, 30, 21, 0, tzinfo=UTC), CRON_BACKUP, "failure"),  # cron runs it in 5 h
    (T0, CRON_BACKUP, "success"),  # the last run did not fail
    (T0, CRON_BACKUP.replace("0 2 * * *", "0 25 * * *"), "failure"),  # schedule not understood: fail closed
    (T0, CRON_BACKUP.replace("iact-backup run", "iact-backup run mysql"), "failure"),  # not the allow-list's command
    (T0, "", "failure"),  # no backup entry installed
])
def test_backup_not_run_again(db: pymysql.Connection, mysql_defaults: Path, test_host: str, tmp_path: Path,
                              now: datetime, text: str, newest: str) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["rerun_backup"])
    job_run(db, test_host, "backup", newest, now - timedelta(hours=7))
    health_run(db, now, backup_stale(test_host))
    run = Commands({})
    report = run_remediation(cfg, health, run=run, channels=[], now=now + timedelta(seconds=20),
                             read=cron_dir(tmp_path, text), tz=UTC)
    assert report.decisions == [] and run.calls == [] and rows(db, test_host) == []


def test_backup_dry_run_is_recorded_once_per_failed_run(db: pymysql.Connection, mysql_defaults: Path,
                                                        test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["rerun_backup"], dry_run=True)
    job_run(db, test_host, "backup", "failure", T0 - timedelta(hours=7))
    run = Commands({})
    for minutes in (0, 5, 10):
        health_run(db, T0 + timedelta(minutes=minutes), backup_stale(test_host))
        run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(minutes=minutes, seconds=20),
                        read=cron_dir(tmp_path), tz=UTC)
    assert run.calls == [] and [(r[1], r[3], r[4]) for r in rows(db, test_host)] == [("dry_run", 1, RERUN)]


# --- prune_backups ------------------------------------------------------------------------------------


def disk(host: str, path: str, status: Status) -> CheckResult:
    return CheckResult("disk", path, host, status, f"{path}: 93.0% used", None, {"used_percent": 93.0})


def test_critical_disk_of_a_backup_target_runs_the_retention(db: pymysql.Connection, mysql_defaults: Path,
                                                              test_host: str, tmp_path: Path) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["prune_backups"],
                          budgets={"prune_backups": {"per_hour": 1, "per_day": 2}})
    run = Commands({PRUNE: OK})
    outcomes = []
    for hours in (0, 2, 4):
        at = T0 + timedelta(hours=hours)
        health_run(db, at, disk(test_host, "/", Status.OK), disk(test_host, "/srv/iact-backup", Status.CRITICAL))
        report = run_remediation(cfg, health, run=run, channels=[], now=at + timedelta(seconds=20))
        outcomes += [(d.outcome.value, d.guardrail) for d in report.decisions]
    assert outcomes == [("acted", None), ("acted", None), ("skipped", "budget")]
    assert run.calls == [PRUNE, PRUNE]
    recorded = rows(db, test_host)
    assert recorded[0][6] == "backup_retention"
    assert json.loads(recorded[0][5])["triggers"][0]["check"] == "/srv/iact-backup"

    # a warning, or a critical disk check older than max_result_age_s, fires nothing
    health_run(db, T0 + timedelta(hours=30), disk(test_host, "/srv/iact-backup", Status.WARNING))
    late = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(hours=30, seconds=20))
    assert late.decisions == [] and len(run.calls) == 2


# --- repair_node -------------------------------------------------------------------------------------


def service(host: str, state: str) -> CheckResult:
    status = Status.OK if state == "active" else Status.CRITICAL
    return CheckResult("service", "cassandra.service", host, status, state, None, {"state": state})


def nodes_up(host: str, fixture: str) -> CheckResult:
    return judge_nodes((FIXTURES / fixture).read_text(), 3, host)


def history(db: pymysql.Connection, host: str, down_h: float, *, own: bool = True, back: datetime = T0,
            every_min: int = 15) -> None:
    """Health results up to ``back``: 2 h up, ``down_h`` hours down (this node DN for the peers; its own service
    failed, or no result at all when ``own`` is False: the host was off), then up again at ``back``."""
    start = back - timedelta(hours=down_h + 2)
    at = start
    while at <= back:
        down = back - timedelta(hours=down_h) <= at < back
        results = [nodes_up(f"{host}-p1", "status_1down.txt" if down else "status_3up.txt"),
                   nodes_up(f"{host}-p2", "status_1down.txt" if down else "status_3up.txt")]
        if own or not down:
            results.append(service(host, "failed" if down else "active"))
        health_run(db, at, *results)
        at += timedelta(minutes=every_min)


def test_node_down_longer_than_the_hint_window_is_repaired_once(db: pymysql.Connection, mysql_defaults: Path,
                                                                test_host: str) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["repair_node"])
    history(db, test_host, 4)
    run = Commands({REPAIR: OK})
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20))
    assert [(d.action, d.outcome) for d in report.decisions] == [("repair_node", Outcome.ACTED)]
    assert run.calls == [REPAIR]
    evidence = json.loads(rows(db, test_host)[0][5])
    assert evidence["hint_window_s"] == 10800 and evidence["peers"][f"{test_host}-p1"]["nodes"][SELF_ADDRESS] == "UN"
    longest = max(o["down_s"] for o in evidence["outages"])
    assert 3.5 * 3600 <= longest <= 4 * 3600
    with db.cursor() as cur:  # the lock is released once the repair is started
        cur.execute("SELECT IS_USED_LOCK(CONCAT(DATABASE(), '.remediate:cassandra'))")
        assert cur.fetchone() == (None,)

    # the repair job runs (its job_runs row): later health runs decide nothing more on this outage
    job_run(db, test_host, "cassandra_repair", "running", T0 + timedelta(minutes=1), minutes=None)
    for minutes in (5, 10):
        health_run(db, T0 + timedelta(minutes=minutes), service(test_host, "active"),
                   nodes_up(f"{test_host}-p1", "status_3up.txt"), nodes_up(f"{test_host}-p2", "status_3up.txt"))
        later = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(minutes=minutes, seconds=20))
        assert later.decisions == []
    assert run.calls == [REPAIR]


def test_host_that_was_off_is_repaired_from_the_peers_view(db: pymysql.Connection, mysql_defaults: Path,
                                                           test_host: str) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["repair_node"])
    history(db, test_host, 5, own=False)  # its own health agent recorded nothing while the host was off
    run = Commands({REPAIR: OK})
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20))
    assert [d.outcome for d in report.decisions] == [Outcome.ACTED]
    outages = json.loads(rows(db, test_host)[0][5])["outages"]
    assert {o["source"] for o in outages} == {f"{test_host}-{p} cassandra:nodes_up" for p in ("p1", "p2")}


def test_outage_within_the_hint_window_needs_no_repair(db: pymysql.Connection, mysql_defaults: Path,
                                                        test_host: str) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["repair_node"])
    history(db, test_host, 2.5)
    run = Commands({})
    assert run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20)).decisions == []
    # a shorter configured window (cassandra.yaml max_hint_window: 2h) makes the same outage too long
    cfg, health = configs(mysql_defaults, test_host, actions=["repair_node"], dry_run=True,
                          cassandra={"self_address": SELF_ADDRESS, "peers": [f"{test_host}-p1", f"{test_host}-p2"],
                                     "max_hint_window": "2h"})
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20))
    assert [d.outcome for d in report.decisions] == [Outcome.DRY_RUN] and run.calls == []
    # a dry run is recorded once per outage
    health_run(db, T0 + timedelta(minutes=5), service(test_host, "active"),
               nodes_up(f"{test_host}-p1", "status_3up.txt"), nodes_up(f"{test_host}-p2", "status_3up.txt"))
    assert run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(minutes=5, seconds=20)).decisions == []


def test_results_without_a_unit_state_are_no_outage(db: pymysql.Connection, mysql_defaults: Path,
                                                    test_host: str) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["repair_node"])
    at = T0 - timedelta(hours=6)
    while at <= T0:  # systemctl did not answer for 4 h (status unknown, no state); the peers saw the node UN
        blind = T0 - timedelta(hours=4) <= at < T0
        unknown = CheckResult("service", "cassandra.service", test_host, Status.UNKNOWN, "systemctl show timed out")
        health_run(db, at, unknown if blind else service(test_host, "active"),
                   nodes_up(f"{test_host}-p1", "status_3up.txt"), nodes_up(f"{test_host}-p2", "status_3up.txt"))
        at += timedelta(minutes=15)
    run = Commands({})
    assert run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20)).decisions == []
    assert run.calls == []


def test_repair_waits_while_another_node_is_down_or_holds_the_lock(db: pymysql.Connection, mysql_defaults: Path,
                                                                   test_host: str) -> None:
    other = "172.18.0.2"  # this node is .2; .4 is down for the peers now
    cfg, health = configs(mysql_defaults, test_host, actions=["repair_node"],
                          cassandra={"self_address": other, "peers": [f"{test_host}-p1", f"{test_host}-p2"]})
    at = T0 - timedelta(hours=6)
    while at <= T0:
        down = T0 - timedelta(hours=4) <= at < T0
        health_run(db, at, service(test_host, "failed" if down else "active"),
                   nodes_up(f"{test_host}-p1", "status_1down.txt"), nodes_up(f"{test_host}-p2", "status_1down.txt"))
        at += timedelta(minutes=15)
    run = Commands({})
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(seconds=20))
    assert [(d.outcome, d.guardrail) for d in report.decisions] == [(Outcome.SKIPPED, "peers")]
    assert "172.18.0.4 DN" in report.decisions[0].summary and run.calls == []

    # every other node UN again, but another node's remediation holds the cluster lock
    health_run(db, T0 + timedelta(minutes=5), service(test_host, "active"),
               nodes_up(f"{test_host}-p1", "status_3up.txt"), nodes_up(f"{test_host}-p2", "status_3up.txt"))
    elsewhere = RemediationStore(db)
    assert elsewhere.try_lock()
    try:
        report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(minutes=5, seconds=20))
    finally:
        elsewhere.unlock()
    assert [(d.outcome, d.guardrail) for d in report.decisions] == [(Outcome.SKIPPED, "lock")] and run.calls == []
    # skips spend no budget: the next health run repairs
    health_run(db, T0 + timedelta(minutes=10), service(test_host, "active"),
               nodes_up(f"{test_host}-p1", "status_3up.txt"), nodes_up(f"{test_host}-p2", "status_3up.txt"))
    run = Commands({REPAIR: OK})
    report = run_remediation(cfg, health, run=run, channels=[], now=T0 + timedelta(minutes=10, seconds=20))
    assert [d.outcome for d in report.decisions] == [Outcome.ACTED] and run.calls == [REPAIR]


def test_a_refused_start_is_a_failure_with_its_reason(db: pymysql.Connection, mysql_defaults: Path,
                                                      test_host: str) -> None:
    cfg, health = configs(mysql_defaults, test_host, actions=["repair_node"])
    history(db, test_host, 4)
    busy = CommandOutput(1, "", "Failed to start transient service unit: Unit iact-remediate-cassandra-repair.service"
                                " already exists.\n")
    report = run_remediation(cfg, health, run=Commands({REPAIR: busy}), channels=[], now=T0 + timedelta(seconds=20))
    assert [d.outcome for d in report.decisions] == [Outcome.FAILED] and report.exit_code == 2
    assert "already exists" in report.decisions[0].summary
