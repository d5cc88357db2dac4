"""Unit tests of the canary rollout's pure decisions (drill/rollout.py): waves, rollback, pruning."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "drill"))
os.environ.setdefault("IACT_PYINFRA_INVENTORY_SKIP", "1")

import rollout
from rollout import HostResult, decide, plan_waves, prunable

LAB = ["mysql1", "cass1", "cass2", "cass3", "backup1"]


def test_lab_waves_canary_then_a_quarter_then_the_rest():
    assert plan_waves(LAB, "backup1") == [["backup1"], ["mysql1"], ["cass1", "cass2", "cass3"]]


def test_default_canary_is_the_first_host():
    assert plan_waves(["a", "b", "c", "d", "e", "f", "g", "h", "i"]) == [
        ["a"], ["b", "c"], ["d", "e", "f", "g", "h", "i"]]


def test_small_fleets_drop_empty_waves():
    assert plan_waves([]) == []
    assert plan_waves(["a"]) == [["a"]]
    assert plan_waves(["a", "b"]) == [["a"], ["b"]]


def test_unknown_canary_is_refused():
    with pytest.raises(ValueError, match="not one of the hosts"):
        plan_waves(LAB, "web9")


@given(st.lists(st.text(min_size=1, max_size=5), max_size=40), st.data())
def test_waves_cover_every_host_once_canary_alone_first(hosts, data):
    unique = list(dict.fromkeys(hosts))
    canary = data.draw(st.sampled_from(unique)) if unique else None
    waves = plan_waves(hosts, canary)
    flat = [h for w in waves for h in w]
    assert sorted(flat) == sorted(unique)
    assert all(waves)
    if unique:
        assert waves[0] == [canary]
        assert len(waves) <= 3
    if len(unique) > 1:
        assert len(waves[1]) == -(-(len(unique) - 1) // 4)


def ok(host: str, previous: str = "0.1.0-a") -> HostResult:
    return HostResult(host, previous=previous, switched=True, gate_ok=True)


def test_every_gate_passed_goes_on():
    d = decide([ok("a"), ok("b")])
    assert d.go_on and d.roll_back == []


def test_a_failed_canary_rolls_back_the_canary_only():
    canary = HostResult("backup1", previous="0.1.0-a", switched=True, gate_ok=False,
                        problems=["collector failed"])
    d = decide([canary])
    assert not d.go_on
    assert d.roll_back == ["backup1"]
    assert "backup1: collector failed" in d.reason


def test_a_failed_later_wave_rolls_back_every_switched_host():
    bad = HostResult("cass1", previous="0.1.0-a", switched=True, gate_ok=False, problems=["no health record"])
    d = decide([ok("backup1"), ok("mysql1"), bad])
    assert not d.go_on and d.roll_back == ["backup1", "mysql1", "cass1"]


def test_a_host_that_failed_before_its_switch_needs_no_link_back():
    upload = HostResult("cass2", previous="0.1.0-a", switched=False, problems=["cannot upload"])
    d = decide([ok("backup1"), upload])
    assert not d.go_on and d.roll_back == ["backup1"]
    assert "cass2: cannot upload" in d.reason


def test_a_host_without_previous_release_cannot_be_linked_back():
    d = decide([HostResult("new1", previous="", switched=True, gate_ok=False, problems=["x"])])
    assert not d.go_on and d.roll_back == []


def test_prune_keeps_the_newest_and_the_protected():
    assert prunable(["d", "c", "b", "a"], 2, ["d", "c"]) == ["b", "a"]
    assert prunable(["broken", "good", "old", "older"], 2, ["good", "old"]) == ["older"]
    assert prunable(["a"], 3, []) == []
    assert prunable(["a", "b"], 0, ["b"]) == ["a"]


def test_release_layout_matches_the_role():
    defaults = (Path(__file__).resolve().parents[2] / "roles/agents/defaults/main.yml").read_text()
    assert f"agents_prefix: {rollout.PREFIX}\n" in defaults
    assert f"agents_releases_keep: {rollout.KEEP}\n" in defaults
    install = (Path(__file__).resolve().parents[2] / "roles/agents/tasks/install.yml").read_text()
    assert rollout.INSTALLED in install
