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
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from .. import mysqlconn
from ..health.alerting import AlertEngine, AlertOutcome, send_all
from ..health.channels import Channel, ChannelResult, Notification, build_channels
from ..health.checks import CommandFailed, CommandOutput, Runner, judge_nodes, run_program
from ..health.config import HealthConfig
from ..health.models import CheckResult, Status
from ..health.store import MySQLStore
from .actions import ALLOW_LIST, CASSANDRA_UNIT, IACT_AGENT, NEXT_RUN_MIN_S, OUTAGE_LOOKBACK_S, Action
from .config import RemediateConfig
from .cronsched import find_entry, next_run
from .decide import (
    Outcome,
    guard,
    last_outage,
    nodes_of,
    outage_refusal,
    peers_problem,
    repaired_refusal,
    rerun_refusal,
)
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


def read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def local_zone() -> tzinfo:
    """The host's time zone, in which cron reads its entries."""
    zone = datetime.now().astimezone().tzinfo
    return UTC if zone is None else zone


class Remediator:
    """The run's collaborators: ``run`` executes programs (argv, timeout), ``sleep``/``clock`` pace the waits
    for a restarted unit, ``read`` reads an installed cron file and ``tz`` is the zone cron runs in (tests pass
    their own so that no test waits on the wall clock or needs /etc/cron.d)."""

    def __init__(self, cfg: RemediateConfig, health: HealthConfig, store: RemediationStore, channels: list[Channel],
                 *, run: Runner = run_program, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, read: Callable[[str], str] = read_text,
                 tz: tzinfo | None = None) -> None:
        self.cfg = cfg
        self.health = health
        self.store = store
        self.channels = channels
        self.run = run
        self.sleep = sleep
        self.clock = clock
        self.read = read
        self.tz = local_zone() if tz is None else tz

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
        found, refusal = self._evidence(action, now)
        if refusal is not None:
            log.info("%s: not needed: %s", action.name, refusal)
            return None
        budget = self.cfg.budget_of(action.name)
        attempts = self.store.attempts(self.host, action.name, now)
        command = action.command(self.cfg.sudo)
        evidence: dict[str, Any] = found | {
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
                verb = "started" if action.then == "started" else "restarted"
                summary = ("dry run: " if self.cfg.dry_run else "") + f"{action.target} not {verb}: {stop.reason}"
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
            decided_at=now, host=self.host, action=action.name, target=action.target,
            trigger_key=",".join(f"{r.component}:{r.check_name}" for r in fired),
            outcome=outcome, guardrail=guardrail, dry_run=self.cfg.dry_run, summary=summary,
            command=shlex.join(command), duration_ms=None if outcome is Outcome.SKIPPED else duration_ms,
            evidence=evidence,
        )
        log.warning("%s on %s: %s: %s", action.name, self.host, outcome.value, summary)
        return Decision(action.name, outcome, summary, guardrail, decision_id)

    def _evidence(self, action: Action, now: datetime) -> tuple[dict[str, Any], str | None]:
        """What an action needs besides its trigger, and why it is not needed (None: it is)."""
        if action.evidence == "last_backup_failed":
            return self._backup_failed(action, now)
        if action.evidence == "outage_over_hint_window":
            return self._long_outage(action, now)
        return {}, None

    def _backup_failed(self, action: Action, now: datetime) -> tuple[dict[str, Any], str | None]:
        runs = self.store.job_runs(self.host, action.target)
        last = runs[0] if runs else None
        decided = last is not None and self.store.decided_since(self.host, action.name,
                                                               last.finished_at or last.started_at)
        upcoming = self._next_run(action, now)
        if isinstance(upcoming, str):  # the installed entry is not what the allow-list runs: someone must look
            log.warning("%s: cron's next run is not known: %s", action.name, upcoming)
        evidence = {"last_run": None if last is None else last.as_dict(), "cron_file": action.cron_file,
                    "next_run": upcoming.isoformat() if isinstance(upcoming, datetime) else upcoming}
        return evidence, rerun_refusal(last, decided, upcoming, now, NEXT_RUN_MIN_S)

    def _next_run(self, action: Action, now: datetime) -> datetime | str | None:
        """Cron's next run of the action's job, from the installed entry, which must run the allow-list's command."""
        try:
            text = self.read(action.cron_file)
        except OSError as exc:
            return f"{action.cron_file}: {exc.strerror or exc}"
        entry = find_entry(text, action.target)
        if isinstance(entry, str):
            return f"{action.cron_file}: {entry}"
        ours = list(action.argv[action.argv.index(IACT_AGENT):])
        if entry.user != "root" or entry.argv[1:] != ours[1:]:
            return (f"{action.cron_file} runs {entry.user}: {shlex.join(entry.argv)[:200]}, not the allow-list's"
                    f" root: {shlex.join(ours)}")
        return next_run(entry.schedule, now, self.tz)

    def _long_outage(self, action: Action, now: datetime) -> tuple[dict[str, Any], str | None]:
        """This node's last outage, from its own ``service:cassandra.service`` results and each peer's
        ``cassandra:nodes_up`` view of it (which also covers a host that was down with its health agent)."""
        since = now - timedelta(seconds=OUTAGE_LOOKBACK_S)
        # a result without the unit's state (systemctl itself failed) tells nothing either way
        own = [(at, detail["state"] == "active")
               for at, _, detail in self.store.series(self.host, "service", CASSANDRA_UNIT, since)
               if isinstance(detail.get("state"), str)]
        outages = [last_outage(f"{self.host} service:{CASSANDRA_UNIT}", own)]
        address = self.cfg.cassandra.self_address
        for peer in self.cfg.cassandra.peers:
            seen = []
            for at, _, detail in self.store.series(peer, "cassandra", "nodes_up", since):
                nodes = nodes_of(detail)
                if nodes is not None and address in nodes:
                    seen.append((at, nodes[address] == "UN"))
            outages.append(last_outage(f"{peer} cassandra:nodes_up", seen))
        window_s = self.cfg.cassandra.hint_window_s
        longest, refusal = outage_refusal(outages, window_s)
        evidence: dict[str, Any] = {"outages": [o.as_dict() for o in outages if o is not None],
                                    "hint_window_s": window_s}
        if refusal is not None or longest is None:
            return evidence, refusal
        repairs = self.store.job_runs(self.host, action.target, since=longest.back_at, limit=5)
        evidence["repairs_since_back"] = [r.as_dict() for r in repairs]
        return evidence, repaired_refusal(longest, repairs, self.store.decided_since(self.host, action.name,
                                                                                     longest.back_at))

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
        if action.then == "started":
            unit = action.argv[action.argv.index("--unit") + 1]
            evidence["transient_unit"] = unit
            return _Acted(True, f"job {action.target} started as {unit} (its outcome: job_runs, journal of {unit})",
                          evidence)
        if action.then == "cluster_up":
            ok, seen, waited = self._wait(self._cluster_up, self.cfg.cassandra.up_timeout_s,
                                          self.cfg.cassandra.poll_s)
            what = "every node UN"
        else:
            ok, seen, waited = self._wait(lambda: self._unit_active(action.target), self.cfg.unit_up_timeout_s, 2.0)
            what = f"{action.target} active"
        evidence |= {"waited_s": round(waited, 1), "last_seen": seen}
        if ok:
            return _Acted(True, f"{action.target} restarted: {what} after {waited:.0f} s", evidence)
        return _Acted(False, f"{action.target} restarted but not {what} within {waited:.0f} s: {seen}", evidence)

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
                    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                    read: Callable[[str], str] = read_text, tz: tzinfo | None = None) -> RemediationReport:
    now = datetime.now(UTC) if now is None else now
    report = RemediationReport(health.host, cfg.dry_run)
    chans = build_channels(health.alerting, health.host) if channels is None else channels
    conn = mysqlconn.connect(health.mysql.defaults_file, connect_timeout=health.mysql.connect_timeout_s)
    try:
        remediator = Remediator(cfg, health, RemediationStore(conn), chans, run=run, sleep=sleep, clock=clock,
                                read=read, tz=tz)
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
