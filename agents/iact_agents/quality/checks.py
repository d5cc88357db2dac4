"""Data quality checks over DORA events: schema, null, range, consistency and anomaly checks.

Every check states the population it evaluates (``evaluated``) and how many items failed, with one
:class:`~.score.Finding` per failure, so the score (:mod:`.score`) and the report can say exactly what
is wrong and where. All functions are pure: "now" is the ``as_of`` argument. References between events
are resolved as the metrics resolve them (:class:`~iact_agents.dora.metrics.EventIndex`).

==========================================  ==============================================================
check                                       an item fails when
==========================================  ==============================================================
schema.ingest                               an input event was rejected by validation
null.deployment_version                     a deployment has no ``version``
null.change_deployment_link                 a change older than the grace period is linked to no deployment
null.incident_resolved_at                   an incident older than the grace period is still unresolved
range.incident_resolution_after_start       an incident is resolved before it started
range.deployment_duration                   a deployment finished before it started
range.change_commit_order                   ``first_commit_at`` or ``authored_at`` is after ``committed_at``
range.deployment_after_commits              a deployment is before the first commit of a change it shipped
range.not_in_future                         an event has a timestamp after ``as_of`` (+ clock skew)
consistency.incident_deployment_known       an incident's ``deployment_id`` resolves to no (or no single)
                                            deployment
consistency.incident_same_service           an incident is linked to a deployment of another service
consistency.incident_deployment_production  an incident is linked to a deployment that never ran in
                                            production (other environment, or status ``failed``)
consistency.change_deployment_known         a change's ``deployment_id`` does not resolve
consistency.deployment_changes_known        an entry of a deployment's ``change_ids`` does not resolve
consistency.change_same_service             a change is shipped by a deployment of another service
consistency.ids_distinct                    an event's id differs from another's of the same type and
                                            source only in case, accents or invisible characters (the
                                            store keeps them apart; before migration 0013 it merged them)
anomaly.daily_deployments                   a service-day's production deployments are anomalous
anomaly.daily_incidents                     a service-day's incidents are anomalous
==========================================  ==============================================================
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from ..dora.metrics import EventIndex, MetricsConfig, deployments_of_changes, is_production, key_of, unique
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
    check: str, category: Category, dataset: str, description: str, *, evaluated: int, findings: list[Finding]
) -> CheckResult:
    return CheckResult(check, category, description, evaluated, len(findings), tuple(findings), dataset)


def _finding(check: str, event: Deployment | Change | Incident, message: str) -> Finding:
    return Finding(check, event.type, event.source_event_id, event.service, message)


# --- schema -------------------------------------------------------------------------------------------


def schema_check(parsed: ParseResult) -> CheckResult:
    """Share of input events that passed validation (duplicates are neither good nor bad)."""
    name = "schema.ingest"
    findings = [
        Finding(name, r.event_type or "unknown", r.source_event_id or f"line {r.line}", None, r.describe())
        for r in parsed.rejected
    ]
    return _result(name, "schema", "ingest", "events that passed schema validation",
                   evaluated=len(parsed.accepted) + len(parsed.rejected), findings=findings)


# --- null ---------------------------------------------------------------------------------------------


def null_checks(
    deployments: Sequence[Deployment], changes: Sequence[Change], incidents: Sequence[Incident],
    as_of: datetime, config: QualityConfig,
) -> list[CheckResult]:
    name = "null.deployment_version"
    f1 = [_finding(name, d, "deployment has no version") for d in deployments if d.version is None]
    out = [_result(name, "null", "deployments", "deployments that name their version",
                   evaluated=len(deployments), findings=f1)]

    name = "null.change_deployment_link"
    shipped = deployments_of_changes(deployments, changes)
    old = [c for c in changes if c.committed_at <= as_of - config.unlinked_change_after]
    f2 = [_finding(name, c, f"no deployment names this change {config.unlinked_change_after.days} days "
                            "after its commit")
          for c in old if c.deployment_id is None and key_of(c) not in shipped]
    out.append(_result(name, "null", "changes", "changes past the grace period linked to a deployment",
                       evaluated=len(old), findings=f2))

    name = "null.incident_resolved_at"
    old_inc = [i for i in incidents if i.started_at <= as_of - config.stale_incident_after]
    f3 = [_finding(name, i, f"still unresolved {config.stale_incident_after.days} days after it started")
          for i in old_inc if i.resolved_at is None]
    out.append(_result(name, "null", "incidents", "incidents past the grace period with a resolution",
                       evaluated=len(old_inc), findings=f3))
    return out


# --- range --------------------------------------------------------------------------------------------


def _timestamps(event: Deployment | Change | Incident) -> list[datetime]:
    if isinstance(event, Deployment):
        return [t for t in (event.deployed_at, event.started_at) if t is not None]
    if isinstance(event, Change):
        return [t for t in (event.committed_at, event.authored_at, event.first_commit_at) if t is not None]
    return [t for t in (event.started_at, event.resolved_at) if t is not None]


def range_checks(
    deployments: Sequence[Deployment], changes: Sequence[Change], incidents: Sequence[Incident],
    as_of: datetime, config: QualityConfig,
) -> list[CheckResult]:
    name = "range.incident_resolution_after_start"
    out: list[CheckResult] = []
    resolved = [(i, i.resolved_at) for i in incidents if i.resolved_at is not None]
    f1 = [_finding(name, i, f"resolved at {r.isoformat()}, before it started at {i.started_at.isoformat()}")
          for i, r in resolved if r < i.started_at]
    out.append(_result(name, "range", "incidents", "resolved incidents not resolved before they started",
                       evaluated=len(resolved), findings=f1))

    name = "range.deployment_duration"
    timed = [(d, d.started_at) for d in deployments if d.started_at is not None]
    f2 = [_finding(name, d, f"finished at {d.deployed_at.isoformat()}, before it started at {s.isoformat()}")
          for d, s in timed if d.deployed_at < s]
    out.append(_result(name, "range", "deployments", "deployments that do not finish before they start",
                       evaluated=len(timed), findings=f2))

    name = "range.change_commit_order"
    dated = [c for c in changes if c.first_commit_at is not None or c.authored_at is not None]
    f3 = []
    for c in dated:
        later = [label for label, t in (("first_commit_at", c.first_commit_at), ("authored_at", c.authored_at))
                 if t is not None and t > c.committed_at]
        if later:
            f3.append(_finding(name, c, f"{' and '.join(later)} after committed_at {c.committed_at.isoformat()}"))
    out.append(_result(name, "range", "changes", "changes whose first commit is not after the merged commit",
                       evaluated=len(dated), findings=f3))

    name = "range.deployment_after_commits"
    shipped = deployments_of_changes(deployments, changes)
    pairs = [(d, c) for c in changes for d in shipped.get(key_of(c), [])]
    f4 = [_finding(name, d, f"deployed at {d.deployed_at.isoformat()}, before change {c.source_event_id!r} "
                            f"was first committed at {c.lead_time_start.isoformat()}")
          for d, c in pairs if d.deployed_at < c.lead_time_start]
    out.append(_result(name, "range", "deployments", "deployment-change links where the deployment follows "
                       "the commits", evaluated=len(pairs), findings=f4))

    name = "range.not_in_future"
    limit = as_of + config.clock_skew
    events: list[Deployment | Change | Incident] = [*deployments, *changes, *incidents]
    f5 = [_finding(name, e, f"has a timestamp after {as_of.isoformat()}")
          for e in events if any(t > limit for t in _timestamps(e))]
    out.append(_result(name, "range", "all", "events with no timestamp in the future",
                       evaluated=len(events), findings=f5))
    return out


# --- consistency --------------------------------------------------------------------------------------


def consistency_checks(
    deployments: Sequence[Deployment], changes: Sequence[Change], incidents: Sequence[Incident],
    config: QualityConfig | None = None,
) -> list[CheckResult]:
    cfg = config or QualityConfig()
    dep_index = EventIndex(deployments, "deployment")
    change_index = EventIndex(changes, "change")
    out: list[CheckResult] = []

    name = "consistency.incident_deployment_known"
    linked: list[tuple[Incident, Deployment]] = []
    f1 = []
    for i in incidents:
        if i.deployment_id is None:
            continue
        target, problem = dep_index.resolve(i.deployment_id, i.source)
        if target is None:
            f1.append(_finding(name, i, f"deployment_id {problem}"))
        else:
            linked.append((i, target))
    out.append(_result(name, "consistency", "incidents", "incident deployment links that resolve",
                       evaluated=len(linked) + len(f1), findings=f1))

    name = "consistency.incident_same_service"
    f2 = [_finding(name, i, f"linked to deployment {d.source_event_id!r} of another service ({d.service})")
          for i, d in linked if d.service != i.service]
    out.append(_result(name, "consistency", "incidents", "incidents linked to a deployment of their own "
                       "service", evaluated=len(linked), findings=f2))

    name = "consistency.incident_deployment_production"
    f3 = [_finding(name, i, f"linked to deployment {d.source_event_id!r}, which never ran in production "
                            f"(environment {d.environment}, status {d.status})")
          for i, d in linked if not is_production(d, cfg.metrics)]
    out.append(_result(name, "consistency", "incidents", "incidents linked to a deployment that ran in "
                       "production", evaluated=len(linked), findings=f3))

    name = "consistency.change_deployment_known"
    claimed = [c for c in changes if c.deployment_id is not None]
    f4 = []
    for c in claimed:
        _, problem = dep_index.resolve(c.deployment_id or "", c.source)
        if problem is not None:
            f4.append(_finding(name, c, f"deployment_id {problem}"))
    out.append(_result(name, "consistency", "changes", "change deployment links that resolve",
                       evaluated=len(claimed), findings=f4))

    name = "consistency.deployment_changes_known"
    refs = [(d, cid) for d in deployments for cid in d.change_ids]
    f5 = []
    for d, cid in refs:
        _, problem = change_index.resolve(cid, d.source)
        if problem is not None:
            f5.append(_finding(name, d, f"change_ids entry {problem}"))
    out.append(_result(name, "consistency", "deployments", "change ids in deployments that resolve",
                       evaluated=len(refs), findings=f5))

    name = "consistency.change_same_service"
    shipped = deployments_of_changes(deployments, changes)
    pairs = [(c, d) for c in changes for d in shipped.get(key_of(c), [])]
    f6 = [_finding(name, c, f"shipped by deployment {d.source_event_id!r} of another service ({d.service})")
          for c, d in pairs if d.service != c.service]
    out.append(_result(name, "consistency", "changes", "changes shipped by a deployment of their own service",
                       evaluated=len(pairs), findings=f6))
    out.append(ids_distinct_check([*deployments, *changes, *incidents]))
    return out


def _folded(event_id: str) -> str:
    """``event_id`` without case, accents and invisible (format) characters: what a case- and
    accent-insensitive collation would have compared."""
    decomposed = unicodedata.normalize("NFKD", event_id)
    return "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Cf")).casefold()


def ids_distinct_check(events: Sequence[Deployment | Change | Incident]) -> CheckResult:
    """Ids are compared exactly, so ``Deploy-A`` and ``deploy-a`` are two events; a source that sends
    both probably means one (or changed how it spells its ids), and before migration 0013 the database
    had merged them into one row. Every member of such a group is reported, none is dropped."""
    name = "consistency.ids_distinct"
    groups: dict[tuple[str, str, str], list[Deployment | Change | Incident]] = {}
    for e in events:
        groups.setdefault((e.type, e.source, _folded(e.source_event_id)), []).append(e)
    findings = []
    for members in groups.values():
        if len(members) > 1:
            spellings = ", ".join(repr(m.source_event_id) for m in members)
            findings += [_finding(name, m, f"ids {spellings} differ only in case, accents or invisible characters")
                         for m in members]
    return _result(name, "consistency", "all", "events whose id is not a look-alike of another's",
                   evaluated=len(events), findings=findings)


# --- anomaly ------------------------------------------------------------------------------------------


def anomaly_checks(
    deployments: Sequence[Deployment], incidents: Sequence[Incident], as_of: datetime, config: QualityConfig,
) -> list[CheckResult]:
    """Daily production deployments and daily incidents per service over the ``anomaly_days`` full
    days before ``as_of`` (today is incomplete and not judged)."""
    end_day = as_of.astimezone(config.calendar_tz).date()
    first_day = end_day - timedelta(days=config.anomaly_days)
    deploy_times: dict[str, list[datetime]] = {}
    for d in deployments:
        if is_production(d, config.metrics):
            deploy_times.setdefault(d.service, []).append(d.deployed_at)
    incident_times: dict[str, list[datetime]] = {}
    for i in incidents:
        incident_times.setdefault(i.service, []).append(i.started_at)
    out = []
    for name, dataset, what, by_service in (
        ("anomaly.daily_deployments", "deployments", "production deployments per day", deploy_times),
        ("anomaly.daily_incidents", "incidents", "incidents per day", incident_times),
    ):
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
        out.append(_result(name, "anomaly", dataset, f"service-days with an unremarkable number of {what}",
                           evaluated=evaluated, findings=findings))
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
    """Every check over the events (deduplicated by source and id) and the resulting score."""
    cfg = config or QualityConfig()
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    deps, chs, incs = unique(deployments), unique(changes), unique(incidents)
    results: list[CheckResult] = []
    if parsed is not None:
        results.append(schema_check(parsed))
    results += null_checks(deps, chs, incs, as_of, cfg)
    results += range_checks(deps, chs, incs, as_of, cfg)
    results += consistency_checks(deps, chs, incs, cfg)
    results += anomaly_checks(deps, incs, as_of, cfg)
    return QualityReport(as_of, tuple(results), quality_score(results))
