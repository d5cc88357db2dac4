"""Data quality checks over DORA events: schema, null, range, consistency and anomaly checks.

Every check states the population it evaluates (``evaluated``) and how many items failed, with one
:class:`~.score.Finding` per failure, so the score (:mod:`.score`) and the report can say exactly what
is wrong and where. All functions are pure: "now" is the ``as_of`` argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from ..dora.metrics import MetricsConfig, is_production, unique
from ..dora.models import Change, Deployment, Incident, ParseResult
from .anomaly import MIN_POINTS, MODIFIED_Z_THRESHOLD, daily_series, detect_anomalies
from .score import Category, CheckResult, Finding, QualityScore, quality_score


@dataclass(frozen=True)
class QualityConfig:
    stale_incident_after: timedelta = timedelta(days=7)
    """An incident still open this long after its start is reported by ``null.incident_resolved_at``."""
    unlinked_change_after: timedelta = timedelta(days=7)
    """A change without a deployment link this long after its commit is reported."""
    clock_skew: timedelta = timedelta(minutes=5)
    """Timestamps up to this far after ``as_of`` are not yet "in the future"."""
    anomaly_days: int = 30
    anomaly_threshold: float = MODIFIED_Z_THRESHOLD
    anomaly_min_points: int = MIN_POINTS
    calendar_tz: tzinfo = UTC
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


@dataclass(frozen=True)
class QualityReport:
    as_of: datetime
    checks: tuple[CheckResult, ...]
    score: QualityScore


def _result(
    check: str, category: Category, description: str, evaluated: int, findings: list[Finding]
) -> CheckResult:
    return CheckResult(check, category, description, evaluated, len(findings), tuple(findings))


# --- schema -------------------------------------------------------------------------------------------


def schema_check(parsed: ParseResult) -> CheckResult:
    """Share of input events that passed validation (duplicates are neither good nor bad)."""
    name = "schema.ingest"
    findings = [
        Finding(name, r.event_type or "unknown", r.source_event_id or f"line {r.line}", None, r.describe())
        for r in parsed.rejected
    ]
    return _result(name, "schema", "events that passed schema validation",
                   len(parsed.accepted) + len(parsed.rejected), findings)


# --- null ---------------------------------------------------------------------------------------------


def null_checks(
    deployments: Sequence[Deployment], changes: Sequence[Change], incidents: Sequence[Incident],
    as_of: datetime, config: QualityConfig,
) -> list[CheckResult]:
    name = "null.deployment_version"
    f1 = [Finding(name, "deployment", d.source_event_id, d.service, "deployment has no version")
          for d in deployments if d.version is None]
    out = [_result(name, "null", "deployments that name their version", len(deployments), f1)]

    name = "null.change_deployment_link"
    listed = {cid for d in deployments for cid in d.change_ids}
    old = [c for c in changes if c.committed_at <= as_of - config.unlinked_change_after]
    f2 = [Finding(name, "change", c.source_event_id, c.service,
                  f"no deployment names this change {config.unlinked_change_after.days} days after its commit")
          for c in old if c.deployment_id is None and c.source_event_id not in listed]
    out.append(_result(name, "null", "changes older than the grace period linked to a deployment", len(old), f2))

    name = "null.incident_resolved_at"
    old_inc = [i for i in incidents if i.started_at <= as_of - config.stale_incident_after]
    f3 = [Finding(name, "incident", i.source_event_id, i.service,
                  f"still unresolved {config.stale_incident_after.days} days after it started")
          for i in old_inc if i.resolved_at is None]
    out.append(_result(name, "null", "incidents older than the grace period with a resolution", len(old_inc), f3))
    return out


# --- range --------------------------------------------------------------------------------------------


def _timestamps(event: Deployment | Change | Incident) -> list[datetime]:
    if isinstance(event, Deployment):
        return [event.deployed_at]
    if isinstance(event, Change):
        return [t for t in (event.committed_at, event.authored_at, event.first_commit_at) if t is not None]
    return [t for t in (event.started_at, event.resolved_at) if t is not None]


def range_checks(
    deployments: Sequence[Deployment], changes: Sequence[Change], incidents: Sequence[Incident],
    as_of: datetime, config: QualityConfig,
) -> list[CheckResult]:
    name = "range.incident_resolution_after_start"
    resolved = [i for i in incidents if i.resolved_at is not None]
    f1 = [Finding(name, "incident", i.source_event_id, i.service,
                  f"resolved at {i.resolved_at.isoformat()}, before it started at {i.started_at.isoformat()}")
          for i in resolved if i.resolved_at is not None and i.resolved_at < i.started_at]
    out = [_result(name, "range", "resolved incidents whose resolution is not before their start",
                   len(resolved), f1)]

    name = "range.change_commit_order"
    dated = [c for c in changes if c.first_commit_at is not None or c.authored_at is not None]
    f2 = []
    for c in dated:
        later = [label for label, t in (("first_commit_at", c.first_commit_at), ("authored_at", c.authored_at))
                 if t is not None and t > c.committed_at]
        if later:
            f2.append(Finding(name, "change", c.source_event_id, c.service,
                              f"{' and '.join(later)} after committed_at {c.committed_at.isoformat()}"))
    out.append(_result(name, "range", "changes whose first commit is not after the merged commit",
                       len(dated), f2))

    name = "range.deployment_after_commits"
    dep_by_id = {d.source_event_id: d for d in deployments}
    change_by_id = {c.source_event_id: c for c in changes}
    pairs: set[tuple[str, str]] = {(d.source_event_id, cid) for d in deployments for cid in d.change_ids
                                   if cid in change_by_id}
    pairs |= {(c.deployment_id, c.source_event_id) for c in changes
              if c.deployment_id is not None and c.deployment_id in dep_by_id}
    f3 = []
    for did, cid in sorted(pairs):
        d, c = dep_by_id[did], change_by_id[cid]
        if d.deployed_at < c.lead_time_start:
            f3.append(Finding(name, "deployment", did, d.service,
                              f"deployed at {d.deployed_at.isoformat()}, before change {cid!r} was first "
                              f"committed at {c.lead_time_start.isoformat()}"))
    out.append(_result(name, "range", "deployment-change links where the deployment follows the commits",
                       len(pairs), f3))

    name = "range.not_in_future"
    limit = as_of + config.clock_skew
    events: list[Deployment | Change | Incident] = [*deployments, *changes, *incidents]
    f4 = [Finding(name, e.type, e.source_event_id, e.service, f"has a timestamp after {as_of.isoformat()}")
          for e in events if any(t > limit for t in _timestamps(e))]
    out.append(_result(name, "range", "events with no timestamp in the future", len(events), f4))
    return out


# --- consistency --------------------------------------------------------------------------------------


def consistency_checks(
    deployments: Sequence[Deployment], changes: Sequence[Change], incidents: Sequence[Incident],
) -> list[CheckResult]:
    dep_by_id = {d.source_event_id: d for d in deployments}
    change_ids = {c.source_event_id for c in changes}

    name = "consistency.incident_deployment_known"
    linked = [i for i in incidents if i.deployment_id is not None]
    f1 = [Finding(name, "incident", i.source_event_id, i.service,
                  f"deployment_id {i.deployment_id!r} names no known deployment")
          for i in linked if i.deployment_id not in dep_by_id]
    out = [_result(name, "consistency", "incident deployment links that resolve", len(linked), f1)]

    name = "consistency.incident_same_service"
    known = [i for i in linked if i.deployment_id in dep_by_id]
    f2 = []
    for i in known:
        d = dep_by_id[i.deployment_id or ""]
        if d.service != i.service:
            f2.append(Finding(name, "incident", i.source_event_id, i.service,
                              f"linked to deployment {d.source_event_id!r} of another service ({d.service})"))
    out.append(_result(name, "consistency", "incidents linked to a deployment of their own service",
                       len(known), f2))

    name = "consistency.change_same_service"
    change_by_id = {c.source_event_id: c for c in changes}
    pairs = {(d.source_event_id, cid) for d in deployments for cid in d.change_ids if cid in change_by_id}
    pairs |= {(c.deployment_id, c.source_event_id) for c in changes
              if c.deployment_id is not None and c.deployment_id in dep_by_id}
    f3 = []
    for did, cid in sorted(pairs):
        d, c = dep_by_id[did], change_by_id[cid]
        if d.service != c.service:
            f3.append(Finding(name, "change", cid, c.service,
                              f"shipped by deployment {did!r} of another service ({d.service})"))
    out.append(_result(name, "consistency", "changes shipped by a deployment of their own service",
                       len(pairs), f3))

    name = "consistency.deployment_changes_known"
    refs = [(d, cid) for d in deployments for cid in d.change_ids]
    f4 = [Finding(name, "deployment", d.source_event_id, d.service, f"change {cid!r} is not known")
          for d, cid in refs if cid not in change_ids]
    out.append(_result(name, "consistency", "change ids in deployments that resolve", len(refs), f4))

    name = "consistency.change_deployment_known"
    claimed = [c for c in changes if c.deployment_id is not None]
    f5 = [Finding(name, "change", c.source_event_id, c.service,
                  f"deployment_id {c.deployment_id!r} names no known deployment")
          for c in claimed if c.deployment_id not in dep_by_id]
    out.append(_result(name, "consistency", "change deployment links that resolve", len(claimed), f5))
    return out


# --- anomaly ------------------------------------------------------------------------------------------


def anomaly_checks(
    deployments: Sequence[Deployment], incidents: Sequence[Incident], as_of: datetime, config: QualityConfig,
) -> list[CheckResult]:
    """Daily production deployments and daily incidents per service over the last ``anomaly_days``."""
    end_day = as_of.astimezone(config.calendar_tz).date()  # today is incomplete: not judged
    first_day = end_day - timedelta(days=config.anomaly_days)
    series_sources: list[tuple[str, str, dict[str, list[datetime]]]] = [
        ("anomaly.daily_deployments", "production deployments per day", {}),
        ("anomaly.daily_incidents", "incidents per day", {}),
    ]
    for d in deployments:
        if is_production(d, config.metrics):
            series_sources[0][2].setdefault(d.service, []).append(d.deployed_at)
    for i in incidents:
        series_sources[1][2].setdefault(i.service, []).append(i.started_at)
    out = []
    for name, what, by_service in series_sources:
        evaluated = 0
        findings: list[Finding] = []
        for service in sorted(by_service):
            series = daily_series(by_service[service], first_day, end_day, config.calendar_tz)
            res = detect_anomalies(series, config.anomaly_threshold, config.anomaly_min_points)
            evaluated += res.evaluated
            findings.extend(
                Finding(name, "series", f"{service}/{p.day.isoformat()}", service,
                        f"{p.value:g} {what} (median {res.median:g}, modified z-score {p.score:.1f})")
                for p in res.anomalies
            )
        out.append(_result(name, "anomaly", f"service-days with an unremarkable number of {what}",
                           evaluated, findings))
    return out


# --- all of it ----------------------------------------------------------------------------------------


def run_checks(
    deployments: Iterable[Deployment],
    changes: Iterable[Change],
    incidents: Iterable[Incident],
    *,
    as_of: datetime,
    parsed: ParseResult | None = None,
    config: QualityConfig | None = None,
) -> QualityReport:
    """Every check over the events (deduplicated by ``source_event_id``) and the resulting score."""
    cfg = config or QualityConfig()
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    deps, chs, incs = unique(deployments), unique(changes), unique(incidents)
    results: list[CheckResult] = []
    if parsed is not None:
        results.append(schema_check(parsed))
    results += null_checks(deps, chs, incs, as_of, cfg)
    results += range_checks(deps, chs, incs, as_of, cfg)
    results += consistency_checks(deps, chs, incs)
    results += anomaly_checks(deps, incs, as_of, cfg)
    return QualityReport(as_of, tuple(results), quality_score(results))
