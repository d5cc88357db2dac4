"""Alerts about the metrics store itself, sent without it.

The regular alerts (:mod:`.alerting`) live in MySQL: they open only after the results are recorded. When
MySQL cannot take the results (``mysql:reachable`` or ``mysql:writable`` is critical), nothing would be
said but an exit code. This module keeps that outage in the agent's local state (section
``mysql_outage`` of :class:`~.localstate.LocalState`) and notifies the channels directly:

    (none)  --failing--> down, 1 failure (silent until the failures reach the threshold of ``mysql``)
    down    --failing, failures >= threshold, nothing delivered yet--> notify "open"
    down    --failing, last delivery older than ``mysql_down_reminder_min``--> notify "reminder"
    down    --results recorded again--> notify "resolved" (only if an "open" was delivered), forget

A notification counts as delivered when at least one channel took it; otherwise the next run tries again.
The threshold is the one the MySQL-backed alert of ``mysql:reachable`` would use
(``alerting.threshold("mysql", "reachable")``). Without local state (folder not writable) the agent cannot
count nor rate-limit: it then notifies at every failing run rather than say nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .alerting import AlertOutcome, Event, send_all
from .channels import Channel, Notification
from .config import AlertingSettings
from .localstate import LocalState, StateUnavailable
from .models import CheckResult
from .parsers import json_count, json_seconds

log = logging.getLogger(__name__)

SECTION = "mysql_outage"


@dataclass(frozen=True)
class Outage:
    """An ongoing outage of the metrics store, as kept in the local state."""

    key: str
    """Alert key of the check that failed first (``mysql:reachable:<host>``); the resolve names it too."""
    component: str
    check_name: str
    since: float
    """Epoch seconds of the first failing run."""
    failures: int
    notified_at: float | None = None
    """Epoch seconds of the last notification a channel took; None: nothing delivered yet."""
    summary: str = ""

    @classmethod
    def from_state(cls, raw: Any) -> Outage | None:
        """The outage kept in the state section, or None when there is none or it is not understood."""
        if not isinstance(raw, dict):
            return None
        key, component, check, summary = (raw.get(k) for k in ("key", "component", "check_name", "summary"))
        since, failures, notified = raw.get("since"), raw.get("failures"), raw.get("notified_at")
        if not (isinstance(key, str) and key and isinstance(component, str) and isinstance(check, str)):
            return None
        since, notified, failures = json_seconds(since), json_seconds(notified), json_count(failures)
        if since is None or not failures:
            return None
        return cls(key, component, check, since, failures, notified, summary if isinstance(summary, str) else "")

    def as_state(self) -> dict[str, Any]:
        return asdict(self)


def step(outage: Outage | None, failing: CheckResult | None, now: float, *, threshold: int,
         reminder_s: float) -> tuple[Outage | None, Event | None]:
    """Pure: the outage after this run and the notification to send (None: none).

    ``failing`` is the critical ``mysql`` result of this run, or None when the results were recorded."""
    if failing is None:
        if outage is not None and outage.notified_at is not None:
            return None, "resolved"
        return None, None
    if outage is None:
        outage = Outage(failing.key, failing.component, failing.check_name, now, 0)
    outage = replace(outage, failures=outage.failures + 1, summary=failing.summary)
    if outage.failures < threshold:
        return outage, None
    if outage.notified_at is None:
        return outage, "open"
    if now - outage.notified_at >= reminder_s:
        return outage, "reminder"
    return outage, None


def notification(outage: Outage, event: Event, failing: CheckResult | None, host: str, now: float) -> Notification:
    at = datetime.fromtimestamp(now, UTC)
    since = datetime.fromtimestamp(outage.since, UTC)
    down_s = max(0.0, now - outage.since)
    detail = {"since": since.isoformat(), "failing_runs": outage.failures, "sent_by": "local state",
              "note": "the metrics store could not take the results: this alert is not in the alerts table"}
    return Notification(
        event=event,
        alert_key=outage.key,
        component=outage.component,
        check_name=outage.check_name,
        host=host,
        severity="critical",
        status="ok" if failing is None else failing.status.value,
        summary=outage.summary if failing is not None else "the results are recorded again",
        first_seen_at=since,
        at=at,
        duration_s=down_s if event == "resolved" else None,
        detail=detail if failing is not None else {**detail, "last_error": outage.summary},
    )


def track(state: LocalState, failing: CheckResult | None, channels: list[Channel], settings: AlertingSettings, *,
          host: str, now: datetime) -> AlertOutcome | None:
    """Apply :func:`step` to the outage kept in ``state`` and send what it says; the outcome for the report."""
    stamp = now.timestamp()
    threshold = settings.threshold("mysql", "reachable")
    reminder_s = settings.mysql_down_reminder_min * 60
    outcome: AlertOutcome | None = None
    try:
        with state.section(SECTION) as part:
            outage = Outage.from_state(part.get("outage"))
            new, event = step(outage, failing, stamp, threshold=threshold, reminder_s=reminder_s)
            about = new if new is not None else outage
            if event is not None and about is not None:
                sent = send_all(channels, notification(about, event, failing, host, stamp))
                delivered = any(o.ok for o in sent)
                if new is not None and delivered:
                    new = replace(new, notified_at=stamp)
                (log.warning if delivered else log.error)("%s: %s notification of the metrics store outage %s",
                                                          about.key, event, "sent" if delivered else "NOT delivered")
                outcome = AlertOutcome(about.key, "resolve" if event == "resolved" else "local", event, sent)
            part.clear()
            if new is not None:
                part["outage"] = new.as_state()
    except StateUnavailable:
        if outcome is not None or failing is None:
            return outcome  # already sent (only the save failed), or nothing to say
        # No memory: no threshold and no rate limit. Say it every run rather than not at all.
        outage = Outage(failing.key, failing.component, failing.check_name, stamp, 1, None, failing.summary)
        sent = send_all(channels, notification(outage, "open", failing, host, stamp))
        return AlertOutcome(outage.key, "local", "open", sent)
    return outcome
