"""The DORA numbers of the pages and the API: the agent's own computation over the stored events.

Nothing is re-implemented here. Events are loaded with ``iact_agents.dora.store.load_events``, the four
keys computed with ``iact_agents.dora.metrics.compute_metrics`` under the agent's definitions (its
``[metrics]`` configuration: production environments, attribution window, rollbacks, benchmark year) and
classified with ``iact_agents.dora.benchmarks``. The drill-down lists are the metrics' own ``members``: the
counts are their lengths, so the events behind a number always add up to it.

Loaded events are kept per process for a short time and only while a cheap fingerprint of the event
tables is unchanged (no cache server: RNF-002).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from django.conf import settings
from django.db import connection
from iact_agents.dora import config as dora_config
from iact_agents.dora.benchmarks import METRICS, Classification, MetricName, classify_service
from iact_agents.dora.metrics import (
    ALL_SERVICES,
    MetricsConfig,
    MetricsReport,
    ServiceMetrics,
    Window,
    attribute_incidents,
    compute_metrics,
    key_of,
)
from iact_agents.dora.models import Change, Deployment, Incident
from iact_agents.dora.store import LoadedEvents, load_events

from ..api.params import DayRange
from ..mysqldb import agents_database

log = logging.getLogger(__name__)

MEMO_SECONDS = 30.0

SetName = Literal[
    "deployments", "failed_attempts", "failed_deployments", "changes", "invalid_changes", "undeployed_changes",
    "incidents", "unresolved_incidents", "unlinked_incidents", "invalid_incidents",
]
SET_KIND: dict[str, Literal["deployment", "change", "incident"]] = {
    "deployments": "deployment", "failed_attempts": "deployment", "failed_deployments": "deployment",
    "changes": "change", "invalid_changes": "change", "undeployed_changes": "change",
    "incidents": "incident", "unresolved_incidents": "incident", "unlinked_incidents": "incident",
    "invalid_incidents": "incident",
}
SET_TITLES = {
    "deployments": "Production deployments",
    "failed_attempts": "Failed production deployment attempts (in no metric)",
    "failed_deployments": "Failed changes: deployments with an incident, or rolled back",
    "changes": "Changes first deployed to production (lead time)",
    "invalid_changes": "Changes deployed before their first commit (left out)",
    "undeployed_changes": "Changes committed in the window and not deployed",
    "incidents": "Resolved incidents caused by a deployment (time to restore)",
    "unresolved_incidents": "Unresolved incidents caused by a deployment",
    "unlinked_incidents": "Incidents tied to no deployment (reported, not guessed)",
    "invalid_incidents": "Incidents resolved before they started (left out)",
}


@dataclass(frozen=True)
class Definitions:
    metrics: MetricsConfig
    benchmark_year: int
    snapshot_windows: tuple[int, ...]
    source: str


class _Memo:
    """Per-process memory of the last definitions and events (guarded by ``lock``)."""

    lock = threading.Lock()
    definitions: tuple[float | None, Definitions] | None = None
    events: tuple[float, tuple[Any, ...], Events] | None = None


def definitions() -> Definitions:
    """The DORA agent's metric definitions from its config file (re-read when the file changes); without the
    file, the agent's defaults. A file that does not validate raises ConfigError (the pages answer 503)."""
    path: Path | None = settings.CONFIG.dora.config_file
    try:
        mtime: float | None = path.stat().st_mtime if path is not None else None
    except OSError:
        mtime = None
    with _Memo.lock:
        if _Memo.definitions is not None and _Memo.definitions[0] == mtime:
            return _Memo.definitions[1]
    cfg = dora_config.load(path) if path is not None and mtime is not None else dora_config.DoraConfig()
    found = Definitions(cfg.metrics.metrics_config(), cfg.metrics.benchmark_year, tuple(cfg.metrics.windows),
                        str(path) if mtime is not None else "the DORA agent's defaults")
    with _Memo.lock:
        _Memo.definitions = (mtime, found)
    return found


# --- events ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Events:
    loaded: LoadedEvents
    deployments: dict[tuple[str, str], Deployment]
    changes: dict[tuple[str, str], Change]
    incidents: dict[tuple[str, str], Incident]

    @property
    def services(self) -> list[str]:
        names: set[str] = set()
        for group in (self.deployments.values(), self.changes.values(), self.incidents.values()):
            names.update(e.service for e in group)
        return sorted(names)


_FINGERPRINT = (
    "SELECT (SELECT COUNT(*) FROM deployments), (SELECT MAX(updated_at) FROM deployments), "
    "(SELECT COUNT(*) FROM changes), (SELECT MAX(updated_at) FROM changes), "
    "(SELECT COUNT(*) FROM incidents), (SELECT MAX(updated_at) FROM incidents), "
    "(SELECT COUNT(*) FROM deployment_changes), "
    "(SELECT COUNT(*) FROM dora_rejected_events WHERE reprocessed_at IS NULL)"
)


def _fingerprint() -> tuple[Any, ...]:
    with connection.cursor() as cur:
        cur.execute(_FINGERPRINT)
        row = cur.fetchone()
    return tuple(row) if row else ()


def events_total() -> int:
    """How many DORA events are stored (the pages poll it to offer a reload when it changes)."""
    mark = _fingerprint()
    return int(sum(mark[i] or 0 for i in (0, 2, 4))) if mark else 0


def events() -> Events:
    """Every stored DORA event, as the agent loads them (kept for MEMO_SECONDS while unchanged)."""
    mark = _fingerprint()
    now = time.monotonic()
    with _Memo.lock:
        cached = _Memo.events
        if cached is not None and cached[1] == mark and now - cached[0] < MEMO_SECONDS:
            return cached[2]
    db = agents_database()
    try:
        loaded = load_events(db)
    finally:
        db.close()
    found = Events(loaded, {key_of(d): d for d in loaded.deployments}, {key_of(c): c for c in loaded.changes},
                   {key_of(i): i for i in loaded.incidents})
    with _Memo.lock:
        _Memo.events = (now, mark, found)
    return found


# --- the numbers ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DoraResult:
    range: DayRange
    service: str | None
    metrics: ServiceMetrics
    classes: dict[MetricName, Classification | None]
    benchmark_year: int
    events: Events
    definitions: Definitions
    report: MetricsReport

    def per_service(self) -> list[tuple[ServiceMetrics, dict[MetricName, Classification | None]]]:
        """The overall row, then every service with events (or only the selected service)."""
        chosen = [self.report.overall, *self.report.services.values()] if self.service is None else [self.metrics]
        return [(m, classify_service(m, self.benchmark_year)) for m in chosen]

    @property
    def service_key(self) -> str:
        return self.service or ALL_SERVICES

    def members(self, name: SetName) -> tuple[tuple[str, str], ...]:
        m = self.metrics.members
        if name == "failed_deployments":
            return m.failed_with_incidents + m.rolled_back_without_incident
        keys: tuple[tuple[str, str], ...] = getattr(m, name)
        return keys

    def headline(self) -> dict[str, Any]:
        """The four keys with their counts, classes and the reasons a value is missing."""
        df, lt, cfr, rt = (self.metrics.deployment_frequency, self.metrics.lead_time,
                           self.metrics.change_failure_rate, self.metrics.recovery_time)

        def level(name: MetricName) -> str | None:
            got = self.classes[name]
            return None if got is None else got.level

        return {
            "deployment_frequency": {
                "deployments": df.deployments, "deployment_days": df.deployment_days,
                "deployments_per_day": df.deployments_per_day, "deployment_days_per_week": df.deployment_days_per_week,
                "failed_attempts": df.failed_deployments, "class": level("deployment_frequency"), "reason": df.reason,
            },
            "lead_time": {
                "changes": lt.changes, "median_hours": lt.median_hours, "p90_hours": lt.p90_hours,
                "invalid": lt.invalid, "undeployed": lt.undeployed, "class": level("lead_time"), "reason": lt.reason,
            },
            "change_failure_rate": {
                "deployments": cfr.deployments, "failed": cfr.failed, "with_incidents": cfr.with_incidents,
                "rolled_back_without_incident": cfr.rolled_back_without_incident, "rate": cfr.rate,
                "class": level("change_failure_rate"), "reason": cfr.reason,
            },
            "recovery_time": {
                "incidents": rt.incidents, "median_hours": rt.median_hours, "unresolved": rt.unresolved,
                "unlinked": rt.unlinked, "invalid": rt.invalid, "class": level("recovery_time"), "reason": rt.reason,
            },
        }


class UnknownService(ValueError):
    pass


def compute(day_range: DayRange, service: str | None) -> DoraResult:
    ev = events()
    if service is not None and service not in ev.services:
        raise UnknownService(service)
    defs = definitions()
    window = Window(day_range.start, day_range.end)
    report = compute_metrics(ev.loaded.deployments, ev.loaded.changes, ev.loaded.incidents, window, defs.metrics)
    metrics = report.overall if service is None else report.services[service]
    return DoraResult(day_range, service, metrics, classify_service(metrics, defs.benchmark_year),
                      defs.benchmark_year, ev, defs, report)


def attributions(result: DoraResult) -> dict[tuple[str, str], Any]:
    """How each incident was tied to a deployment (for the incident tables)."""
    ev = result.events
    return attribute_incidents(ev.loaded.deployments, ev.loaded.incidents, result.definitions.metrics)


def metric_names() -> tuple[MetricName, ...]:
    return METRICS


# --- trends: the agent's daily snapshots ------------------------------------------------------------------

TREND_COLUMNS = ("computed_on", "deployment_days_per_week", "lead_time_seconds", "change_failure_rate",
                 "time_to_restore_seconds", "deployments_count", "benchmark_year")


def trend(service: str | None, window_days: int, first: date, last: date) -> list[dict[str, Any]]:
    """Daily snapshot rows (``dora_metrics``) of one service (or the overall row) and window length."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(TREND_COLUMNS)} FROM dora_metrics "  # noqa: S608 (fixed column names)
            "WHERE service = %s AND window_days = %s AND computed_on BETWEEN %s AND %s ORDER BY computed_on",
            (service or ALL_SERVICES, window_days, first, last),
        )
        return [dict(zip(TREND_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def events_of(result: DoraResult, keys: Iterable[tuple[str, str]], kind: str) -> list[Any]:
    table: Mapping[tuple[str, str], Any]
    if kind == "deployment":
        table = result.events.deployments
    elif kind == "change":
        table = result.events.changes
    else:
        table = result.events.incidents
    return [table[k] for k in keys if k in table]
