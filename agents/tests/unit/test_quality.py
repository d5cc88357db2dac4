"""Data quality checks, the anomaly detector and the score formula, with hand-computed expectations."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from iact_agents.dora.models import Change, Deployment, Incident, parse_events
from iact_agents.dora.store import LoadedEvents, SkippedRow
from iact_agents.quality.anomaly import daily_series, detect_anomalies, modified_z_scores
from iact_agents.quality.checks import QualityConfig, run_checks, schema_check
from iact_agents.quality.runner import run_quality
from iact_agents.quality.score import CATEGORY_WEIGHTS, CheckResult, quality_score

AS_OF = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def days(values: list[float]) -> list[tuple[date, float]]:
    return [(date(2026, 11, 1) + timedelta(days=i), v) for i, v in enumerate(values)]


# --- anomaly detection ------------------------------------------------------------------------------

def test_modified_z_score_textbook_case() -> None:
    # median 10.5; |deviations| sorted .5 .5 .5 1.5 1.5 2.5 3.5 19.5 -> MAD 1.5 (>= 0.6745: no floor)
    values = [10.0, 14.0, 8.0, 12.0, 9.0, 11.0, 10.0, 30.0]
    scores = modified_z_scores(values)
    assert scores[7] == pytest.approx(0.6745 * 19.5 / 1.5)  # 8.7685
    assert scores[1] == pytest.approx(0.6745 * 3.5 / 1.5)  # 1.5738
    result = detect_anomalies(days(values))
    assert [(p.day, p.value) for p in result.anomalies] == [(date(2026, 11, 8), 30.0)]
    assert (result.median, result.mad, result.evaluated) == (10.5, 1.5, 8)


def test_threshold_is_strict_and_configurable() -> None:
    # 1..7: median 4, MAD 2, so M(7) = 0.6745 * 3 / 2 = 1.01175 and M(1) = -1.01175.
    series = days([1, 2, 3, 4, 5, 6, 7])
    assert [p.value for p in detect_anomalies(series, threshold=1.0).anomalies] == [1.0, 7.0]
    assert detect_anomalies(series, threshold=1.02).anomalies == ()
    assert detect_anomalies(series).anomalies == ()  # default 3.5


def test_sparse_counts_use_the_one_event_floor() -> None:
    # 28 zero days, one day with 1 and one with 5: MAD 0 -> sigma floored at 1: M = 1 and 5.
    values = [0.0] * 30
    values[10], values[20] = 1.0, 5.0
    result = detect_anomalies(days(values))
    assert [(p.value, p.score) for p in result.anomalies] == [(5.0, 5.0)]
    values[20] = 3.0  # 3 events from the median day: not anomalous
    assert detect_anomalies(days(values)).anomalies == ()


def test_constant_and_short_series() -> None:
    assert detect_anomalies(days([3.0] * 10)).anomalies == ()
    short = detect_anomalies(days([0, 0, 50]))
    assert short.evaluated == 0
    assert short.skipped_reason == "fewer than 7 days in the series"


def test_daily_series_fills_gaps_and_uses_calendar_timezone() -> None:
    instants = [at(2, 23), at(3, 1), at(3, 2), at(9, 0)]  # the 9th is outside [1st, 5th)
    utc = daily_series(instants, date(2026, 11, 1), date(2026, 11, 5))
    assert utc == [(date(2026, 11, 1), 0.0), (date(2026, 11, 2), 1.0), (date(2026, 11, 3), 2.0),
                   (date(2026, 11, 4), 0.0)]
    east = daily_series(instants, date(2026, 11, 1), date(2026, 11, 5), timezone(timedelta(hours=-3)))
    assert east[1] == (date(2026, 11, 2), 3.0)  # 20:00, 22:00 and 23:00 local on the 2nd


# --- score formula ----------------------------------------------------------------------------------

def test_weights_are_documented_and_sum_to_one() -> None:
    assert CATEGORY_WEIGHTS == {"range": 0.30, "consistency": 0.25, "schema": 0.20, "anomaly": 0.15, "null": 0.10}
    assert sum(CATEGORY_WEIGHTS.values()) == pytest.approx(1.0)


def test_score_formula_hand_computed() -> None:
    results = [
        CheckResult("schema.ingest", "schema", "", 10, 1),  # 0.9
        CheckResult("null.a", "null", "", 10, 0),  # 1.0
        CheckResult("range.a", "range", "", 4, 1),  # range pooled: 9 of 10 = 0.9
        CheckResult("range.b", "range", "", 6, 0),
        CheckResult("consistency.a", "consistency", "", 0, 0),  # nothing evaluated: left out
        CheckResult("anomaly.a", "anomaly", "", 30, 3),  # 0.9
    ]
    # 100 * (0.2*0.9 + 0.1*1.0 + 0.3*0.9 + 0.15*0.9) / (0.2 + 0.1 + 0.3 + 0.15) = 100 * 0.685 / 0.75
    got = quality_score(results)
    assert got.score == 91.3
    assert "consistency" not in got.category_rates
    assert got.category_rates["range"] == pytest.approx(0.9)


def test_score_extremes() -> None:
    assert quality_score([CheckResult("range.a", "range", "", 5, 0)]).score == 100.0
    assert quality_score([CheckResult("range.a", "range", "", 5, 5)]).score == 0.0
    empty = quality_score([CheckResult("range.a", "range", "", 0, 0)])
    assert empty.score is None
    assert empty.reason == "no check evaluated any data"


# --- the checks over a data set with one planted fault per check ------------------------------------

def _dep(sid: str, when: datetime, service: str = "checkout", version: str | None = "1.0",
         changes: tuple[str, ...] = (), **over: Any) -> Deployment:
    data: dict[str, Any] = {"source_event_id": sid, "service": service, "environment": "production",
                            "deployed_at": when, "status": "success", "version": version, "change_ids": changes}
    return Deployment.model_validate({**data, **over})


def _change(sid: str, committed: datetime, service: str = "checkout", **over: Any) -> Change:
    return Change.model_validate({"source_event_id": sid, "service": service, "commit_sha": "abcdef0",
                                  "committed_at": committed, **over})


def _inc(sid: str, start: datetime, resolved: datetime | None, service: str = "checkout",
         deployment_id: str | None = None) -> Incident:
    return Incident(source_event_id=sid, service=service, started_at=start, resolved_at=resolved,
                    deployment_id=deployment_id, severity="medium")


def _dataset() -> tuple[list[Deployment], list[Change], list[Incident]]:
    deployments = [
        _dep("d1", at(10, 10), changes=("c1", "ghost")),  # 'ghost' is no known change
        _dep("d2", at(11, 10), version=None, started_at=at(11, 11)),  # no version; finished before it started
        _dep("d3", at(12, 10), service="search"),
        _dep("d4", at(5, 0, month=12)),  # in the future
        # A burst of six search deployments on the 20th: anomalous against a month of 0s and one 1.
        *[_dep(f"burst{i}", at(20, 8 + i), service="search") for i in range(6)],
    ]
    changes = [
        _change("c1", at(9), first_commit_at=at(8)),
        _change("c2", at(10, 12), deployment_id="d1"),  # committed two hours after d1 shipped it
        _change("c3", at(5), first_commit_at=at(6)),  # first commit after the merged commit; unlinked
        _change("c4", at(11, 9), service="search", deployment_id="d2"),  # shipped by checkout's d2
        _change("c5", at(29)),  # unlinked but within the 7-day grace period: not evaluated
        _change("C5", at(29)),  # the same id as c5 but for case: kept apart, reported as a look-alike
        _change("c6", at(1), deployment_id="nope"),  # names an unknown deployment
    ]
    incidents = [
        _inc("i1", at(10, 11), at(10, 10)),  # resolved before it started
        _inc("i2", at(12, 11), at(12, 12), service="search", deployment_id="d1"),  # other service
        _inc("i3", at(13), at(13, 1), deployment_id="missing"),  # unknown deployment
        _inc("i4", at(14), None),  # open for 16 days
        _inc("i5", at(29), None),  # open for 1.5 days: fine
    ]
    return deployments, changes, incidents


def test_every_planted_fault_is_found_and_nothing_else() -> None:
    deployments, changes, incidents = _dataset()
    report = run_checks(deployments, changes, incidents, as_of=AS_OF)
    by_name = {c.check: c for c in report.checks}
    expected = {
        # check: (evaluated, ids of failed items)
        "null.deployment_version": (10, ["d2"]),
        "null.change_deployment_link": (5, ["c3"]),
        "null.incident_resolved_at": (4, ["i4"]),
        "range.incident_resolution_after_start": (3, ["i1"]),
        "range.deployment_duration": (1, ["d2"]),
        "range.change_commit_order": (2, ["c3"]),
        "range.deployment_after_commits": (3, ["d1"]),
        "range.not_in_future": (22, ["d4"]),
        "consistency.incident_deployment_known": (2, ["i3"]),
        "consistency.incident_same_service": (1, ["i2"]),
        "consistency.incident_deployment_production": (1, []),
        "consistency.change_same_service": (3, ["c4"]),
        "consistency.deployment_changes_known": (2, ["d1"]),
        "consistency.change_deployment_known": (3, ["c6"]),
        "consistency.ids_distinct": (22, ["c5", "C5"]),
        # 30 days (Oct 31 .. Nov 29) for each of 2 services.
        "anomaly.daily_deployments": (60, ["search/2026-11-20"]),
        "anomaly.daily_incidents": (60, []),
    }
    got = {name: (c.evaluated, [f.source_event_id for f in c.findings]) for name, c in by_name.items()}
    assert got == expected
    assert all(c.failed == len(c.findings) for c in report.checks)
    assert "change 'c2'" in by_name["range.deployment_after_commits"].findings[0].message
    assert "another service (checkout)" in by_name["consistency.incident_same_service"].findings[0].message


def test_score_of_the_data_set_hand_computed() -> None:
    deployments, changes, incidents = _dataset()
    report = run_checks(deployments, changes, incidents, as_of=AS_OF)
    # null 16/19, range 26/31, consistency 27/34, anomaly 119/120, no schema check (no parse result):
    # 100 * (0.1*16/19 + 0.3*26/31 + 0.25*27/34 + 0.15*119/120) / 0.8 = 85.387... -> 85.4
    assert report.score.score == 85.4
    rates = report.score.category_rates
    assert rates == {"null": 16 / 19, "range": 26 / 31, "consistency": 27 / 34, "anomaly": 119 / 120}


def test_clean_data_scores_100() -> None:
    deployments = [_dep("d1", at(10, 10), changes=("c1",))]
    changes = [_change("c1", at(9))]
    incidents = [_inc("i1", at(10, 11), at(10, 12), deployment_id="d1")]
    report = run_checks(deployments, changes, incidents, as_of=AS_OF)
    assert report.score.score == 100.0
    assert all(c.failed == 0 for c in report.checks)


def test_schema_check_counts_rejections_but_not_duplicates() -> None:
    good = json.dumps({"type": "incident", "source_event_id": "i", "service": "a",
                       "started_at": "2026-11-01T00:00:00Z", "severity": "low"})
    parsed = parse_events([good, good, "{", good.replace('"low"', '"meh"').replace('"i"', '"j"')])
    res = schema_check(parsed)
    assert (res.evaluated, res.failed) == (3, 2)
    assert [f.source_event_id for f in res.findings] == ["line 3", "j"]
    report = run_checks([], [], [], as_of=AS_OF, parsed=parsed)
    assert report.checks[0].check == "schema.ingest"
    assert report.score.category_rates["schema"] == pytest.approx(1 / 3)


def test_as_of_must_be_aware_and_config_is_honoured() -> None:
    deployments, changes, incidents = _dataset()
    with pytest.raises(ValueError, match="timezone-aware"):
        run_checks(deployments, changes, incidents, as_of=datetime(2026, 11, 30))
    lenient = QualityConfig(stale_incident_after=timedelta(days=30))
    report = run_checks(deployments, changes, incidents, as_of=AS_OF, config=lenient)
    stale = next(c for c in report.checks if c.check == "null.incident_resolved_at")
    assert (stale.evaluated, stale.failed) == (0, 0)


def test_links_to_non_production_and_ambiguous_deployments_are_reported() -> None:
    deployments = [
        _dep("stg", at(10), environment="staging"),
        _dep("broken", at(10, 1), status="failed"),
        _dep("twin", at(10, 2), source="github"),
        _dep("twin", at(10, 3), source="jenkins"),
    ]
    incidents = [
        _inc("a", at(10, 5), at(10, 6), deployment_id="stg"),
        _inc("b", at(10, 5), at(10, 6), deployment_id="broken"),
        _inc("c", at(10, 5), at(10, 6), deployment_id="twin"),  # source "manual": ambiguous
    ]
    changes = [_change("x", at(9), deployment_id="twin")]
    by_name = {c.check: c for c in run_checks(deployments, changes, incidents, as_of=AS_OF).checks}
    prod = by_name["consistency.incident_deployment_production"]
    assert [f.source_event_id for f in prod.findings] == ["a", "b"]
    assert "environment staging" in prod.findings[0].message
    assert "status failed" in prod.findings[1].message
    known = by_name["consistency.incident_deployment_known"]
    assert [f.source_event_id for f in known.findings] == ["c"]
    assert "ambiguous" in known.findings[0].message
    assert [f.source_event_id for f in by_name["consistency.change_deployment_known"].findings] == ["x"]
    assert by_name["consistency.incident_deployment_known"].dataset == "incidents"


def test_ids_that_differ_only_in_case_accents_or_invisible_characters_are_reported() -> None:
    # Kept apart since migration 0013 (exact ids); the old collation had merged each pair into one row.
    deployments = [_dep("Deploy-A", at(10)), _dep("deploy-a", at(10, 1)), _dep("café", at(10, 2)),
                   _dep("cafe", at(10, 3)), _dep("zw\u200bid", at(10, 4)), _dep("zwid", at(10, 5)),
                   _dep("deploy-a", at(10, 6), source="github"),  # another source: its own namespace
                   _dep("solo", at(10, 7))]
    changes = [_change("SOLO", at(9))]  # another type: its own namespace
    by_name = {c.check: c for c in run_checks(deployments, changes, [], as_of=AS_OF).checks}
    check = by_name["consistency.ids_distinct"]
    assert (check.evaluated, check.category) == (9, "consistency")
    assert [f.source_event_id for f in check.findings] == ["Deploy-A", "deploy-a", "café", "cafe", "zw\u200bid",
                                                           "zwid"]
    assert "'Deploy-A', 'deploy-a'" in check.findings[0].message


def test_stored_rows_that_compute_skipped_fail_their_check() -> None:
    good = _inc("i1", at(10), at(10, 1))
    skipped = SkippedRow("incidents", 42, "manual", "go-zero", "checkout",
                         "started_at: Value error, outside the storable range 1970-01-01 .. 2200-01-01 UTC")
    report = run_quality(LoadedEvents([], [], [good], skipped_rows=[skipped]), AS_OF)
    check = next(c for c in report.checks if c.check == "schema.stored_rows")
    assert (check.evaluated, check.failed, check.category) == (2, 1, "schema")
    (finding,) = check.findings
    assert (finding.event_type, finding.source_event_id, finding.service) == ("incident", "go-zero", "checkout")
    assert finding.message.startswith("incidents row 42: started_at: ")
    # schema pools schema.ingest (1 stored event, no dead letter: 1 of 1) and schema.stored_rows (1 of 2).
    assert report.score.category_rates["schema"] == 2 / 3
