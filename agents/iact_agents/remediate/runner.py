"""One remediation run, after the health run of the same job: for each enabled action of the allow-list whose
trigger fired in this host's newest health results, apply the guardrails, act (or, in a dry run, do not), record
the decision with its evidence, notify it, and feed ``remediation:<action>`` results to the health agent's alert
state machine (critical when a budget is spent or an attempt failed: an alert opens at once).

Fails closed: without MySQL there is no budget, no lock and no record, so nothing is done.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import mysqlconn
from ..health.alerting import AlertEngine, AlertOutcome, send_all
from ..health.channels import Channel, ChannelResult, Notification, build_channels
from ..health.checks import CommandFailed, CommandOutput, Runner, judge_nodes, run_program
from ..health.config import HealthConfig
from ..health.models import CheckResult, Status
from ..health.store import MySQLStore
from .actions import ALLOW_LIST, Action
from .config import RemediateConfig
from .decide import Outcome, guard, peers_problem
from .store import RemediationStore

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 120.0


@dataclass
class Decision:
    action: str
    outcome: Outcome
    summary: str
    guardrail: str | None = None
    decision_id: int | None = None
    notified: list[ChannelResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "outcome": self.outcome.value, "guardrail": self.guardrail,
                "summary": self.summary, "id": self.decision_id,
                "notified": [{"channel": c.channel, "ok": c.ok, "reason": c.reason} for c in self.notified]}


@dataclass
class RemediationReport:
    host: str
    dry_run: bool
    decisions: list[Decision] = field(default_factory=list)
    alerts: list[AlertOutcome] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0; 2 when an attempt failed or a budget is spent (a person must look)."""
        bad = any(d.outcome is Outcome.FAILED or d.guardrail == "budget" for d in self.decisions)
        return 2 if bad else 0

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "dry_run": self.dry_run, "exit_code": self.exit_code,
                "decisions": [d.as_dict() for d in self.decisions], "alerts": [a.as_dict() for a in self.alerts]}


@dataclass
class _Acted:
    ok: bool
    summary: str
    evidence: dict[str, Any]


class Remediator:
    """The run's collaborators: ``run`` executes programs (argv, timeout), ``sleep``/``clock`` pace the waits
    for a restarted unit (tests pass their own so that no test waits on the wall clock)."""

    def __init__(self, cfg: RemediateConfig, health: HealthConfig, store: RemediationStore, channels: list[Channel],
                 *, run: Runner = run_program, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.health = health
        self.store = store
        self.channels = channels
        self.run = run
        self.sleep = sleep
        self.clock = clock

    @property
    def host(self) -> str:
        return self.health.host

    def decide(self, action: Action, now: datetime) -> Decision | None:
        """The decision for ``action`` (None: its trigger did not fire, or this evidence was already decided on)."""
        fired = action.fired_by(self.store.latest_results(
            self.host, action.triggers, now - timedelta(seconds=self.cfg.max_result_age_s)))
        if not fired:
            return None
        newest = max(r.detail["checked_at"] for r in fired)
        last = self.store.last_decided_at(self.host, action.name)
        if last is not None and last >= newest:
            log.info("%s: the health results of %s were already decided on", action.name, newest.isoformat())
            return None
        budget = self.cfg.budget_of(action.name)
        attempts = self.store.attempts(self.host, action.name, now)
        command = action.command(self.cfg.sudo, self.cfg.systemctl)
        evidence: dict[str, Any] = {
            "triggers": [r.as_dict() for r in fired],
            "attempts": {"last_hour": attempts.last_hour, "last_day": attempts.last_day},
            "budget": budget.model_dump(), "dry_run": self.cfg.dry_run, "scope": action.scope,
        }
        cluster = action.scope == "cluster"
        locked = False
        try:
            stop = guard(attempts, budget, cluster=False)
            if stop is None and cluster:
                if not self.cfg.dry_run:
                    locked = self.store.try_lock(self.cfg.cassandra.lock_wait_s)
                peers = self._peers_problem(now, evidence)
                stop = guard(attempts, budget, cluster=True, lock_held=None if self.cfg.dry_run else locked,
                             peers=peers)
            started = self.clock()
            guardrail = None if stop is None else stop.guardrail
            if stop is not None:
                outcome = Outcome.SKIPPED
                summary = ("dry run: " if self.cfg.dry_run else "") + f"{action.unit} not restarted: {stop.reason}"
            elif self.cfg.dry_run:
                outcome, summary = Outcome.DRY_RUN, f"dry run: would run {shlex.join(command)}"
            else:
                acted = self._act(action, command)
                evidence |= acted.evidence
                outcome, summary = (Outcome.ACTED if acted.ok else Outcome.FAILED), acted.summary
            duration_ms = int((self.clock() - started) * 1000)
        finally:
            if locked:
                self.store.unlock()
        decision_id = self.store.record(
            decided_at=now, host=self.host, action=action.name, target=action.unit,
            trigger_key=",".join(f"{r.component}:{r.check_name}" for r in fired),
            outcome=outcome, guardrail=guardrail, dry_run=self.cfg.dry_run, summary=summary,
            command=shlex.join(command), duration_ms=None if outcome is Outcome.SKIPPED else duration_ms,
            evidence=evidence,
        )
        log.warning("%s on %s: %s: %s", action.name, self.host, outcome.value, summary)
        return Decision(action.name, outcome, summary, guardrail, decision_id)

    def _peers_problem(self, now: datetime, evidence: dict[str, Any]) -> str | None:
        guard_cfg = self.cfg.cassandra
        reports = self.store.peer_reports(guard_cfg.peers, now - timedelta(seconds=guard_cfg.peer_max_age_s), now)
        evidence["peers"] = {p: (r.as_dict() if r else None) for p, r in reports.items()}
        return peers_problem(reports, guard_cfg.peers, guard_cfg.self_address, self.health.cassandra.expected_nodes,
                             guard_cfg.peer_max_age_s)

    def _run(self, argv: Sequence[str], timeout: float) -> CommandOutput | str:
        try:
            return self.run(argv, timeout)
        except CommandFailed as exc:
            return str(exc)

    def _act(self, action: Action, command: list[str]) -> _Acted:
        out = self._run(command, COMMAND_TIMEOUT_S)
        evidence: dict[str, Any] = {"command": command}
        if isinstance(out, str) or out.returncode != 0:
            why = out if isinstance(out, str) else f"exit {out.returncode}: {out.first_error_line}"
            evidence["command_error"] = why
            return _Acted(False, f"{shlex.join(command)} failed: {why}", evidence)
        if action.scope == "cluster":
            ok, seen, waited = self._wait(self._cluster_up, self.cfg.cassandra.up_timeout_s,
                                          self.cfg.cassandra.poll_s)
            what = "every node UN"
        else:
            ok, seen, waited = self._wait(lambda: self._unit_active(action.unit), self.cfg.unit_up_timeout_s, 2.0)
            what = f"{action.unit} active"
        evidence |= {"waited_s": round(waited, 1), "last_seen": seen}
        if ok:
            return _Acted(True, f"{action.unit} restarted: {what} after {waited:.0f} s", evidence)
        return _Acted(False, f"{action.unit} restarted but not {what} within {waited:.0f} s: {seen}", evidence)

    def _wait(self, probe: Callable[[], tuple[bool, str]], timeout: float, poll: float) -> tuple[bool, str, float]:
        start = self.clock()
        while True:
            ok, seen = probe()
            waited = self.clock() - start
            if ok or waited >= timeout:
                return ok, seen, waited
            self.sleep(min(poll, max(0.0, timeout - waited)))

    def _unit_active(self, unit: str) -> tuple[bool, str]:
        out = self._run([self.cfg.systemctl, "is-active", unit], 15.0)
        if isinstance(out, str):
            return False, out
        state = out.stdout.strip() or out.first_error_line
        return state == "active", state

    def _cluster_up(self) -> tuple[bool, str]:
        """Every node UN, as the health check judges the local ``nodetool status`` (the one parser)."""
        cas = self.health.cassandra
        out = self._run([*cas.nodetool, "status"], cas.command_timeout_s)
        if isinstance(out, str):
            return False, out
        if out.returncode != 0:
            return False, f"nodetool status: {out.first_error_line}"
        judged = judge_nodes(out.stdout, cas.expected_nodes, self.host)
        return judged.status is Status.OK, judged.summary

    def notify(self, decision: Decision, now: datetime) -> None:
        """Every decision but a spent budget goes to the channels (that one opens a critical alert instead)."""
        if decision.guardrail == "budget":
            return
        severity = "critical" if decision.outcome is Outcome.FAILED else "warning"
        note = Notification(
            event="remediation", alert_key=f"remediation:{decision.action}:{self.host}", component="remediation",
            check_name=decision.action, host=self.host, severity=severity, status=decision.outcome.value,
            summary=decision.summary, first_seen_at=now, at=now,
            detail={"decision_id": decision.decision_id, "outcome": decision.outcome.value,
                    "guardrail": decision.guardrail, "dry_run": self.cfg.dry_run},
        )
        decision.notified = send_all(self.channels, note)


def _alert_result(host: str, action: str, decision: Decision | None) -> CheckResult:
    if decision is None:
        return CheckResult("remediation", action, host, Status.OK, "not needed")
    bad = decision.outcome is Outcome.FAILED or decision.guardrail == "budget"
    return CheckResult("remediation", action, host, Status.CRITICAL if bad else Status.OK, decision.summary, None,
                       {"decision_id": decision.decision_id, "outcome": decision.outcome.value,
                        "guardrail": decision.guardrail})


def run_remediation(cfg: RemediateConfig, health: HealthConfig, *, run: Runner = run_program,
                    channels: list[Channel] | None = None, now: datetime | None = None,
                    sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> RemediationReport:
    now = datetime.now(UTC) if now is None else now
    report = RemediationReport(health.host, cfg.dry_run)
    chans = build_channels(health.alerting, health.host) if channels is None else channels
    conn = mysqlconn.connect(health.mysql.defaults_file, connect_timeout=health.mysql.connect_timeout_s)
    try:
        remediator = Remediator(cfg, health, RemediationStore(conn), chans, run=run, sleep=sleep, clock=clock)
        results = []
        for name in cfg.actions:
            decision = remediator.decide(ALLOW_LIST[name], now)
            if decision is not None:
                if health.alerting.enabled:
                    remediator.notify(decision, now)
                report.decisions.append(decision)
            results.append(_alert_result(health.host, name, decision))
        if results:
            # The health agent's alert state machine, at once (one result is enough): a spent budget or a failed
            # attempt opens a critical alert, which resolves when the action is no longer needed or worked.
            store = MySQLStore(conn)
            store.record_results(results, now)
            if health.alerting.enabled:
                per_check = dict(health.alerting.per_check) | {"remediation": 1}
                settings = health.alerting.model_copy(update={"per_check": per_check})
                report.alerts = AlertEngine(store, chans, settings).process(results, now)
        return report
    finally:
        conn.close()
