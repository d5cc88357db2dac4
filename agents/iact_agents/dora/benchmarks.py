"""DORA performance levels (Elite/High/Medium/Low) from a named State of DevOps report year.

The tables are data, one file per report under ``benchmarks/<year>.json``: the published wording of
every level, the numeric bounds we read from it and ``notes`` on every place where that reading is an
interpretation (the published levels are clusters, some of them overlap or leave gaps). The report year
is part of every classification, so a stored class always says which table produced it.
"""

from __future__ import annotations

import functools
import json
import logging
from importlib import resources
from typing import Literal, NamedTuple

from pydantic import ValidationError, model_validator

from ..config import FrozenModel, describe_validation_error
from ..errors import ConfigError
from .metrics import ServiceMetrics

log = logging.getLogger(__name__)

DEFAULT_YEAR = 2024

Level = Literal["elite", "high", "medium", "low"]
LEVELS: tuple[Level, ...] = ("elite", "high", "medium", "low")
MetricName = Literal["deployment_frequency", "lead_time", "change_failure_rate", "recovery_time"]
METRICS: tuple[MetricName, ...] = (
    "deployment_frequency", "lead_time", "change_failure_rate", "recovery_time"
)


class BenchmarkError(ConfigError):
    """No table for the requested year, or a table file that does not validate."""


class Bound(FrozenModel):
    op: Literal["lt", "le", "ge", "gt"]
    value: float

    def admits(self, x: float) -> bool:
        if self.op == "lt":
            return x < self.value
        if self.op == "le":
            return x <= self.value
        if self.op == "ge":
            return x >= self.value
        return x > self.value


class MetricTable(FrozenModel):
    measure: str
    unit: str
    better: Literal["lower", "higher"]
    published: dict[Level, str]
    thresholds: dict[Level, Bound | None]

    @model_validator(mode="after")
    def _consistent(self) -> MetricTable:
        if set(self.published) != set(LEVELS) or set(self.thresholds) != set(LEVELS):
            raise ValueError("published and thresholds need exactly the levels elite, high, medium, low")
        if self.thresholds["low"] is not None:
            raise ValueError("low must be null: it takes every value the better levels do not")
        allowed = {"lt", "le"} if self.better == "lower" else {"ge", "gt"}
        for level in LEVELS[:-1]:
            bound = self.thresholds[level]
            if bound is None:
                raise ValueError(f"{level} needs a bound")
            if bound.op not in allowed:
                raise ValueError(f"{level}: {bound.op} does not fit better={self.better}")
        return self


class BenchmarkTable(FrozenModel):
    year: int
    report: str
    source: str
    levels: tuple[Level, ...]
    metrics: dict[MetricName, MetricTable]
    notes: tuple[str, ...]

    @model_validator(mode="after")
    def _complete(self) -> BenchmarkTable:
        if self.levels != LEVELS:
            raise ValueError(f"levels must be {list(LEVELS)} in that order")
        missing = set(METRICS) - set(self.metrics)
        if missing:
            raise ValueError(f"missing metrics: {sorted(missing)}")
        if not self.notes:
            raise ValueError("notes must say how the published table was interpreted")
        return self


class Classification(NamedTuple):
    """A performance level and the report year whose table gave it."""

    level: Level
    year: int


def _data_dir() -> resources.abc.Traversable:
    return resources.files("iact_agents.dora").joinpath("benchmarks")


def available_years() -> tuple[int, ...]:
    years = [
        int(entry.name.removesuffix(".json"))
        for entry in _data_dir().iterdir()
        if entry.name.endswith(".json") and entry.name.removesuffix(".json").isdigit()
    ]
    return tuple(sorted(years))


@functools.cache
def load_table(year: int = DEFAULT_YEAR) -> BenchmarkTable:
    """The validated table of one report year, or :class:`BenchmarkError`."""
    entry = _data_dir().joinpath(f"{year}.json")
    if not entry.is_file():
        years = ", ".join(str(y) for y in available_years())
        raise BenchmarkError(f"no DORA benchmark table for {year}; available: {years}")
    try:
        table = BenchmarkTable.model_validate(json.loads(entry.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"benchmarks/{year}.json: not valid JSON: {exc}") from None
    except ValidationError as exc:
        raise BenchmarkError(describe_validation_error(exc, f"benchmarks/{year}.json")) from None
    if table.year != year:
        raise BenchmarkError(f"benchmarks/{year}.json says it is the {table.year} table")
    log.debug("loaded DORA benchmark table %d", year)
    return table


def classify(metric: MetricName, value: float | None, year: int = DEFAULT_YEAR) -> Classification | None:
    """The best level whose bound ``value`` meets (elite first), else low; ``None`` for no value.

    Units: deployment days per week, lead time and recovery time in hours, change failure rate as a
    fraction (see the table's ``unit``).
    """
    if value is None:
        return None
    table = load_table(year).metrics[metric]
    for level in LEVELS:
        bound = table.thresholds[level]
        if bound is None or bound.admits(value):
            return Classification(level, year)
    raise AssertionError("unreachable: the low level has no bound")  # pragma: no cover


def classify_service(
    metrics: ServiceMetrics, year: int = DEFAULT_YEAR
) -> dict[MetricName, Classification | None]:
    """Classify the four headline numbers of one service (or the overall row)."""
    return {
        "deployment_frequency": classify(
            "deployment_frequency", metrics.deployment_frequency.deployment_days_per_week, year
        ),
        "lead_time": classify("lead_time", metrics.lead_time.median_hours, year),
        "change_failure_rate": classify("change_failure_rate", metrics.change_failure_rate.rate, year),
        "recovery_time": classify("recovery_time", metrics.recovery_time.median_hours, year),
    }
