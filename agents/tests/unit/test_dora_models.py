"""Event models and the JSON / JSON-lines parser."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from iact_agents.dora.models import Change, Deployment, Incident, parse_document, parse_events
from pydantic import ValidationError

FORMAT_MD = Path(__file__).resolve().parents[2] / "iact_agents" / "dora" / "FORMAT.md"


def deployment(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "deployment",
        "source_event_id": "d-1",
        "service": "checkout",
        "environment": "production",
        "deployed_at": "2026-11-02T10:15:00Z",
        "status": "success",
    }
    base.update(over)
    return base


def line(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


def test_example_in_format_md_parses_cleanly() -> None:
    text = FORMAT_MD.read_text(encoding="utf-8")
    example = text.split("```json", 1)[1].split("```", 1)[0]
    result = parse_events(example.splitlines())
    assert result.rejected == []
    assert [e.type for e in result.accepted] == ["change", "deployment", "incident"]


def test_offsets_are_normalised_to_utc() -> None:
    result = parse_events([line(deployment(deployed_at="2026-11-02T11:15:00+01:00"))])
    (dep,) = result.accepted
    assert isinstance(dep, Deployment)
    assert dep.deployed_at == datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
    assert dep.deployed_at.utcoffset() is not None
    assert dep.deployed_at.tzinfo is UTC


def test_naive_timestamp_is_rejected_with_line_and_field() -> None:
    naive = deployment(source_event_id="d-2", deployed_at="2026-11-02T10:15:00")
    result = parse_events([line(deployment()), line(naive)])
    assert len(result.accepted) == 1
    (rej,) = result.rejected
    assert (rej.line, rej.field) == (2, "deployed_at")
    assert "timezone" in rej.reason
    assert rej.source_event_id == "d-2"
    assert rej.event_type == "deployment"


def test_numeric_timestamp_is_rejected_not_guessed() -> None:
    result = parse_events([line(deployment(deployed_at=1_700_000_000))])
    (rej,) = result.rejected
    assert rej.field == "deployed_at"
    assert "ISO 8601" in rej.reason


def test_good_lines_survive_bad_ones_and_every_line_is_accounted_for() -> None:
    lines = [
        line(deployment(source_event_id="a")),
        "{not json",
        "",
        "[1, 2]",
        line({"source_event_id": "no-type", "service": "x"}),
        line(deployment(source_event_id="b", status="exploded")),
        line(deployment(source_event_id="c", colour="blue")),
        line(deployment(source_event_id="d")),
        "   ",
    ]
    result = parse_events(lines)
    assert [e.source_event_id for e in result.accepted] == ["a", "d"]
    got = [(r.line, r.field) for r in result.rejected]
    assert got == [(2, "(event)"), (4, "(event)"), (5, "type"), (6, "status"), (7, "colour")]
    assert result.counts() == {"read": 7, "accepted": 2, "duplicates": 0, "rejected": 5}
    assert result.rejected[0].reason.startswith("not valid JSON")
    assert result.rejected[0].raw == "{not json"


def test_all_field_errors_of_a_line_are_kept() -> None:
    result = parse_events([line(deployment(status="nope", deployed_at="yesterday"))])
    (rej,) = result.rejected
    assert {e.field for e in rej.errors} == {"status", "deployed_at"}
    assert rej.describe().endswith("(and 1 more)")


def test_repeated_event_counted_once() -> None:
    same = line(deployment())
    result = parse_events([same, same, line(deployment(deployed_at="2026-11-02T11:15:00+01:00"))])
    # The third line is the same instant written differently: the same event, so a duplicate too.
    assert len(result.accepted) == 1
    assert [(d.line, d.first_line) for d in result.duplicates] == [(2, 1), (3, 1)]
    assert result.rejected == []


def test_same_id_with_different_content_is_rejected_not_merged() -> None:
    result = parse_events([line(deployment()), line(deployment(status="rolled_back"))])
    assert len(result.accepted) == 1
    (rej,) = result.rejected
    assert (rej.line, rej.field) == (2, "source_event_id")
    assert "line 1" in rej.reason


def test_same_id_in_different_types_are_different_events() -> None:
    change = {
        "type": "change",
        "source_event_id": "d-1",
        "service": "checkout",
        "commit_sha": "abcdef1",
        "committed_at": "2026-11-01T10:00:00Z",
    }
    result = parse_events([line(deployment()), line(change)])
    assert len(result.accepted) == 2


def test_service_and_environment_are_lower_cased_and_checked() -> None:
    result = parse_events(
        [
            line(deployment(service="Checkout", environment="PRODUCTION")),
            line(deployment(source_event_id="x", service="bad name")),
        ]
    )
    (dep,) = result.accepted
    assert isinstance(dep, Deployment)
    assert (dep.service, dep.environment) == ("checkout", "production")
    assert result.rejected[0].field == "service"


def test_squash_merge_lead_time_starts_at_first_original_commit() -> None:
    squash = Change(
        source_event_id="s",
        service="checkout",
        commit_sha="ABCDEF1234",
        committed_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        authored_at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        first_commit_at=datetime(2026, 10, 30, 14, 20, tzinfo=UTC),
    )
    assert squash.lead_time_start == datetime(2026, 10, 30, 14, 20, tzinfo=UTC)
    assert squash.commit_sha == "abcdef1234"
    plain = squash.model_copy(update={"first_commit_at": None})
    assert plain.lead_time_start == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def test_models_are_immutable() -> None:
    inc = Incident(
        source_event_id="i", service="a", started_at=datetime(2026, 1, 1, tzinfo=UTC), severity="low"
    )
    with pytest.raises(ValidationError):
        inc.severity = "high"  # type: ignore[misc]


def test_incident_resolved_before_start_is_accepted_for_quality_to_report() -> None:
    obj = {
        "type": "incident",
        "source_event_id": "i",
        "service": "a",
        "started_at": "2026-01-01T10:00:00Z",
        "resolved_at": "2026-01-01T09:00:00Z",
        "severity": "low",
    }
    assert len(parse_events([line(obj)]).accepted) == 1


def test_json_array_document_uses_positions() -> None:
    doc = json.dumps(
        [
            deployment(source_event_id="a"),
            deployment(source_event_id="b", status="?"),
            deployment(source_event_id="a"),
        ]
    )
    result = parse_document(doc)
    assert [e.source_event_id for e in result.accepted] == ["a"]
    assert [(r.line, r.field) for r in result.rejected] == [(2, "status")]
    assert [(d.line, d.first_line) for d in result.duplicates] == [(3, 1)]


def test_events_wrapper_document_and_jsonl_fallback() -> None:
    wrapped = parse_document(json.dumps({"events": [deployment()]}))
    assert len(wrapped.accepted) == 1
    two_lines = line(deployment(source_event_id="a")) + "\n" + line(deployment(source_event_id="b")) + "\n"
    jsonl = parse_document(two_lines)
    assert [e.source_event_id for e in jsonl.accepted] == ["a", "b"]
    single = parse_document(line(deployment()))
    assert len(single.accepted) == 1
    broken = parse_document(json.dumps({"events": {"not": "a list"}}))
    assert [(r.line, r.field) for r in broken.rejected] == [(1, "events")]


def test_source_defaults_and_is_part_of_the_identity() -> None:
    plain = parse_events([line(deployment())])
    assert plain.accepted[0].source == "manual"
    given = parse_events([line(deployment()), line(deployment(source="Jenkins"))], default_source="github")
    assert [(e.source, e.source_event_id) for e in given.accepted] == [("github", "d-1"), ("jenkins", "d-1")]
    assert given.duplicates == []
    again = parse_events([line(deployment(source="github")), line(deployment())], default_source="github")
    assert [(d.line, d.first_line, d.source) for d in again.duplicates] == [(2, 1, "github")]
    bad = parse_events([line(deployment(source="has space", status="?"))])
    assert bad.rejected[0].source == "has space"
    assert {e.field for e in bad.rejected[0].errors} == {"source", "status"}


def test_optional_fields_shared_with_the_database_schema() -> None:
    inc = Incident.model_validate(
        {"source_event_id": "i", "service": "a", "started_at": "2026-01-01T00:00:00Z"}
    )
    assert (inc.environment, inc.severity, inc.title) == ("production", "unknown", "")
    dep = Deployment.model_validate(
        {
            "source_event_id": "d", "service": "a", "environment": "production", "status": "success",
            "deployed_at": "2026-01-01T00:10:00Z", "started_at": "2026-01-01T00:00:00Z", "commit_sha": "ABCDEF0",
        }
    )
    assert dep.commit_sha == "abcdef0"
    assert dep.started_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert dep.key == ("deployment", "manual", "d")
    with pytest.raises(ValidationError):
        Incident.model_validate(
            {"source_event_id": "i", "service": "a", "started_at": "2026-01-01T00:00:00Z", "severity": "meh"}
        )
