"""The guardrails, as pure functions of what the store read: budgets, the other nodes' ``UN``, the lock.

:func:`guard` says whether an action whose trigger fired may act, and if not, which guardrail stopped it.
The runner (:mod:`.runner`) reads the inputs, takes the lock, acts or not, and records the decision.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
