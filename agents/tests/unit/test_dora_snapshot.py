"""Snapshot rows for the dora_metrics table: window per computation day, units, classes, one row per key."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from iact_agents.dora.metrics import ALL_SERVICES, MetricsInputError
from iact_agents.dora.models import Change, Deployment, Incident
from iact_agents.dora.snapshot import snapshot_rows, snapshot_window

DAY = date(2026, 11, 30)


def data() -> tuple[list[Deployment], list[Change], list[Incident]]:
    deployments = [
        Deployment(source_event_id="d1", service="checkout", environment="production",
                   deployed_at=datetime(2026, 11, 10, 10, 0, tzinfo=UTC), status="success", change_ids=("c1",)),
    ]
    changes = [
        Change(source_event_id="c1", service="checkout", commit_sha="abcdef1",
               committed_at=datetime(2026, 11, 10, 8, 30, tzinfo=UTC)),
    ]
    incidents = [
        Incident(source_event_id="i1", service="checkout", started_at=datetime(2026, 11, 10, 11, 0, tzinfo=UTC),
                 resolved_at=datetime(2026, 11, 10, 11, 45, tzinfo=UTC)),
    ]
    return deployments, changes, incidents


def test_window_is_whole_utc_days_ending_with_the_computation_day() -> None:
    w = snapshot_window(DAY, 30)
    assert (w.start, w.end) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    with pytest.raises(MetricsInputError):
        snapshot_window(DAY, 0)


def test_rows_hand_computed() -> None:
    rows = snapshot_rows(*data(), computed_on=DAY)
    keyed = {(r["service"], r["window_days"]): r for r in rows}
    assert set(keyed) == {(ALL_SERVICES, 30), ("checkout", 30), (ALL_SERVICES, 90), ("checkout", 90)}
    r30 = keyed[("checkout", 30)]
    assert r30["computed_on"] == DAY
    assert r30["benchmark_year"] == 2024
    assert r30["deployments_count"] == 1
    assert r30["deployment_frequency"] == pytest.approx(1 / 30)
    assert r30["deployment_days_per_week"] == pytest.approx(7 / 30)
    assert r30["deployment_frequency_class"] == "medium"  # one deployment day a month
    assert r30["lead_time_seconds"] == 5400  # 08:30 -> 10:00
    assert r30["lead_time_p90_seconds"] == 5400
    assert r30["lead_time_class"] == "elite"
    assert r30["change_failure_rate"] == 1.0
    assert r30["change_failure_rate_class"] == "low"
    assert r30["time_to_restore_seconds"] == 2700  # 45 min
    assert r30["time_to_restore_class"] == "elite"
    assert r30["incidents_count"] == 1
    assert r30["reasons"] == {}
    r90 = keyed[("checkout", 90)]
    assert r90["deployment_days_per_week"] == pytest.approx(7 / 90)
    assert r90["deployment_frequency_class"] == "low"  # less than one deployment day a month


def test_empty_metrics_give_null_values_classes_and_reasons() -> None:
    rows = snapshot_rows(*data(), computed_on=date(2027, 6, 1), window_days=(30,), year=2023)
    (overall, checkout) = rows
    assert overall["service"] == ALL_SERVICES
    assert checkout["benchmark_year"] == 2023
    for col in ("deployment_frequency", "deployment_frequency_class", "lead_time_seconds", "lead_time_class",
                "change_failure_rate", "change_failure_rate_class", "time_to_restore_seconds",
                "time_to_restore_class"):
        assert checkout[col] is None, col
    assert set(checkout["reasons"]) == {"deployment_frequency", "lead_time", "change_failure_rate", "recovery_time"}


def test_recomputing_the_same_day_gives_the_same_keys_and_values() -> None:
    first = snapshot_rows(*data(), computed_on=DAY)
    again = snapshot_rows(*data(), computed_on=DAY)
    assert first == again
    keys = [(r["service"], r["window_days"], r["computed_on"]) for r in first]
    assert len(keys) == len(set(keys))
