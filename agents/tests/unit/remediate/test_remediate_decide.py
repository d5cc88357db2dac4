"""The guardrails as pure functions: budgets, the other nodes' UN (from the nodetool output the health check
stored, read with the one parser), the lock, and their order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iact_agents.health.checks import judge_nodes
from iact_agents.remediate.config import Budget
from iact_agents.remediate.decide import Attempts, PeerReport, guard, nodes_of, over_budget, peers_problem

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "health"
SELF = "172.18.0.4"  # the address of status_1down.txt's down node


def stored_detail(fixture: str) -> dict[str, Any]:
    """The detail the health check records for ``cassandra:nodes_up`` from real captured output."""
    return dict(judge_nodes((FIXTURES / fixture).read_text(), 3, "peer").detail)


def report(host: str, fixture: str | None, summary: str = "") -> PeerReport:
    nodes = nodes_of(stored_detail(fixture)) if fixture else None
    return PeerReport(host, "ok", 30.0, nodes, summary)


@pytest.mark.parametrize(("hour", "day", "spent"), [
    (0, 0, False), (0, 2, False), (1, 1, True), (0, 3, True), (1, 3, True),
])
def test_budget_default_is_one_an_hour_and_three_a_day(hour: int, day: int, spent: bool) -> None:
    assert (over_budget(Attempts(hour, day), Budget()) is not None) is spent


def test_budget_zero_never_acts() -> None:
    assert over_budget(Attempts(0, 0), Budget(per_hour=0, per_day=0)) is not None


def test_down_node_fixture_is_what_the_guard_reads() -> None:
    nodes = nodes_of(stored_detail("status_1down.txt"))
    assert nodes is not None and nodes[SELF] == "DN"
    assert sorted(code for addr, code in nodes.items() if addr != SELF) == ["UN", "UN"]


def test_peers_allow_when_only_this_node_is_down() -> None:
    reports = {"p1": report("p1", "status_1down.txt"), "p2": report("p2", "status_1down.txt")}
    assert peers_problem(reports, ["p1", "p2"], SELF, 3, 600) is None


def test_peers_refuse_when_another_node_is_down() -> None:
    other = "172.18.0.2"
    reports = {"p1": report("p1", "status_1down.txt"), "p2": report("p2", "status_1down.txt")}
    problem = peers_problem(reports, ["p1", "p2"], other, 3, 600)
    assert problem is not None and f"{SELF} DN" in problem


def test_peers_refuse_a_joining_node() -> None:
    reports = {"p1": report("p1", "status_joining.txt")}
    problem = peers_problem(reports, ["p1"], "203.0.113.9", 3, 600)
    assert problem is not None and "UJ" in problem


@pytest.mark.parametrize(("reports", "peers", "expect"), [
    ({}, [], "no peer nodes configured"),
    ({"p1": None}, ["p1"], "p1: no cassandra:nodes_up recorded in the last 600 s"),
    ({}, ["p1"], "p1: no cassandra:nodes_up"),
    ({"p1": PeerReport("p1", "critical", 5, None, "nodetool status failed: connection refused")}, ["p1"],
     "p1: could not list the ring (nodetool status failed: connection refused)"),
    ({"p1": PeerReport("p1", "critical", 5, {"10.0.0.1": "UN", "10.0.0.2": "UN"}, "")}, ["p1"],
     "p1: 2 of 3 nodes in the ring"),
])
def test_peers_fail_closed(reports: dict[str, PeerReport | None], peers: list[str], expect: str) -> None:
    problem = peers_problem(reports, peers, "10.0.0.3", 3, 600)
    assert problem is not None and expect in problem


def test_every_peer_must_agree() -> None:
    reports = {"p1": report("p1", "status_3up.txt"), "p2": None}
    assert peers_problem(reports, ["p1", "p2"], SELF, 3, 600) == "p2: no cassandra:nodes_up recorded in the last 600 s"


def test_guard_order_budget_then_lock_then_peers() -> None:
    spent, fresh = Attempts(1, 1), Attempts(0, 0)
    stop = guard(spent, Budget(), cluster=True, lock_held=False, peers="p1 sees x DN")
    assert stop is not None and stop.guardrail == "budget"
    stop = guard(fresh, Budget(), cluster=True, lock_held=False, peers="p1 sees x DN")
    assert stop is not None and stop.guardrail == "lock"
    stop = guard(fresh, Budget(), cluster=True, lock_held=True, peers="p1 sees x DN")
    assert stop is not None and stop.guardrail == "peers"
    assert guard(fresh, Budget(), cluster=True, lock_held=True, peers=None) is None


def test_dry_run_takes_no_lock_but_still_checks_the_peers() -> None:
    assert guard(Attempts(0, 0), Budget(), cluster=True, lock_held=None, peers=None) is None
    stop = guard(Attempts(0, 0), Budget(), cluster=True, lock_held=None, peers="p1 sees x DN")
    assert stop is not None and stop.guardrail == "peers"


def test_host_actions_ignore_lock_and_peers() -> None:
    assert guard(Attempts(0, 0), Budget(), cluster=False, lock_held=False, peers="anything") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_nodes_of_is_total(detail: Any) -> None:
    nodes = nodes_of(detail)
    assert nodes is None or all(isinstance(k, str) and isinstance(v, str) for k, v in nodes.items())


@given(st.dictionaries(st.text(max_size=8), st.none() | st.builds(
    PeerReport, st.text(max_size=8), st.text(max_size=8), st.floats(0, 1e6),
    st.none() | st.dictionaries(st.text(max_size=15), st.text(max_size=3), max_size=4), st.text(max_size=20)),
    max_size=3), st.lists(st.text(max_size=8), max_size=3), st.text(max_size=15))
def test_peers_problem_is_total_and_never_allows_without_every_peer(
        reports: dict[str, PeerReport | None], peers: list[str], self_address: str) -> None:
    problem = peers_problem(reports, peers, self_address, 3, 600)
    if problem is None:
        assert peers and all(reports.get(p) is not None for p in peers)
        for p in peers:
            nodes = reports[p].nodes  # type: ignore[union-attr]
            assert nodes is not None and len(nodes) >= 3
            assert all(code == "UN" for addr, code in nodes.items() if addr != self_address)
