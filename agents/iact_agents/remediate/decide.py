"""The guardrails, as pure functions of what the store read: budgets, the other nodes' ``UN``, the lock.

:func:`guard` says whether an action whose trigger fired may act, and if not, which guardrail stopped it.
The runner (:mod:`.runner`) reads the inputs, takes the lock, acts or not, and records the decision.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .config import Budget

Guardrail = Literal["budget", "lock", "peers"]


class Outcome(enum.StrEnum):
    ACTED = "acted"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Attempts:
    """Acted or failed decisions of one action on one host (dry runs and skips do not count)."""

    last_hour: int
    last_day: int


def over_budget(attempts: Attempts, budget: Budget) -> str | None:
    """Why the budget forbids another attempt, or None."""
    if attempts.last_hour >= budget.per_hour:
        return f"budget spent: {attempts.last_hour} attempt(s) in the last hour (at most {budget.per_hour})"
    if attempts.last_day >= budget.per_day:
        return f"budget spent: {attempts.last_day} attempt(s) in the last 24 h (at most {budget.per_day})"
    return None


@dataclass(frozen=True)
class PeerReport:
    """The newest ``cassandra:nodes_up`` result another node's health agent recorded."""

    host: str
    status: str
    age_s: float
    nodes: Mapping[str, str] | None
    """Address -> the two letters of ``nodetool status`` (as ``health.checks.judge_nodes`` stored them, from the
    one nodetool parser); None when the result holds no node list (nodetool failed there)."""
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "status": self.status, "age_s": round(self.age_s, 1),
                "nodes": None if self.nodes is None else dict(self.nodes), "summary": self.summary}


def nodes_of(detail: Any) -> dict[str, str] | None:
    """The ``nodes`` map of a stored ``cassandra:nodes_up`` detail (any value: total); None if there is none."""
    if not isinstance(detail, Mapping):
        return None
    nodes = detail.get("nodes")
    if not isinstance(nodes, Mapping) or not nodes:
        return None
    return {str(k): str(v) for k, v in nodes.items()}


def peers_problem(reports: Mapping[str, PeerReport | None], peers: Sequence[str], self_address: str,
                  expected_nodes: int, max_age_s: float) -> str | None:
    """Why the other nodes do not allow touching this one, or None when every peer recently saw every node but
    this one ``UN``. Fails closed: no peers configured, a peer without a fresh report, a report without a node
    list, a ring shorter than ``expected_nodes`` are all refusals."""
    if not peers:
        return "no peer nodes configured: cannot tell whether the other nodes are UN"
    problems = []
    for peer in peers:
        report = reports.get(peer)
        if report is None:
            problems.append(f"{peer}: no cassandra:nodes_up recorded in the last {max_age_s:.0f} s")
            continue
        if report.nodes is None:
            problems.append(f"{peer}: could not list the ring ({report.summary})")
            continue
        if len(report.nodes) < expected_nodes:
            problems.append(f"{peer}: {len(report.nodes)} of {expected_nodes} nodes in the ring")
        bad = sorted(f"{addr} {code}" for addr, code in report.nodes.items() if addr != self_address and code != "UN")
        if bad:
            problems.append(f"{peer} sees {', '.join(bad)}")
    return "; ".join(problems) or None


@dataclass(frozen=True)
class Stop:
    guardrail: Guardrail
    reason: str


def guard(attempts: Attempts, budget: Budget, *, cluster: bool, lock_held: bool | None = None,
          peers: str | None = None) -> Stop | None:
    """The first guardrail that stops an action, or None when it may act (or, in a dry run, would act).

    Order: the budget (a spent budget stops acting and raises a critical alert), then for cluster actions the
    lock (another node is being touched) and the other nodes' ``UN``. ``lock_held`` None means the lock was not
    tried (a dry run takes no lock)."""
    spent = over_budget(attempts, budget)
    if spent:
        return Stop("budget", spent)
    if cluster:
        if lock_held is False:
            return Stop("lock", "another node's remediation holds the cluster lock")
        if peers:
            return Stop("peers", f"not every other node is UN: {peers}")
    return None


# --- evidence of the job actions (rerun_backup, repair_node) ---------------------------------------------


@dataclass(frozen=True)
class JobRun:
    """The newest ``job_runs`` row of a job on a host (``iact-agent job run``)."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    """``running``, ``success`` or ``failure``."""
    exit_code: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "started_at": self.started_at.isoformat(),
                "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
                "status": self.status, "exit_code": self.exit_code, "message": self.message}


def rerun_refusal(last: JobRun | None, decided: bool, next_run: datetime | str | None, now: datetime,
                  min_gap_s: float) -> str | None:
    """Why a backup is not run again now (None: run it): its last run must be a failure that no earlier decision
    (acted or dry run) was taken on, and cron's next run (``next_run``; a string: why it is not known) must be more
    than ``min_gap_s`` away. Fails closed: an unknown schedule is a refusal."""
    if last is None:
        return "no run of the job is recorded for this host"
    if last.status != "failure":
        return f"its newest run (started {last.started_at:%Y-%m-%d %H:%M} UTC) is {last.status}, not a failure"
    if decided:
        return f"already decided on the failed run {last.id}"
    if not isinstance(next_run, datetime):
        return f"cron's next run is not known: {next_run or 'cron has no next run of the job'}"
    gap_s = (next_run - now).total_seconds()
    if gap_s <= min_gap_s:
        return (f"cron runs it again at {next_run.isoformat()}, {gap_s / 3600:.1f} h from now"
                f" (not more than {min_gap_s / 3600:g} h)")
    return None


@dataclass(frozen=True)
class Outage:
    """The last outage of a node in one series of health results, which ended (the newest sample is up)."""

    source: str
    down_from: datetime
    """The first sample that saw it down (it may have gone down up to one check interval earlier)."""
    down_until: datetime
    """The last sample that saw it down."""
    back_at: datetime
    """The first sample that saw it up again."""
    open_start: bool
    """The series starts down: the outage began before what was read."""

    @property
    def down_s(self) -> float:
        """Seen down at least this long (the samples' span: a lower bound)."""
        return (self.down_until - self.down_from).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "down_from": self.down_from.isoformat(),
                "down_until": self.down_until.isoformat(), "back_at": self.back_at.isoformat(),
                "down_s": round(self.down_s), "open_start": self.open_start}


def last_outage(source: str, samples: Sequence[tuple[datetime, bool]]) -> Outage | None:
    """The last run of down samples (``(checked_at, up)``) followed by up samples up to the newest; None when the
    newest sample is down (not back yet) or nothing was down."""
    ordered = sorted(samples, key=lambda s: s[0])
    if not ordered or not ordered[-1][1]:
        return None
    i = len(ordered) - 1
    while i >= 0 and ordered[i][1]:
        i -= 1
    if i < 0:
        return None
    back_at, down_until = ordered[i + 1][0], ordered[i][0]
    while i >= 0 and not ordered[i][1]:
        i -= 1
    return Outage(source, ordered[i + 1][0], down_until, back_at, i < 0)


def outage_refusal(outages: Sequence[Outage | None], window_s: float) -> tuple[Outage | None, str | None]:
    """The longest ended outage of the node among the series (its own service, each peer's view of it), and why it
    does not call for a repair (None: it was seen down longer than ``window_s``, the hint window)."""
    seen = [o for o in outages if o is not None]
    if not seen:
        return None, "no ended outage of this node in the health results read"
    longest = max(seen, key=lambda o: o.down_s)
    if longest.down_s <= window_s:
        return longest, (f"down at most {longest.down_s / 3600:.1f} h as seen by {longest.source}, within the hint"
                         f" window ({window_s / 3600:g} h): the hints replay the missed writes")
    return longest, None


def repaired_refusal(outage: Outage, repairs: Sequence[JobRun], decided: bool) -> str | None:
    """Why the node needs no repair after ``outage`` (None: it does): a repair run recorded since it came back
    (running or successful), or an earlier decision (acted or dry run) on this outage."""
    done = [r for r in repairs if r.started_at >= outage.back_at and r.status in ("running", "success")]
    if done:
        return f"repair run {done[0].id} ({done[0].status}) started since it came back at {outage.back_at.isoformat()}"
    if decided:
        return f"already decided on the outage that ended at {outage.back_at.isoformat()}"
    return None
