"""The alert state machine: the pure decision, and the manager over an in-memory store.

The SQL of the real store is exercised against MariaDB in agents/tests/integration/health.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from iact_agents.health.alerting import AlertEngine, OpenAlert, decide, send_all
from iact_agents.health.channels import ChannelResult, Notification
from iact_agents.health.config import AlertingSettings
from iact_agents.health.models import CheckResult, Status

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OK, WARN, CRIT, UNK = Status.OK, Status.WARNING, Status.CRITICAL, Status.UNKNOWN


def hist(*statuses: Status) -> list[tuple[Status, datetime]]:
    """Newest first, five minutes apart."""
    return [(s, T0 - timedelta(minutes=5 * i)) for i, s in enumerate(statuses)]


def alert(severity: str = "critical", status: str = "open", notified: datetime | None = T0) -> OpenAlert:
    return OpenAlert(1, "k", severity, status, T0 - timedelta(hours=1), notified, 3)  # type: ignore[arg-type]


def d(recent: list[tuple[Status, datetime]], open_alert: OpenAlert | None = None, *, now: datetime = T0,
      threshold: int = 3, unknown: bool = False) -> tuple[str, str | None, str | None]:
    out = decide(recent, open_alert, threshold=threshold, reminder_interval=timedelta(hours=4),
                 alert_on_unknown=unknown, now=now)
    return out.action, out.severity, out.notify


def test_opens_only_after_n_failures_in_a_row() -> None:
    assert d(hist(CRIT, CRIT)) == ("none", None, None)
    assert d(hist(CRIT, CRIT, OK)) == ("none", None, None)
    assert d(hist(CRIT, OK, CRIT)) == ("none", None, None)
    assert d(hist(CRIT, WARN, CRIT)) == ("open", "critical", "open")
    assert d(hist(WARN, CRIT, CRIT)) == ("open", "warning", "open")
    assert d(hist(CRIT), threshold=1) == ("open", "critical", "open")
    assert d([]) == ("none", None, None)


def test_open_records_when_the_failures_began() -> None:
    out = decide(hist(CRIT, CRIT, CRIT), None, threshold=3, reminder_interval=timedelta(hours=4),
                 alert_on_unknown=False, now=T0)
    assert out.first_seen_at == T0 - timedelta(minutes=10)
    assert out.occurrences == 3


def test_unknown_counts_only_when_configured() -> None:
    assert d(hist(UNK, UNK, UNK)) == ("none", None, None)
    assert d(hist(UNK, UNK, UNK), unknown=True) == ("open", "warning", "open")
    assert d(hist(UNK), alert()) == ("none", None, None)  # neither confirms nor resolves


def test_no_duplicate_while_open_and_reminders_after_the_interval() -> None:
    assert d(hist(CRIT, CRIT, CRIT), alert()) == ("update", "critical", None)
    later = T0 + timedelta(hours=4)
    assert d(hist(CRIT), alert(), now=later) == ("update", "critical", "reminder")
    assert d(hist(CRIT), alert(status="acknowledged"), now=later) == ("update", "critical", None)


def test_escalation_retry_and_no_de_escalation() -> None:
    assert d(hist(CRIT), alert("warning")) == ("update", "critical", "escalated")
    assert d(hist(WARN), alert("critical")) == ("update", "critical", None)
    assert d(hist(CRIT), alert(notified=None)) == ("update", "critical", "open")
    # acknowledged (the web layer's operations page) before any channel took it: no more retries
    assert d(hist(CRIT), alert(status="acknowledged", notified=None)) == ("update", "critical", None)


def test_resolves_on_recovery() -> None:
    assert d(hist(OK), alert()) == ("resolve", "critical", "resolved")
    assert d(hist(OK), alert(status="acknowledged")) == ("resolve", "critical", "resolved")


class MemoryStore:
    """In-memory stand-in for MySQLStore with the same contract (one unresolved alert per key)."""

    def __init__(self) -> None:
        self.history: dict[str, list[tuple[Status, datetime]]] = {}
        self.alerts: dict[int, dict[str, object]] = {}
        self.notifications: list[tuple[int, str, str, bool]] = []

    def add(self, result: CheckResult, at: datetime) -> None:
        self.history.setdefault(result.key, []).insert(0, (result.status, at))

    def recent(self, result: CheckResult, limit: int) -> list[tuple[Status, datetime]]:
        return self.history.get(result.key, [])[:limit]

    def open_alert(self, key: str) -> OpenAlert | None:
        for i, a in self.alerts.items():
            if a["key"] == key and a["status"] != "resolved":
                return OpenAlert(i, key, a["severity"], a["status"], a["first"], a["notified"], a["n"])  # type: ignore[arg-type]
        return None

    def create_alert(self, result: CheckResult, severity: str, first_seen_at: datetime, occurrences: int,
                     now: datetime) -> OpenAlert | None:
        if self.open_alert(result.key):
            return None
        i = len(self.alerts) + 1
        self.alerts[i] = {"key": result.key, "status": "open", "severity": severity, "first": first_seen_at,
                          "notified": None, "n": occurrences, "resolved_at": None, "duration": None}
        return self.open_alert(result.key)

    def touch_alert(self, alert_id: int, result: CheckResult, severity: str, now: datetime) -> None:
        self.alerts[alert_id]["severity"] = severity
        self.alerts[alert_id]["n"] = int(self.alerts[alert_id]["n"]) + 1  # type: ignore[call-overload]

    def mark_notified(self, alert_id: int, now: datetime) -> None:
        self.alerts[alert_id]["notified"] = now

    def resolve_alert(self, alert_id: int, result: CheckResult, now: datetime, duration_s: float) -> bool:
        if self.alerts[alert_id]["status"] == "resolved":
            return False
        self.alerts[alert_id].update(status="resolved", resolved_at=now, duration=duration_s)
        return True

    def record_notification(self, alert_id: int, alert_key: str, event: str, outcome: ChannelResult,
                            now: datetime) -> None:
        self.notifications.append((alert_id, event, outcome.channel, outcome.ok))


class Recorder:
    def __init__(self, name: str, ok: bool = True) -> None:
        self.name = name
        self.ok = ok
        self.sent: list[Notification] = []

    def send(self, note: Notification) -> ChannelResult:
        self.sent.append(note)
        return ChannelResult(self.name, self.ok, "" if self.ok else "refused")


class Exploding:
    name = "boom"

    def send(self, note: Notification) -> ChannelResult:
        raise RuntimeError("channel bug")


def run(manager: AlertEngine, store: MemoryStore, status: Status, at: datetime) -> list[str]:
    result = CheckResult("disk", "/data", "h1", status, f"{status.value} now")
    store.add(result, at)
    return [f"{o.action}:{o.event}" for o in manager.process([result], at)]


def test_whole_lifecycle_with_one_notification_each_way() -> None:
    store = MemoryStore()
    mail = Recorder("mailbox")
    manager = AlertEngine(store, [mail], AlertingSettings(consecutive_failures=3, reminder_interval_min=60))
    t = T0
    events = []
    for status in (OK, CRIT, CRIT, CRIT, CRIT, CRIT, OK, OK):
        events.append(run(manager, store, status, t))
        t += timedelta(minutes=5)
    assert events == [[], [], [], ["open:open"], ["update:None"], ["update:None"], ["resolve:resolved"], []]
    assert [n.event for n in mail.sent] == ["open", "resolved"]
    [record] = store.alerts.values()
    assert record["status"] == "resolved"
    # The failures began at the first CRIT (T0 + 5 min) and ended with the OK at T0 + 30 min.
    assert record["duration"] == 25 * 60
    assert mail.sent[1].duration_s == 25 * 60
    assert store.notifications == [(1, "open", "mailbox", True), (1, "resolved", "mailbox", True)]


def test_reminder_after_the_interval() -> None:
    store = MemoryStore()
    mail = Recorder("mailbox")
    manager = AlertEngine(store, [mail], AlertingSettings(consecutive_failures=1, reminder_interval_min=60))
    assert run(manager, store, CRIT, T0) == ["open:open"]
    assert run(manager, store, CRIT, T0 + timedelta(minutes=30)) == ["update:None"]
    assert run(manager, store, CRIT, T0 + timedelta(minutes=61)) == ["update:reminder"]
    assert run(manager, store, CRIT, T0 + timedelta(minutes=90)) == ["update:None"]
    assert [n.event for n in mail.sent] == ["open", "reminder"]


def test_a_failing_channel_never_blocks_the_others_and_every_attempt_is_recorded() -> None:
    store = MemoryStore()
    good, bad = Recorder("mailbox"), Recorder("webhook", ok=False)
    manager = AlertEngine(store, [Exploding(), bad, good], AlertingSettings(consecutive_failures=1))
    result = CheckResult("svc", "x", "h", CRIT, "down")
    store.add(result, T0)
    [outcome] = manager.process([result], T0)
    assert [(c.channel, c.ok) for c in outcome.channels] == [("boom", False), ("webhook", False), ("mailbox", True)]
    assert "RuntimeError: channel bug" in outcome.channels[0].reason
    assert len(good.sent) == 1
    assert [(n[2], n[3]) for n in store.notifications] == [("boom", False), ("webhook", False), ("mailbox", True)]
    assert store.alerts[1]["notified"] == T0


def test_when_every_channel_fails_the_open_notification_is_retried() -> None:
    store = MemoryStore()
    flaky = Recorder("webhook", ok=False)
    manager = AlertEngine(store, [flaky], AlertingSettings(consecutive_failures=1))
    assert run(manager, store, CRIT, T0) == ["open:open"]
    assert store.alerts[1]["notified"] is None
    flaky.ok = True
    assert run(manager, store, CRIT, T0 + timedelta(minutes=5)) == ["update:open"]
    assert store.alerts[1]["notified"] == T0 + timedelta(minutes=5)
    assert run(manager, store, CRIT, T0 + timedelta(minutes=10)) == ["update:None"]


def test_per_check_thresholds() -> None:
    settings = AlertingSettings(consecutive_failures=3, per_check={"cassandra:nodes_up": 2, "service": 1})
    assert settings.threshold("cassandra", "nodes_up") == 2
    assert settings.threshold("service", "mariadb.service") == 1
    assert settings.threshold("disk", "/") == 3


def test_send_all_with_no_channels() -> None:
    note = Notification("open", "k", "c", "n", "h", "critical", "critical", "s", T0, T0)
    assert send_all([], note) == []


@pytest.mark.parametrize("event", ["open", "reminder", "escalated", "resolved"])
def test_notification_subject_names_the_event(event: str) -> None:
    note = Notification(event, "disk:/:h", "disk", "/", "h", "warning", "warning", "91% used", T0, T0)
    assert "disk:/:h" in note.subject and "91% used" in note.subject
