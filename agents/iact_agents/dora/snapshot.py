"""Snapshot rows: the metrics of one service, window and computation day, flattened and classified.

One row per ``(service, window_days, computed_on)``, the unique key of ``dora_metrics``: the window of a
snapshot computed on day D is ``[D + 1 - window_days, D + 1)`` in UTC (whole days, ending with D), so
recomputing on the same day yields the same key and replaces the row instead of adding one.

Durations are whole seconds (rounded half to even) like the table's ``*_seconds`` columns; rates are
fractions; a class is ``elite``/``high``/``medium``/``low`` or ``None`` when the metric is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .benchmarks import DEFAULT_YEAR, MetricName, classify_service
from .metrics import SECONDS_PER_HOUR, MetricsConfig, MetricsInputError, ServiceMetrics, Window, compute_metrics
from .models import Change, Deployment, Incident

DEFAULT_WINDOW_DAYS: tuple[int, ...] = (30, 90)


def snapshot_window(computed_on: date, window_days: int) -> Window:
    """The ``window_days`` whole UTC days ending with ``computed_on``."""
    if window_days <= 0:
        raise MetricsInputError(f"window length must be positive, got {window_days} days")
    end = datetime.combine(computed_on + timedelta(days=1), time(0), tzinfo=UTC)
    return Window(end - timedelta(days=window_days), end)


def _seconds(hours: float | None) -> int | None:
    return None if hours is None else round(hours * SECONDS_PER_HOUR)


def snapshot_row(
    metrics: ServiceMetrics, computed_on: date, window_days: int, year: int = DEFAULT_YEAR
) -> dict[str, Any]:
    """Flatten one service's metrics into a row; see the module docstring for units."""
    classes = classify_service(metrics, year)
    df, lt, cfr, rt = (
        metrics.deployment_frequency, metrics.lead_time, metrics.change_failure_rate, metrics.recovery_time
    )

    def level(name: MetricName) -> str | None:
        got = classes[name]
        return None if got is None else got.level

    reasons = {
        name: reason
        for name, reason in (
            ("deployment_frequency", df.reason), ("lead_time", lt.reason),
            ("change_failure_rate", cfr.reason), ("recovery_time", rt.reason),
        )
        if reason is not None
    }
    return {
        "service": metrics.service,
        "window_days": window_days,
        "computed_on": computed_on,
        "window_start": metrics.window.start,
        "window_end": metrics.window.end,
        "benchmark_year": year,
        # deployment frequency
        "deployments_count": df.deployments,
        "failed_deployments_count": df.failed_deployments,
        "deployment_days": df.deployment_days,
        "deployment_frequency": df.deployments_per_day,
        "deployment_days_per_week": df.deployment_days_per_week,
        "deployment_frequency_class": level("deployment_frequency"),
        # lead time
        "changes_count": lt.changes,
        "lead_time_seconds": _seconds(lt.median_hours),
        "lead_time_p90_seconds": _seconds(lt.p90_hours),
        "lead_time_class": level("lead_time"),
        "changes_invalid_count": lt.invalid,
        "changes_undeployed_count": lt.undeployed,
        # change failure rate
        "failed_changes_count": cfr.failed,
        "change_failure_rate": cfr.rate,
        "change_failure_rate_class": level("change_failure_rate"),
        # recovery
        "incidents_count": rt.incidents + rt.unresolved + rt.invalid + rt.unlinked,
        "time_to_restore_seconds": _seconds(rt.median_hours),
        "time_to_restore_class": level("recovery_time"),
        "incidents_unresolved_count": rt.unresolved,
        "incidents_unlinked_count": rt.unlinked,
        "incidents_invalid_count": rt.invalid,
        "reasons": reasons,
    }


def snapshot_rows(
    deployments: Iterable[Deployment],
    changes: Iterable[Change],
    incidents: Iterable[Incident],
    *,
    computed_on: date,
    window_days: Iterable[int] = DEFAULT_WINDOW_DAYS,
    year: int = DEFAULT_YEAR,
    config: MetricsConfig | None = None,
) -> list[dict[str, Any]]:
    """Rows for every service and the overall row (``service`` = ``*``), for every window length."""
    deps, chs, incs = list(deployments), list(changes), list(incidents)
    rows: list[dict[str, Any]] = []
    for days in window_days:
        report = compute_metrics(deps, chs, incs, snapshot_window(computed_on, days), config)
        for service_metrics in (report.overall, *report.services.values()):
            rows.append(snapshot_row(service_metrics, computed_on, days, year))
    return rows
