"""The DORA tables: the same definitions render the pages, the CSV exports and the API's rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from iact_agents.dora.benchmarks import Classification, MetricName
from iact_agents.dora.metrics import ALL_SERVICES, ServiceMetrics
from iact_agents.dora.models import Change, Deployment, Incident

from ..core.tables import Column, Table
from .service import SET_KIND, SET_TITLES, DoraResult, SetName, attributions, events_of

HOURS = 3600.0


def drill_url(result: DoraResult, set_name: str, service: str | None = None) -> str:
    query = {"set": set_name, **result.range.query()}
    svc = service if service is not None else result.service
    if svc is not None and svc != ALL_SERVICES:
        query["service"] = svc
    return f"{reverse('dora:events')}?{urlencode(query)}"


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / HOURS


# --- the headline table: one row per service (and the overall row) -----------------------------------------

def services_table(
    result: DoraResult, rows: Sequence[tuple[ServiceMetrics, dict[MetricName, Classification | None]]]
) -> Table:
    """Rows: ``(metrics, classes)`` of the overall row and every service in the window."""

    def link(set_name: str) -> Callable[[Any], str]:
        return lambda r: drill_url(result, set_name, r[0].service)

    def cls(name: MetricName) -> Callable[[Any], Any]:
        return lambda r: (r[1][name].level if r[1][name] is not None else None)

    cols = [
        Column("service", "Service", lambda r: "all services" if r[0].service == ALL_SERVICES else r[0].service),
        Column("deployments", "Deployments", lambda r: r[0].deployment_frequency.deployments, "number",
               link("deployments")),
        Column("deployment_days_per_week", "Deploy days / week",
               lambda r: r[0].deployment_frequency.deployment_days_per_week, "number"),
        Column("deployment_frequency_class", "Class", cls("deployment_frequency")),
        Column("changes", "Changes", lambda r: r[0].lead_time.changes, "number", link("changes")),
        Column("lead_time_median_hours", "Lead time (median)", lambda r: r[0].lead_time.median_hours, "hours"),
        Column("lead_time_class", "Class", cls("lead_time")),
        Column("failed_changes", "Failed changes", lambda r: r[0].change_failure_rate.failed, "number",
               link("failed_deployments")),
        Column("change_failure_rate", "Change failure rate", lambda r: r[0].change_failure_rate.rate, "rate"),
        Column("change_failure_rate_class", "Class", cls("change_failure_rate")),
        Column("incidents", "Incidents restored", lambda r: r[0].recovery_time.incidents, "number",
               link("incidents")),
        Column("time_to_restore_median_hours", "Time to restore (median)",
               lambda r: r[0].recovery_time.median_hours, "hours"),
        Column("time_to_restore_class", "Class", cls("recovery_time")),
        Column("benchmark_year", "Benchmark", lambda r: result.benchmark_year),
    ]
    return Table("services", f"Per service, {result.range.first} to {result.range.last}", cols, list(rows),
                 empty="No DORA events in this window.")


# --- the events behind a number ----------------------------------------------------------------------------

def _deployment_columns() -> list[Column]:
    return [
        Column("source", "Source", lambda d: d.source),
        Column("source_event_id", "Id", lambda d: d.source_event_id),
        Column("service", "Service", lambda d: d.service),
        Column("environment", "Environment", lambda d: d.environment),
        Column("status", "Status", lambda d: d.status),
        Column("deployed_at", "Deployed at (UTC)", lambda d: d.deployed_at, "time"),
        Column("version", "Version", lambda d: d.version),
        Column("commit_sha", "Commit", lambda d: d.commit_sha),
        Column("change_count", "Changes", lambda d: len(d.change_ids), "number"),
    ]


def _change_columns(hours_by_key: dict[tuple[str, str], float]) -> list[Column]:
    return [
        Column("source", "Source", lambda c: c.source),
        Column("source_event_id", "Id", lambda c: c.source_event_id),
        Column("service", "Service", lambda c: c.service),
        Column("commit_sha", "Commit", lambda c: c.commit_sha),
        Column("lead_time_start", "Work started (UTC)", lambda c: c.lead_time_start, "time"),
        Column("committed_at", "Committed at (UTC)", lambda c: c.committed_at, "time"),
        Column("lead_time_hours", "Lead time", lambda c: hours_by_key.get((c.source, c.source_event_id)), "hours"),
        Column("deployment_ref", "Deployment", lambda c: c.deployment_id),
    ]


def _incident_columns(result: DoraResult, hours_by_key: dict[tuple[str, str], float]) -> list[Column]:
    atts = attributions(result)

    def att(i: Incident) -> Any:
        return atts.get((i.source, i.source_event_id))

    return [
        Column("source", "Source", lambda i: i.source),
        Column("source_event_id", "Id", lambda i: i.source_event_id),
        Column("service", "Service", lambda i: i.service),
        Column("severity", "Severity", lambda i: i.severity),
        Column("title", "Title", lambda i: i.title),
        Column("started_at", "Started (UTC)", lambda i: i.started_at, "time"),
        Column("resolved_at", "Resolved (UTC)", lambda i: i.resolved_at, "time"),
        Column("time_to_restore_hours", "Time to restore",
               lambda i: hours_by_key.get((i.source, i.source_event_id)), "hours"),
        Column("deployment", "Caused by deployment", lambda i: (att(i).deployment_id if att(i) else None)),
        Column("attribution", "Attribution", lambda i: (f"{att(i).method}: {att(i).reason}" if att(i) else None)),
    ]


def events_table(result: DoraResult, set_name: SetName) -> Table:
    keys = result.members(set_name)
    kind = SET_KIND[set_name]
    rows: list[Deployment] | list[Change] | list[Incident] = events_of(result, keys, kind)
    m = result.metrics.members
    if kind == "deployment":
        cols = _deployment_columns()
    elif kind == "change":
        cols = _change_columns(dict(zip(m.changes, m.lead_hours, strict=True)))
    else:
        cols = _incident_columns(result, dict(zip(m.incidents, m.recovery_hours, strict=True)))
    sort_key: dict[str, Callable[[Any], Any]] = {
        "deployment": lambda d: d.deployed_at, "change": lambda c: c.committed_at, "incident": lambda i: i.started_at}
    ordered = sorted(rows, key=sort_key[kind], reverse=True)
    return Table(set_name, SET_TITLES[set_name], cols, ordered, empty="No events.")


def trend_table(rows: Sequence[dict[str, Any]], window_days: int) -> Table:
    cols = [
        Column("computed_on", "Day", lambda r: r["computed_on"]),
        Column("deployment_days_per_week", "Deploy days / week", lambda r: r["deployment_days_per_week"], "number"),
        Column("lead_time_hours", "Lead time (median)", lambda r: _hours(r["lead_time_seconds"]), "hours"),
        Column("change_failure_rate", "Change failure rate", lambda r: r["change_failure_rate"], "rate"),
        Column("time_to_restore_hours", "Time to restore (median)",
               lambda r: _hours(r["time_to_restore_seconds"]), "hours"),
        Column("deployments", "Deployments", lambda r: r["deployments_count"], "number"),
        Column("benchmark_year", "Benchmark", lambda r: r["benchmark_year"]),
    ]
    return Table("trend", f"Daily snapshots of the {window_days}-day window (the DORA agent's)", cols,
                 list(rows), empty="No snapshots stored for this window length yet.")
