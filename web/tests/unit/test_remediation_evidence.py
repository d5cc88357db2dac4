"""The remediation page's one-line evidence (total over whatever JSON the agent stored) and its outcome cell."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from iact_web.ops.service import _json, evidence_summary
from iact_web.ops.tables import remediations_table

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["triggers", "attempts", "budget", "peers", "command_error", "waited_s", "other"])


def _row(**over: Any) -> dict[str, Any]:
    row = {"decided_at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC), "host": "cass1", "action": "restart_cassandra",
           "target": "cassandra.service", "outcome": "skipped", "guardrail": "peers", "dry_run": False,
           "summary": "cass2 is not UN", "evidence_summary": "", "trigger_key": "cassandra:process",
           "command": "sudo -n systemctl restart cassandra.service", "duration_ms": None}
    return row | over


def test_the_evidence_of_a_cluster_skip_in_one_line() -> None:
    evidence = {
        "triggers": [{"component": "cassandra", "check": "process", "status": "critical",
                      "summary": "cassandra is not running\n  (exit 1)"}],
        "attempts": {"last_hour": 0, "last_day": 1}, "budget": {"per_hour": 1, "per_day": 3},
        "peers": {"cass2": {"status": "critical", "age_s": 40.0}, "cass3": None},
        "dry_run": False, "scope": "cluster",
    }
    assert evidence_summary(evidence) == (
        "fired by cassandra:process critical (cassandra is not running (exit 1)); "
        "attempts 0 in the last hour, 1 in the day (budget 1/h, 3/day); peers cass2 critical, cass3 no report")


def test_what_acting_left_behind() -> None:
    assert evidence_summary({"command_error": "exit 5: Unit not found", "waited_s": 30.0}) == \
        "command error: exit 5: Unit not found; waited 30.0 s"


def test_unknown_shapes_show_their_raw_text() -> None:
    assert evidence_summary({"something": "new"}) == '{"something": "new"}'
    assert evidence_summary(None) == ""
    assert evidence_summary([1, 2]) == "[1, 2]"
    # A stored value that is not JSON at all (read back by the page's total loads) is shown raw too.
    assert evidence_summary(_json("{not json")) == '{"raw": "{not json"}'
    # Counts that are not numbers are left out, not printed as if they were.
    assert evidence_summary({"attempts": {"last_hour": "1", "last_day": True}}) == \
        '{"attempts": {"last_day": true, "last_hour": "1"}}'


@given(st.dictionaries(KEYS, JSON, max_size=6) | JSON)
def test_any_stored_evidence_gives_one_bounded_line(evidence: Any) -> None:
    text = evidence_summary(evidence)
    assert isinstance(text, str) and len(text) <= 400 and "\n" not in text


@given(st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")))
def test_any_stored_text_reads_back(raw: str) -> None:
    assert isinstance(evidence_summary(_json(raw)), str)


def test_a_skip_names_its_guardrail_and_the_csv_keeps_the_text() -> None:
    table = remediations_table([_row(), _row(outcome="acted", guardrail=None, duration_ms=900),
                                _row(outcome="skipped", guardrail=None)])
    cells = table.cells()
    outcome = table.headers().index("Outcome")
    assert [line[outcome].text for line in cells] == ["skipped (peers)", "acted", "skipped"]
    assert all(line[outcome].kind == "status" for line in cells)
    assert json.loads(json.dumps(table.records(), default=str))[1]["duration_ms"] == 900
    assert table.csv_text().splitlines()[0].startswith("decided_at,host,action,target,outcome,dry_run,summary")
    assert remediations_table([]).empty.startswith("No remediation decision recorded")
