"""One health run: every configured check, then the record in MySQL, then the alert state machine; when MySQL
cannot take the results, the outage alert from local state instead (:mod:`.outage`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pymysql

from .. import mysqlconn
from ..errors import AgentError
from .alerting import AlertEngine, AlertOutcome
from .channels import Channel, build_channels
from .checks import (
    Runner,
    audit_check,
    cassandra_checks,
    collector_checks,
    disk_checks,
    job_age_check,
    run_program,
    service_checks,
    stopwatch,
    time_sync_check,
)
from .config import HealthConfig
from .cql import cql_login_check
from .localstate import LocalState, StateUnavailable
from .models import CheckResult, Status, worst
from .outage import track as track_store_outage
from .store import MySQLStore

log = logging.getLogger(__name__)


@dataclass
class HealthReport:
    host: str
    checked_at: datetime
    results: list[CheckResult]
    recorded: bool
    alerts: list[AlertOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One-line reasons why results or alerts could not be stored (shown on stderr)."""

    @property
    def status(self) -> Status:
        return worst(r.status for r in self.results)

    @property
    def exit_code(self) -> int:
        return self.status.exit_code

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "checked_at": self.checked_at.isoformat(),
            "status": self.status.value,
            "exit_code": self.exit_code,
            "recorded": self.recorded,
            "problems": self.problems,
            "results": [r.as_dict() for r in self.results],
            "alerts": [a.as_dict() for a in self.alerts],
        }


def _mysql_error(exc: pymysql.MySQLError) -> str:
    args = exc.args
    if len(args) >= 2:
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


class _Unreadable(Exception):
    pass


def _services(cfg: HealthConfig, run: Runner, state: LocalState | None) -> list[CheckResult]:
    """The unit checks with the memory of the previous run (without it: as if this were the first run)."""
    if state is None or not cfg.services.units:
        return service_checks(cfg.services, cfg.host, run)
    try:
        with state.section("services") as memory:
            return service_checks(cfg.services, cfg.host, run, memory)
    except StateUnavailable:
        return service_checks(cfg.services, cfg.host, run)


def _audit(cfg: HealthConfig, conn: pymysql.Connection | None, now: datetime | None) -> CheckResult:
    if conn is None:
        return CheckResult("audit", "last_run", cfg.host, Status.UNKNOWN, "MySQL not reachable: audit_runs not read")
    try:
        last = MySQLStore(conn).last_audit(cfg.host)
    except pymysql.MySQLError as exc:
        return CheckResult("audit", "last_run", cfg.host, Status.UNKNOWN,
                           f"cannot read audit_runs: {_mysql_error(exc)}")
    return audit_check(last, cfg.audit.max_age_h, cfg.host, now)


def run_checks(cfg: HealthConfig, conn: pymysql.Connection | None, *, run: Runner = run_program,
               now: datetime | None = None, state: LocalState | None = None) -> list[CheckResult]:
    """Every check but MySQL's own (which :func:`run_health` does around the connection)."""
    host = cfg.host
    results: list[CheckResult] = []
    if cfg.cassandra.enabled:
        results += cassandra_checks(cfg.cassandra, host, run)
        if cfg.cassandra.username is not None:
            results.append(cql_login_check(cfg.cassandra, host))
    results += disk_checks(cfg.disk, host)
    results += _services(cfg, run, state)
    if cfg.collector.enabled:
        results += collector_checks(cfg.collector, host, now.timestamp() if now else None)
    if cfg.jobs:
        names = sorted(cfg.jobs)
        try:
            if conn is None:
                raise _Unreadable("MySQL not reachable: job_runs not read")
            last = MySQLStore(conn).last_successes(
                {n: (host if cfg.jobs[n].this_host_only else None) for n in names})
            results += [job_age_check(n, cfg.jobs[n], last[n], host, now) for n in names]
        except (pymysql.MySQLError, _Unreadable) as exc:
            msg = str(exc) if isinstance(exc, _Unreadable) else f"cannot read job_runs: {_mysql_error(exc)}"
            for name in names:
                component, check = ("backup", "last_success") if name == "backup" else ("jobs", name)
                results.append(CheckResult(component, check, host, Status.UNKNOWN, msg))
    if cfg.audit.enabled:
        results.append(_audit(cfg, conn, now))
    if cfg.time_sync.enabled:
        results.append(time_sync_check(cfg.time_sync, host, run))
    if state is not None:
        results.append(state.result(host))
    return results


def run_health(
    cfg: HealthConfig,
    *,
    record: bool = True,
    run: Runner = run_program,
    channels: list[Channel] | None = None,
    now: datetime | None = None,
) -> HealthReport:
    now = datetime.now(UTC) if now is None else now
    host = cfg.host
    results: list[CheckResult] = []
    problems: list[str] = []
    state = LocalState(cfg.state_dir, write=record)
    conn: pymysql.Connection | None = None
    try:
        with stopwatch() as watch:
            conn = mysqlconn.connect(cfg.mysql.defaults_file, connect_timeout=cfg.mysql.connect_timeout_s)
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        results.append(CheckResult("mysql", "reachable", host, Status.OK, "connected", watch.ms))
    except (AgentError, pymysql.MySQLError) as exc:
        message = str(exc) if isinstance(exc, AgentError) else f"MySQL query failed: {_mysql_error(exc)}"
        results.append(CheckResult("mysql", "reachable", host, Status.CRITICAL, message))
        problems.append(f"{message}; results not recorded")
        if conn is not None:
            conn.close()
            conn = None
    try:
        results += run_checks(cfg, conn, run=run, now=now, state=state)
        noted = len(state.notes)  # the notes so far are in the health:state result
        report = HealthReport(host, now, results, recorded=False, problems=problems)
        if not record:
            return report
        if conn is not None:
            _record_and_alert(cfg, MySQLStore(conn), report, channels)
        if cfg.alerting.enabled:
            # The metrics store could not take the results: say so without it (rate-limited by local state),
            # and say once that it is back.
            failing = None if report.recorded else next(
                (r for r in results if r.component == "mysql" and r.status is Status.CRITICAL),
                CheckResult("mysql", "writable", host, Status.CRITICAL, "results not recorded"))
            chans = build_channels(cfg.alerting, host) if channels is None else channels
            outcome = track_store_outage(state, failing, chans, cfg.alerting, host=host, now=now)
            if outcome is not None:
                report.alerts.append(outcome)
            problems.extend(f"local state: {note}" for note in state.notes[noted:])
        return report
    finally:
        if conn is not None:
            conn.close()


def _record_and_alert(cfg: HealthConfig, store: MySQLStore, report: HealthReport,
                      channels: list[Channel] | None) -> None:
    results, problems, host, now = report.results, report.problems, report.host, report.checked_at
    # The write probe is the record itself: the results go in first, then a row saying that worked.
    try:
        with stopwatch() as watch:
            store.record_results(results, now)
        writable = CheckResult("mysql", "writable", host, Status.OK, f"{len(results)} results recorded", watch.ms)
        store.record_results([writable], now)
        report.recorded = True
    except pymysql.MySQLError as exc:
        writable = CheckResult("mysql", "writable", host, Status.CRITICAL,
                               f"cannot insert into health_checks: {_mysql_error(exc)}")
        problems.append(f"{writable.summary}; results not recorded")
    results.append(writable)
    if report.recorded and cfg.alerting.enabled:
        manager = AlertEngine(store, build_channels(cfg.alerting, host) if channels is None else channels,
                              cfg.alerting)
        try:
            report.alerts = manager.process(results, now)
        except pymysql.MySQLError as exc:
            message = f"alerting failed: {_mysql_error(exc)}"
            problems.append(message)
            results.append(CheckResult("health", "alerting", host, Status.CRITICAL, message))
