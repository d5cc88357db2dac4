"""The four DORA metrics as pure functions over event models, for a window ``[start, end)``.

Definitions (the numbers people will compare against the DORA tables, so each choice is stated):

*Production deployment*: a :class:`~.models.Deployment` whose ``environment`` is one of
``MetricsConfig.production_environments`` (default ``production``) and whose ``status`` is ``success``
or ``rolled_back``, i.e. it ran in production. ``failed`` deployments never ran there: they are counted
(``failed_deployments``) but are not deployments in any metric.

Deployment frequency
    ``deployments_per_day`` = production deployments in the window ÷ window length in days.
    ``deployment_days_per_week`` = distinct calendar days with ≥ 1 production deployment * 7 ÷ window
    days. Calendar days are taken in ``MetricsConfig.calendar_tz`` (default UTC). The DORA bucket is
    derived from deployment days, not deployment counts (ten deploys on one day are one day).

Lead time for changes
    For each change, its production deployment is the *earliest successful* production deployment
    linked to it (by the change's ``deployment_id`` or by the deployment's ``change_ids``; a change
    shipped by a failed attempt and then a retry counts once, at the retry). Lead time = that
    deployment's time - the change's first commit time (:attr:`~.models.Change.lead_time_start`, which
    uses ``first_commit_at`` for squash merges). Changes whose deployment falls in the window are
    measured; the median and the 90th percentile are reported (linear interpolation between closest
    ranks, the default of numpy and of Excel's PERCENTILE.INC). A deployment before the first commit is
    a data error: such changes are counted in ``invalid`` and left out.

Change failure rate
    failed ÷ production deployments in the window, where a deployment is failed if ≥ 1 incident is
    attributed to it (however many: it counts once) or, with ``rollbacks_are_failures`` (default), if
    its status is ``rolled_back``. Incidents are attributed by :func:`attribute_incidents`.

Failed deployment recovery time
    Median of ``resolved_at - started_at`` over incidents that started in the window and are attributed
    to a deployment (a failure caused by a change; unattributed incidents are counted in ``unlinked``).
    Unresolved incidents are counted in ``unresolved`` and left out, as are incidents resolved before
    they started (``invalid``). A rollback without an incident has no resolution time and no recovery.

Only incidents in a production environment enter the metrics (the others are counted in
``MetricsReport.non_production_incidents``). Events are identified by ``(source, source_event_id)``
and repeated events count once; references between events resolve with :class:`EventIndex`.

Per service, deployments and failures belong to the deployment's service; a change's lead time to the
service of the deployment that shipped it (an undeployed change to its own); an attributed incident
to its deployment's service and an unattributed one to its own. ``ALL_SERVICES`` is the overall row.

A metric with nothing to measure is ``None`` with a ``reason``, never 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Generic, Literal, TypeVar

from ..errors import InputError
from .models import Change, Deployment, Incident

log = logging.getLogger(__name__)

ALL_SERVICES = "*"
"""Service key of the overall row (not a valid service name, so it cannot collide)."""

DEFAULT_ATTRIBUTION_WINDOW = timedelta(hours=24)
"""An incident starting up to 24 h after a deployment of its service is attributed to that deployment.

Most deployment-induced incidents surface within a day (traffic cycles, batch jobs, the next business
day); longer windows increasingly blame the last deployment for unrelated failures, which is the error
this attribution exists to avoid. Services with slow-surfacing failures can widen it in the config."""

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0


class MetricsInputError(InputError):
    """A window or argument the metric functions cannot work with."""


@dataclass(frozen=True)
class MetricsConfig:
    production_environments: frozenset[str] = frozenset({"production"})
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW
    rollbacks_are_failures: bool = True
    calendar_tz: tzinfo = UTC

    def __post_init__(self) -> None:
        if self.attribution_window < timedelta(0):
            raise MetricsInputError("attribution window must not be negative")
        if not self.production_environments:
            raise MetricsInputError("at least one production environment is needed")


@dataclass(frozen=True)
class Window:
    """The half-open interval ``[start, end)`` of aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MetricsInputError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise MetricsInputError(f"window end {self.end.isoformat()} is not after its start")

    @classmethod
    def ending(cls, end: datetime, days: int) -> Window:
        if days <= 0:
            raise MetricsInputError(f"window length must be positive, got {days} days")
        return cls(end - timedelta(days=days), end)

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / SECONDS_PER_DAY

    def __contains__(self, instant: object) -> bool:
        return isinstance(instant, datetime) and self.start <= instant < self.end


@dataclass(frozen=True)
class Attribution:
    """How one incident was (or was not) tied to a deployment (``deployment``: its source and id)."""

    incident_source: str
    incident_id: str
    service: str
    started_at: datetime
    deployment: tuple[str, str] | None
    method: Literal["explicit", "window", "unlinked"]
    reason: str

    @property
    def deployment_id(self) -> str | None:
        return self.deployment[1] if self.deployment else None


@dataclass(frozen=True)
class DeploymentFrequency:
    deployments: int
    deployment_days: int
    failed_deployments: int
    deployments_per_day: float | None
    deployment_days_per_week: float | None
    reason: str | None = None


@dataclass(frozen=True)
class LeadTime:
    changes: int
    median_hours: float | None
    p90_hours: float | None
    invalid: int
    undeployed: int
    reason: str | None = None


@dataclass(frozen=True)
class ChangeFailureRate:
    deployments: int
    failed: int
    with_incidents: int
    rolled_back_without_incident: int
    rate: float | None
    reason: str | None = None


@dataclass(frozen=True)
class RecoveryTime:
    incidents: int
    median_hours: float | None
    unresolved: int
    unlinked: int
    invalid: int
    reason: str | None = None


@dataclass(frozen=True)
class Members:
    """The events behind each count of one :class:`ServiceMetrics`, as ``(source, source_event_id)`` keys:
    the drill-down. Every count is the length of its tuple (the counts are computed from these lists)."""

    deployments: tuple[Key, ...] = ()
    """Production deployments in the window (``deployment_frequency.deployments``, which is also
    ``change_failure_rate.deployments``)."""
    failed_attempts: tuple[Key, ...] = ()
    """``deployment_frequency.failed_deployments``: production attempts with status ``failed``."""
    failed_with_incidents: tuple[Key, ...] = ()
    """``change_failure_rate.with_incidents``."""
    rolled_back_without_incident: tuple[Key, ...] = ()
    """``change_failure_rate.rolled_back_without_incident``; with the above, ``change_failure_rate.failed``."""
    changes: tuple[Key, ...] = ()
    """``lead_time.changes``: changes first shipped to production in the window."""
    lead_hours: tuple[float, ...] = ()
    """The lead time of each of ``changes`` (same order): ``lead_time.median_hours`` is their median."""
    invalid_changes: tuple[Key, ...] = ()
    undeployed_changes: tuple[Key, ...] = ()
    incidents: tuple[Key, ...] = ()
    """``recovery_time.incidents``: resolved incidents attributed to a deployment, started in the window."""
    recovery_hours: tuple[float, ...] = ()
    """The time to restore of each of ``incidents`` (same order)."""
    unresolved_incidents: tuple[Key, ...] = ()
    unlinked_incidents: tuple[Key, ...] = ()
    invalid_incidents: tuple[Key, ...] = ()


@dataclass(frozen=True)
class ServiceMetrics:
    service: str
    window: Window
    deployment_frequency: DeploymentFrequency
    lead_time: LeadTime
    change_failure_rate: ChangeFailureRate
    recovery_time: RecoveryTime
    unlinked_incidents: tuple[Attribution, ...] = ()
    members: Members = Members()


@dataclass(frozen=True)
class MetricsReport:
    window: Window
    overall: ServiceMetrics
    services: dict[str, ServiceMetrics] = field(default_factory=dict)
    attributions: dict[tuple[str, str], Attribution] = field(default_factory=dict)
    non_production_incidents: int = 0
    """Incidents outside the production environments: in no metric, counted here."""


# --- helpers --------------------------------------------------------------------------------------

EventT = TypeVar("EventT", Deployment, Change, Incident)
Key = tuple[str, str]
"""``(source, source_event_id)``: the identity of an event of a known type."""


def key_of(event: Deployment | Change | Incident) -> Key:
    return (event.source, event.source_event_id)


def unique(events: Iterable[EventT]) -> list[EventT]:
    """First event per ``(source, source_event_id)``: a repeated event never counts twice."""
    seen: dict[Key, EventT] = {}
    for event in events:
        seen.setdefault(key_of(event), event)
    return list(seen.values())


class EventIndex(Generic[EventT]):
    """Resolves the ids that events use to refer to each other (``deployment_id``, ``change_ids``).

    A reference names a ``source_event_id``. An event of the referring event's own source wins;
    otherwise the reference resolves only if exactly one source has an event with that id. Two or
    more candidates make it *ambiguous*: unresolved, with a reason, never a guess.
    """

    def __init__(self, events: Iterable[EventT], noun: str) -> None:
        self.noun = noun
        self._by_id: dict[str, list[EventT]] = {}
        for event in events:
            self._by_id.setdefault(event.source_event_id, []).append(event)

    def resolve(self, event_id: str, source: str) -> tuple[EventT | None, str | None]:
        """``(event, None)`` or ``(None, reason)``."""
        found = self._by_id.get(event_id, [])
        same = [e for e in found if e.source == source]
        if len(same) == 1:
            return same[0], None
        if len(found) == 1:
            return found[0], None
        if not found:
            return None, f"{event_id!r} names no known {self.noun}"
        sources = ", ".join(sorted({e.source for e in found}))
        return None, f"{event_id!r} is ambiguous: {self.noun}s of sources {sources} have that id"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (Hyndman-Fan type 7; numpy's default)."""
    if not values:
        raise MetricsInputError("percentile of an empty sequence")
    if not 0.0 <= q <= 1.0:
        raise MetricsInputError(f"quantile must be within [0, 1], got {q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / SECONDS_PER_HOUR


def is_production(dep: Deployment, config: MetricsConfig) -> bool:
    """Ran in a production environment (``success`` or ``rolled_back``)."""
    return dep.environment in config.production_environments and dep.status != "failed"


def deployments_of_changes(
    deployments: Sequence[Deployment], changes: Sequence[Change]
) -> dict[Key, list[Deployment]]:
    """Every deployment linked to each change, by the change's ``deployment_id`` or by the
    deployment's ``change_ids`` (both resolved with :class:`EventIndex`; unresolved links are the
    quality checks' business)."""
    dep_index = EventIndex(deployments, "deployment")
    change_index = EventIndex(changes, "change")
    out: dict[Key, dict[Key, Deployment]] = {}
    for dep in deployments:
        for cid in dep.change_ids:
            ch, _ = change_index.resolve(cid, dep.source)
            if ch is not None:
                out.setdefault(key_of(ch), {})[key_of(dep)] = dep
    for ch in changes:
        if ch.deployment_id is not None:
            target, _ = dep_index.resolve(ch.deployment_id, ch.source)
            if target is not None:
                out.setdefault(key_of(ch), {})[key_of(target)] = target
    return {k: list(v.values()) for k, v in out.items()}


# --- attribution ----------------------------------------------------------------------------------


def attribute_incidents(
    deployments: Iterable[Deployment], incidents: Iterable[Incident], config: MetricsConfig | None = None
) -> dict[Key, Attribution]:
    """Tie each incident to the deployment that caused it, or say why not; keyed by the incident's
    ``(source, source_event_id)``.

    1. An explicit ``deployment_id`` is followed if it resolves (:class:`EventIndex`); if it does not,
       the incident is *unlinked* (the source said which deployment; another one is not substituted).
    2. Otherwise the latest production deployment of the same service at or before ``started_at`` and
       at most ``attribution_window`` before it (ties broken by source and id).
    3. Otherwise unlinked, with the reason.
    """
    cfg = config or MetricsConfig()
    deps = unique(deployments)
    index = EventIndex(deps, "deployment")
    by_service: dict[str, list[Deployment]] = {}
    for dep in deps:
        if is_production(dep, cfg):
            by_service.setdefault(dep.service, []).append(dep)
    out: dict[Key, Attribution] = {}
    for inc in unique(incidents):
        base = (inc.source, inc.source_event_id, inc.service, inc.started_at)
        if inc.deployment_id is not None:
            target, problem = index.resolve(inc.deployment_id, inc.source)
            if target is not None:
                att = Attribution(*base, key_of(target), "explicit", "explicit deployment_id")
            else:
                att = Attribution(*base, None, "unlinked", f"deployment_id {problem}")
        else:
            earliest = inc.started_at - cfg.attribution_window
            candidates = [
                d for d in by_service.get(inc.service, []) if earliest <= d.deployed_at <= inc.started_at
            ]
            if candidates:
                best = max(candidates, key=lambda d: (d.deployed_at, d.source, d.source_event_id))
                gap = _hours(inc.started_at - best.deployed_at)
                att = Attribution(
                    *base, key_of(best), "window",
                    f"latest production deployment of {inc.service}, {gap:.2f} h before the start",
                )
            else:
                att = Attribution(
                    *base, None, "unlinked",
                    f"no production deployment of {inc.service} within "
                    f"{_hours(cfg.attribution_window):g} h before the start",
                )
        out[key_of(inc)] = att
    return out


# --- the metrics ------------------------------------------------------------------------------------


def _deployment_frequency(
    deps: Sequence[Deployment], failed: int, window: Window, cfg: MetricsConfig
) -> DeploymentFrequency:
    if not deps:
        return DeploymentFrequency(0, 0, failed, None, None, "no production deployments in the window")
    days = {d.deployed_at.astimezone(cfg.calendar_tz).date() for d in deps}
    return DeploymentFrequency(
        deployments=len(deps),
        deployment_days=len(days),
        failed_deployments=failed,
        deployments_per_day=len(deps) / window.days,
        deployment_days_per_week=len(days) * 7 / window.days,
    )


def _lead_time(samples: Sequence[float], invalid: int, undeployed: int) -> LeadTime:
    if not samples:
        return LeadTime(0, None, None, invalid, undeployed, "no changes reached production in the window")
    return LeadTime(len(samples), percentile(samples, 0.5), percentile(samples, 0.9), invalid, undeployed)


def _failed_deployments(
    deps: Sequence[Deployment], caused: dict[Key, int], cfg: MetricsConfig
) -> tuple[list[Deployment], list[Deployment]]:
    """Deployments with ≥ 1 attributed incident, and rolled back ones without (if rollbacks are failures)."""
    with_incidents = [d for d in deps if caused.get(key_of(d), 0) > 0]
    rolled_back = [
        d for d in deps
        if cfg.rollbacks_are_failures and d.status == "rolled_back" and caused.get(key_of(d), 0) == 0
    ]
    return with_incidents, rolled_back


def _change_failure_rate(
    deps: Sequence[Deployment], caused: dict[Key, int], cfg: MetricsConfig
) -> ChangeFailureRate:
    if not deps:
        return ChangeFailureRate(0, 0, 0, 0, None, "no production deployments in the window")
    with_incidents, rolled_back = _failed_deployments(deps, caused, cfg)
    failed = len(with_incidents) + len(rolled_back)
    return ChangeFailureRate(len(deps), failed, len(with_incidents), len(rolled_back), failed / len(deps))


def _recovery_time(
    durations: Sequence[float], unresolved: int, unlinked: int, invalid: int
) -> RecoveryTime:
    if not durations:
        reason = (
            "no resolved incidents attributed to a deployment started in the window"
            if unresolved or unlinked or invalid
            else "no incidents attributed to a deployment started in the window"
        )
        return RecoveryTime(0, None, unresolved, unlinked, invalid, reason)
    return RecoveryTime(len(durations), percentile(durations, 0.5), unresolved, unlinked, invalid)


def _lead_time_samples(
    deps: Sequence[Deployment], chs: Sequence[Change], window: Window, cfg: MetricsConfig
) -> tuple[list[tuple[str, float, Key]], list[tuple[str, Key]], list[tuple[str, Key]]]:
    """(service, hours, change) per change first shipped in the window; (service, change) of invalid and
    undeployed ones."""
    shipped_by = deployments_of_changes(deps, chs)
    lead: list[tuple[str, float, Key]] = []
    invalid: list[tuple[str, Key]] = []
    undeployed: list[tuple[str, Key]] = []
    for ch in chs:
        shipped = [
            d for d in shipped_by.get(key_of(ch), []) if is_production(d, cfg) and d.status == "success"
        ]
        if not shipped:
            if ch.committed_at in window:
                undeployed.append((ch.service, key_of(ch)))
            continue
        first = min(shipped, key=lambda d: (d.deployed_at, d.source, d.source_event_id))
        if first.deployed_at not in window:
            continue
        hours = _hours(first.deployed_at - ch.lead_time_start)
        if hours < 0:
            invalid.append((first.service, key_of(ch)))
        else:
            lead.append((first.service, hours, key_of(ch)))
    return lead, invalid, undeployed


def _recovery_samples(
    incs: Sequence[Incident], attributions: dict[Key, Attribution], dep_by_key: dict[Key, Deployment],
    window: Window,
) -> tuple[list[tuple[str, float, Key]], list[tuple[str, Key]], list[tuple[str, Key]], list[Attribution]]:
    """(service, hours, incident) per attributed resolved incident started in the window; the others by kind."""
    recov: list[tuple[str, float, Key]] = []
    unresolved: list[tuple[str, Key]] = []
    invalid: list[tuple[str, Key]] = []
    unlinked: list[Attribution] = []
    for inc in incs:
        if inc.started_at not in window:
            continue
        att = attributions[key_of(inc)]
        if att.deployment is None:
            unlinked.append(att)
            continue
        owner = dep_by_key[att.deployment].service
        if inc.resolved_at is None:
            unresolved.append((owner, key_of(inc)))
        elif inc.resolved_at < inc.started_at:
            invalid.append((owner, key_of(inc)))
        else:
            recov.append((owner, _hours(inc.resolved_at - inc.started_at), key_of(inc)))
    return recov, unresolved, invalid, unlinked


def compute_metrics(
    deployments: Iterable[Deployment],
    changes: Iterable[Change],
    incidents: Iterable[Incident],
    window: Window,
    config: MetricsConfig | None = None,
) -> MetricsReport:
    """All four metrics, per service and overall (:data:`ALL_SERVICES`), for one window."""
    cfg = config or MetricsConfig()
    deps = unique(deployments)
    chs = unique(changes)
    all_incs = unique(incidents)
    incs = [i for i in all_incs if i.environment in cfg.production_environments]
    dep_by_key = {key_of(d): d for d in deps}
    attributions = attribute_incidents(deps, incs, cfg)

    # Deployment side: production deployments in the window, and failed attempts, per service.
    prod_in_window = [d for d in deps if is_production(d, cfg) and d.deployed_at in window]
    failed_in_window = [
        d for d in deps
        if d.environment in cfg.production_environments and d.status == "failed" and d.deployed_at in window
    ]
    caused: dict[Key, int] = {}
    for att in attributions.values():
        if att.deployment is not None:
            caused[att.deployment] = caused.get(att.deployment, 0) + 1

    lead, invalid_lead, undeployed = _lead_time_samples(deps, chs, window, cfg)
    recov, unresolved, invalid_recov, unlinked = _recovery_samples(incs, attributions, dep_by_key, window)

    def build(service: str | None) -> ServiceMetrics:
        def mine(s: str) -> bool:
            return service is None or s == service

        p = [d for d in prod_in_window if mine(d.service)]
        unl = tuple(a for a in unlinked if mine(a.service))
        with_incidents, rolled_back = _failed_deployments(p, caused, cfg)
        members = Members(
            deployments=tuple(key_of(d) for d in p),
            failed_attempts=tuple(key_of(d) for d in failed_in_window if mine(d.service)),
            failed_with_incidents=tuple(key_of(d) for d in with_incidents),
            rolled_back_without_incident=tuple(key_of(d) for d in rolled_back),
            changes=tuple(k for s, _, k in lead if mine(s)),
            lead_hours=tuple(h for s, h, _ in lead if mine(s)),
            invalid_changes=tuple(k for s, k in invalid_lead if mine(s)),
            undeployed_changes=tuple(k for s, k in undeployed if mine(s)),
            incidents=tuple(k for s, _, k in recov if mine(s)),
            recovery_hours=tuple(h for s, h, _ in recov if mine(s)),
            unresolved_incidents=tuple(k for s, k in unresolved if mine(s)),
            unlinked_incidents=tuple((a.incident_source, a.incident_id) for a in unl),
            invalid_incidents=tuple(k for s, k in invalid_recov if mine(s)),
        )
        return ServiceMetrics(
            service=ALL_SERVICES if service is None else service,
            window=window,
            deployment_frequency=_deployment_frequency(p, len(members.failed_attempts), window, cfg),
            lead_time=_lead_time(members.lead_hours, len(members.invalid_changes), len(members.undeployed_changes)),
            change_failure_rate=_change_failure_rate(p, caused, cfg),
            recovery_time=_recovery_time(
                members.recovery_hours,
                len(members.unresolved_incidents),
                len(unl),
                len(members.invalid_incidents),
            ),
            unlinked_incidents=unl,
            members=members,
        )

    services = sorted({d.service for d in deps} | {c.service for c in chs} | {i.service for i in incs})
    report = MetricsReport(
        window=window,
        overall=build(None),
        services={s: build(s) for s in services},
        attributions=attributions,
        non_production_incidents=len(all_incs) - len(incs),
    )
    log.debug(
        "metrics for %s..%s: %d services, %d unlinked incidents",
        window.start.isoformat(), window.end.isoformat(), len(services), len(unlinked),
    )
    return report
