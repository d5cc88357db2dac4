"""DORA benchmark tables: the data files, their interpretation and classification at the boundaries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from iact_agents.dora.benchmarks import (
    DEFAULT_YEAR,
    BenchmarkError,
    BenchmarkTable,
    Classification,
    available_years,
    classify,
    classify_service,
    load_table,
)
from iact_agents.dora.metrics import Window, compute_metrics
from iact_agents.dora.models import Deployment
from iact_agents.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parents[2] / "iact_agents" / "dora" / "benchmarks"
HOUR = 1.0
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY


def test_both_report_years_ship_and_2024_is_default() -> None:
    assert available_years() == (2023, 2024)
    assert DEFAULT_YEAR == 2024
    for year in (2023, 2024):
        table = load_table(year)
        assert table.year == year
        assert str(year) in table.report
        assert table.notes


def test_published_wording_is_kept_as_published() -> None:
    t24 = load_table(2024).metrics
    t23 = load_table(2023).metrics
    cfr24 = t24["change_failure_rate"].published
    cfr23 = t23["change_failure_rate"].published
    assert cfr24 == {"elite": "5%", "high": "20%", "medium": "10%", "low": "40%"}
    assert cfr23 == {"elite": "5%", "high": "10%", "medium": "15%", "low": "64%"}
    assert t24["deployment_frequency"].published["low"] == "Between once per month and once every six months"
    assert t23["deployment_frequency"].published["low"] == "Between once per week and once per month"
    assert t24["recovery_time"].published["low"] == "Between one week and one month"
    assert t23["recovery_time"].published["low"] == "Between one month and six months"
    assert t23["lead_time"].published["low"] == t23["lead_time"].published["medium"]


def test_unknown_year_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="available: 2023, 2024"):
        load_table(2019)
    with pytest.raises(BenchmarkError):
        classify("lead_time", 1.0, year=2022)


def test_classification_carries_the_year() -> None:
    assert classify("lead_time", 2 * DAY) == Classification("high", 2024)
    level, year = classify("lead_time", 2 * DAY, year=2023) or ("?", 0)
    assert (level, year) == ("high", 2023)
    assert classify("lead_time", None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "elite"),
        (DAY - 0.01, "elite"),
        (DAY, "high"),  # "less than one day" excludes one day
        (WEEK - 0.01, "high"),
        (WEEK, "medium"),
        (MONTH - 0.01, "medium"),
        (MONTH, "low"),
        (400 * DAY, "low"),  # beyond six months: still the worst published level
    ],
)
def test_lead_time_boundaries(value: float, expected: str) -> None:
    assert classify("lead_time", value, 2024) == (expected, 2024)
    assert classify("lead_time", value, 2023) == (expected, 2023)


@pytest.mark.parametrize(
    ("rate", "level_2024", "level_2023"),
    [
        (0.0, "elite", "elite"),
        (0.05, "elite", "elite"),  # the published value is inclusive
        (0.0501, "high", "high"),
        (0.10, "high", "high"),  # 2024: medium's 10% is better than high's 20%; high is checked first
        (0.12, "high", "medium"),
        (0.15, "high", "medium"),
        (0.16, "high", "low"),
        (0.20, "high", "low"),
        (0.21, "low", "low"),
        (0.90, "low", "low"),
    ],
)
def test_change_failure_rate_boundaries(rate: float, level_2024: str, level_2023: str) -> None:
    assert classify("change_failure_rate", rate, 2024) == (level_2024, 2024)
    assert classify("change_failure_rate", rate, 2023) == (level_2023, 2023)


@pytest.mark.parametrize(
    ("hours", "level_2024", "level_2023"),
    [
        (0.5, "elite", "elite"),
        (1.0, "high", "high"),
        (23.9, "high", "high"),
        (24.0, "low", "medium"),  # 2024: no level covers one day to one week
        (WEEK - 1, "low", "medium"),
        (WEEK, "low", "low"),  # 2023: no level covers one week to one month
        (2 * MONTH, "low", "low"),
    ],
)
def test_recovery_time_boundaries(hours: float, level_2024: str, level_2023: str) -> None:
    assert classify("recovery_time", hours, 2024) == (level_2024, 2024)
    assert classify("recovery_time", hours, 2023) == (level_2023, 2023)


@pytest.mark.parametrize(
    ("days_per_week", "expected"),
    [
        (7.0, "elite"),
        (5.0, "elite"),
        (4.99, "high"),
        (1.0, "high"),
        (0.99, "medium"),
        (1 * 7 / 30, "medium"),  # one deployment day in a 30-day window: once per month
        (0.2, "low"),
        (0.0, "low"),
    ],
)
def test_deployment_frequency_boundaries(days_per_week: float, expected: str) -> None:
    assert classify("deployment_frequency", days_per_week, 2024) == (expected, 2024)
    assert classify("deployment_frequency", days_per_week, 2023) == (expected, 2023)


def test_classify_service_uses_deployment_days_not_counts() -> None:
    # 20 deployments, all on one day, in a 7-day window: 1 deployment day per week -> high, not elite.
    deployments = [
        Deployment(
            source_event_id=f"d{i}", service="a", environment="production",
            deployed_at=datetime(2026, 11, 2, 8, i, tzinfo=UTC), status="success",
        )
        for i in range(20)
    ]
    window = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC))
    row = compute_metrics(deployments, [], [], window).services["a"]
    got = classify_service(row, 2024)
    assert got["deployment_frequency"] == ("high", 2024)
    assert got["change_failure_rate"] == ("elite", 2024)  # 0 of 20 failed
    assert got["lead_time"] is None  # no changes: no class, not "elite"
    assert got["recovery_time"] is None


def test_table_validation_refuses_inconsistent_data() -> None:
    good = json.loads((DATA_DIR / "2024.json").read_text(encoding="utf-8"))
    BenchmarkTable.model_validate(good)
    bad = json.loads(json.dumps(good))
    bad["metrics"]["lead_time"]["thresholds"]["low"] = {"op": "lt", "value": 4320}
    with pytest.raises(ValueError, match="low must be null"):
        BenchmarkTable.model_validate(bad)
    bad = json.loads(json.dumps(good))
    bad["metrics"]["lead_time"]["thresholds"]["elite"] = {"op": "ge", "value": 24}
    with pytest.raises(ValueError, match="does not fit"):
        BenchmarkTable.model_validate(bad)
    bad = json.loads(json.dumps(good))
    bad["notes"] = []
    with pytest.raises(ValueError, match="notes"):
        BenchmarkTable.model_validate(bad)
