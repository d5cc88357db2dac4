"""The alert state machine: open after N failures in a row, remind, resolve on recovery.

The decision (:func:`decide`) is a pure function of the recent statuses of one key and the alert that
is open for it, if any; :class:`AlertEngine` applies it through an :class:`AlertStore` (the MySQL one is
:class:`iact_agents.health.store.MySQLStore`) and sends every notification to every channel, recording
each attempt. At most one unresolved alert per key is guaranteed by the database (``alerts.open_key``
is UNIQUE), not by this code, so two overlapping runs cannot open two alerts.

Lifecycle of the alert of one key (``component:check:host``)::

    (none) --N non-ok in a row--> open --notify "open"
    open   --still failing, reminder interval passed--> notify "reminder" (not when acknowledged)
    open   --no channel took the "open" yet--> notify "open" again (not when acknowledged)
    open   --failing at a higher severity--> notify "escalated"
    open/acknowledged --ok--> resolved (resolved_at, detail.duration_s) --notify "resolved"

``unknown`` does not count as a failure unless ``alerting.alert_on_unknown`` is set, and it neither
confirms nor resolves an open alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from .channels import Channel, ChannelResult, Notification
from .config import AlertingSettings
from .models import CheckResult, Status

log = logging.getLogger(__name__)

Severity = Literal["warning", "critical"]
Event = Literal["open", "reminder", "escalated", "resolved"]
_SEVERITY_RANK = {"warning": 1, "critical": 2}


@dataclass(frozen=True)
class OpenAlert:
    """An unresolved row of ``alerts``."""

    id: int
    alert_key: str
    severity: Severity
    status: Literal["open", "acknowledged"]
    first_seen_at: datetime
    notified_at: datetime | None
    occurrences: int


@dataclass(frozen=True)
class Decision:
    action: Literal["none", "open", "update", "resolve"]
    severity: Severity | None = None
    notify: Event | None = None
    first_seen_at: datetime | None = None
    """For ``open``: when the run of failures began."""
    occurrences: int = 0


def is_failure(status: Status, alert_on_unknown: bool) -> bool:
    return status in (Status.WARNING, Status.CRITICAL) or (alert_on_unknown and status is Status.UNKNOWN)


def severity_of(status: Status) -> Severity:
    return "critical" if status is Status.CRITICAL else "warning"


def decide(
    recent: Sequence[tuple[Status, datetime]],
    alert: OpenAlert | None,
    *,
    threshold: int,
    reminder_interval: timedelta,
    alert_on_unknown: bool,
    now: datetime,
) -> Decision:
    """What to do for one key, given its latest results (newest first, the current one included)."""
    if not recent:
        return Decision("none")
    current = recent[0][0]
    failing = is_failure(current, alert_on_unknown)
    if alert is None:
        streak = recent[:threshold]
        if failing and len(streak) >= threshold and all(is_failure(s, alert_on_unknown) for s, _ in streak):
            return Decision("open", severity_of(current), "open", first_seen_at=streak[-1][1],
                            occurrences=len(streak))
        return Decision("none")
    if current is Status.OK:
        return Decision("resolve", alert.severity, "resolved")
    if not failing:  # unknown: neither confirms nor resolves
        return Decision("none")
    severity = severity_of(current)
    notify: Event | None = None
    if alert.notified_at is None and alert.status == "open":
        notify = "open"  # no channel succeeded yet: try again (not once a person acknowledged it)
    elif _SEVERITY_RANK[severity] > _SEVERITY_RANK[alert.severity]:
        notify = "escalated"
    elif alert.status == "open" and alert.notified_at is not None and now - alert.notified_at >= reminder_interval:
        notify = "reminder"
    # An alert does not calm down by itself: it keeps the highest severity seen until it resolves.
    if _SEVERITY_RANK[severity] < _SEVERITY_RANK[alert.severity]:
        severity = alert.severity
    return Decision("update", severity, notify)


class AlertStore(Protocol):
    def recent(self, result: CheckResult, limit: int) -> list[tuple[Status, datetime]]:
        """The statuses of the latest ``limit`` results of ``result.key``, newest first, with their times."""

    def open_alert(self, key: str) -> OpenAlert | None: ...

    def create_alert(self, result: CheckResult, severity: Severity, first_seen_at: datetime, occurrences: int,
                     now: datetime) -> OpenAlert | None:
        """Insert an open alert; None when one is already unresolved for this key (the UNIQUE open_key)."""

    def touch_alert(self, alert_id: int, result: CheckResult, severity: Severity, now: datetime) -> None: ...

    def mark_notified(self, alert_id: int, now: datetime) -> None: ...

    def resolve_alert(self, alert_id: int, result: CheckResult, now: datetime, duration_s: float) -> bool:
        """Mark resolved; False when it was already resolved (someone else got there first)."""

    def record_notification(self, alert_id: int, alert_key: str, event: Event, outcome: ChannelResult,
                            now: datetime) -> None: ...


@dataclass
class AlertOutcome:
    key: str
    action: str
    event: Event | None = None
    channels: list[ChannelResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "action": self.action,
            "event": self.event,
            "channels": [{"channel": c.channel, "ok": c.ok, "reason": c.reason} for c in self.channels],
        }


class AlertEngine:
    def __init__(self, store: AlertStore, channels: Sequence[Channel], settings: AlertingSettings) -> None:
        self.store = store
        self.channels = list(channels)
        self.settings = settings

    def process(self, results: Sequence[CheckResult], now: datetime) -> list[AlertOutcome]:
        """Apply the state machine to every result of this run (already recorded in the store)."""
        outcomes = []
        for result in results:
            outcome = self._process_one(result, now)
            if outcome.action != "none":
                outcomes.append(outcome)
        return outcomes

    def _process_one(self, result: CheckResult, now: datetime) -> AlertOutcome:
        threshold = self.settings.threshold(result.component, result.check_name)
        key = result.key
        alert = self.store.open_alert(key)
        recent = self.store.recent(result, threshold)
        decision = decide(
            recent,
            alert,
            threshold=threshold,
            reminder_interval=timedelta(minutes=self.settings.reminder_interval_min),
            alert_on_unknown=self.settings.alert_on_unknown,
            now=now,
        )
        if decision.action == "open":
            return self._open(result, decision, now)
        if decision.action == "update":
            assert alert is not None and decision.severity is not None
            self.store.touch_alert(alert.id, result, decision.severity, now)
            if decision.notify is None:
                return AlertOutcome(key, "update")
            sent = self._notify(alert, decision.notify, result, decision.severity, now)
            return AlertOutcome(key, "update", decision.notify, sent)
        if decision.action == "resolve":
            assert alert is not None
            return self._resolve(alert, result, now)
        return AlertOutcome(key, "none")

    def _open(self, result: CheckResult, decision: Decision, now: datetime) -> AlertOutcome:
        assert decision.severity is not None and decision.first_seen_at is not None
        created = self.store.create_alert(result, decision.severity, decision.first_seen_at, decision.occurrences,
                                          now)
        if created is None:  # another run opened it a moment ago: no second alert, no second message
            log.info("%s: an alert is already open", result.key)
            return AlertOutcome(result.key, "none")
        log.warning("%s: alert opened (%s): %s", result.key, decision.severity, result.summary)
        sent = self._notify(created, "open", result, decision.severity, now)
        return AlertOutcome(result.key, "open", "open", sent)

    def _resolve(self, alert: OpenAlert, result: CheckResult, now: datetime) -> AlertOutcome:
        duration = max(0.0, (now - alert.first_seen_at).total_seconds())
        if not self.store.resolve_alert(alert.id, result, now, duration):
            return AlertOutcome(result.key, "none")
        log.warning("%s: alert resolved after %.0f s", result.key, duration)
        sent = self._notify(alert, "resolved", result, alert.severity, now, duration_s=duration)
        return AlertOutcome(result.key, "resolve", "resolved", sent)

    def _notify(self, alert: OpenAlert, event: Event, result: CheckResult, severity: Severity, now: datetime, *,
                duration_s: float | None = None) -> list[ChannelResult]:
        note = Notification(
            event=event,
            alert_key=alert.alert_key,
            component=result.component,
            check_name=result.check_name,
            host=result.host,
            severity=severity,
            status=result.status.value,
            summary=result.summary,
            first_seen_at=alert.first_seen_at,
            at=now,
            duration_s=duration_s,
            detail=dict(result.detail) if isinstance(result.detail, Mapping) else {},
        )
        outcomes = send_all(self.channels, note)
        for outcome in outcomes:
            try:
                self.store.record_notification(alert.id, alert.alert_key, event, outcome, now)
            except Exception as exc:
                log.error("%s: could not record the %s attempt on %s: %s", alert.alert_key, event, outcome.channel,
                          exc)
        if any(o.ok for o in outcomes):
            self.store.mark_notified(alert.id, now)
        else:
            log.error("%s: no channel delivered the %s notification", alert.alert_key, event)
        return outcomes


def send_all(channels: Sequence[Channel], note: Notification) -> list[ChannelResult]:
    """Every channel gets its try; one that fails or raises never stops the others."""
    outcomes = []
    for channel in channels:
        try:
            outcome = channel.send(note)
        except Exception as exc:
            outcome = ChannelResult(channel.name, False, f"{type(exc).__name__}: {exc}"[:500])
        if not outcome.ok:
            log.warning("channel %s failed: %s", outcome.channel, outcome.reason)
        outcomes.append(outcome)
    return outcomes
