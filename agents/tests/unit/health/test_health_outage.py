"""Alerts about the metrics store sent without it: the pure state machine, then the real thing through a real
mailbox file and the local state file, with a MySQL that nobody answers on (a closed port)."""

from __future__ import annotations

import mailbox
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iact_agents.health import config as health_config
from iact_agents.health.channels import ChannelResult, MailboxChannel, Notification
from iact_agents.health.config import AlertingSettings, MailboxChannelSettings
from iact_agents.health.localstate import LocalState
from iact_agents.health.models import CheckResult, Status
from iact_agents.health.outage import Outage, step, track
from iact_agents.health.runner import run_health

T0 = 2_000_000_000.0
DOWN = CheckResult("mysql", "reachable", "h", Status.CRITICAL, "MySQL is not reachable: (2003) refused")
MIN = 60.0


def run(outage: Outage | None, failing: CheckResult | None, at: float, threshold: int = 3,
        reminder_s: float = 60 * MIN) -> tuple[Outage | None, str | None]:
    return step(outage, failing, at, threshold=threshold, reminder_s=reminder_s)


# --- the pure state machine --------------------------------------------------------------------------


def test_silent_until_the_threshold_then_one_open() -> None:
    o, event = run(None, DOWN, T0)
    assert event is None and o is not None and (o.failures, o.since, o.key) == (1, T0, "mysql:reachable:h")
    o, event = run(o, DOWN, T0 + 5 * MIN)
    assert event is None and o is not None and o.failures == 2
    o, event = run(o, DOWN, T0 + 10 * MIN)
    assert event == "open" and o is not None and o.failures == 3 and o.since == T0


def test_rate_limited_reminders_while_it_stays_down() -> None:
    o = Outage("mysql:reachable:h", "mysql", "reachable", T0, 3, notified_at=T0)
    events = []
    for minutes in range(5, 130, 5):
        o, event = run(o, DOWN, T0 + minutes * MIN)
        if event == "reminder":
            assert o is not None
            o = Outage(o.key, o.component, o.check_name, o.since, o.failures, T0 + minutes * MIN, o.summary)
        events.append((minutes, event))
    assert [m for m, e in events if e is not None] == [60, 120]


def test_an_undelivered_open_is_tried_again_at_the_next_run() -> None:
    o = Outage("mysql:reachable:h", "mysql", "reachable", T0, 3, notified_at=None)
    assert run(o, DOWN, T0 + 5 * MIN)[1] == "open"


def test_resolved_only_when_an_alert_went_out() -> None:
    notified = Outage("mysql:reachable:h", "mysql", "reachable", T0, 3, notified_at=T0)
    assert run(notified, None, T0 + 20 * MIN) == (None, "resolved")
    silent = Outage("mysql:reachable:h", "mysql", "reachable", T0, 2, notified_at=None)
    assert run(silent, None, T0 + 20 * MIN) == (None, None)  # a blip below the threshold: forget it
    assert run(None, None, T0) == (None, None)


def test_threshold_one_alerts_at_the_first_failure() -> None:
    assert run(None, DOWN, T0, threshold=1)[1] == "open"


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.lists(st.integers()),
                 st.dictionaries(st.sampled_from(["key", "component", "check_name", "since", "failures",
                                                  "notified_at", "summary", "x"]),
                                 st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10))))
def test_outage_from_any_state_is_total(raw: object) -> None:
    o = Outage.from_state(raw)
    assert o is None or (o.failures > 0 and isinstance(o.since, float))


# --- through the local state and a real mailbox --------------------------------------------------


class Refusing:
    name = "refusing"

    def send(self, note: Notification) -> ChannelResult:
        return ChannelResult(self.name, False, "nobody listens")


def mbox_events(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [(str(m["X-IACT-Event"]), str(m["X-IACT-Alert-Key"])) for m in mailbox.mbox(str(path))]


def test_track_keeps_the_outage_in_the_state_file_and_sends_once(tmp_path: Path) -> None:
    box = tmp_path / "mbox"
    channels = [MailboxChannel(MailboxChannelSettings(enabled=True, path=box), "h")]
    settings = AlertingSettings(consecutive_failures=2, mysql_down_reminder_min=60)
    at = datetime.fromtimestamp(T0, UTC)
    outcomes = []
    for minutes in (0, 5, 10, 15, 65, 70):
        outcomes.append(track(LocalState(tmp_path / "state"), DOWN, channels, settings, host="h",
                              now=at + timedelta(minutes=minutes)))
    assert [o.event if o else None for o in outcomes] == [None, "open", None, None, "reminder", None]
    back = track(LocalState(tmp_path / "state"), None, channels, settings, host="h", now=at + timedelta(minutes=75))
    assert back is not None and back.event == "resolved" and back.channels[0].ok
    assert mbox_events(box) == [("open", "mysql:reachable:h"), ("reminder", "mysql:reachable:h"),
                                ("resolved", "mysql:reachable:h")]
    resolved = mailbox.mbox(str(box))[2]
    assert str(resolved["Subject"]).startswith("[iact-health] RESOLVED critical: mysql:reachable:h:")
    assert "Duration:   4500 s" in resolved.get_payload(decode=True).decode()
    assert track(LocalState(tmp_path / "state"), None, channels, settings, host="h", now=at) is None


def test_when_no_channel_takes_it_the_open_is_retried(tmp_path: Path) -> None:
    settings = AlertingSettings(consecutive_failures=1)
    at = datetime.fromtimestamp(T0, UTC)
    state_dir = tmp_path / "state"
    first = track(LocalState(state_dir), DOWN, [Refusing()], settings, host="h", now=at)
    assert first is not None and first.event == "open" and not first.channels[0].ok
    box = tmp_path / "mbox"
    channels = [MailboxChannel(MailboxChannelSettings(enabled=True, path=box), "h")]
    second = track(LocalState(state_dir), DOWN, channels, settings, host="h", now=at + timedelta(minutes=5))
    assert second is not None and second.event == "open"
    assert mbox_events(box) == [("open", "mysql:reachable:h")]


def test_without_local_state_it_says_so_at_every_failing_run(tmp_path: Path) -> None:
    box = tmp_path / "mbox"
    channels = [MailboxChannel(MailboxChannelSettings(enabled=True, path=box), "h")]
    settings = AlertingSettings(consecutive_failures=3)
    at = datetime.fromtimestamp(T0, UTC)
    for minutes in (0, 5):
        state = LocalState(tmp_path / "absent" / "state")
        out = track(state, DOWN, channels, settings, host="h", now=at + timedelta(minutes=minutes))
        assert out is not None and out.event == "open"
        assert state.notes and "cannot create the state folder" in state.notes[0]
    assert len(mbox_events(box)) == 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unreachable_config(tmp_path: Path) -> health_config.HealthConfig:
    cnf = tmp_path / "mysql-health.cnf"
    cnf.write_text(f"[client]\nuser = iact_health\npassword = x\nhost = 127.0.0.1\nport = {closed_port()}\n")
    cnf.chmod(0o600)
    return health_config.load(None, environ={}, overrides={
        "host": "h", "state_dir": str(tmp_path / "state"),
        "mysql": {"defaults_file": str(cnf), "connect_timeout_s": 2},
        "disk": {"paths": [{"path": str(tmp_path)}]},
        "time_sync": {"enabled": False},
        "alerting": {"consecutive_failures": 2, "mysql_down_reminder_min": 30,
                     "syslog": {"enabled": False},
                     "mailbox": {"enabled": True, "path": str(tmp_path / "mbox")}},
    })


def test_run_health_alerts_a_down_mysql_from_local_state(tmp_path: Path,
                                                         unreachable_config: health_config.HealthConfig) -> None:
    at = datetime.fromtimestamp(T0, UTC)
    reports = [run_health(unreachable_config, now=at + timedelta(minutes=m)) for m in (0, 5, 10, 35)]
    assert all(r.status is Status.CRITICAL and not r.recorded for r in reports)
    assert [[a.event for a in r.alerts] for r in reports] == [[], ["open"], [], ["reminder"]]
    assert [e for e, _ in mbox_events(tmp_path / "mbox")] == ["open", "reminder"]
    opened = mailbox.mbox(str(tmp_path / "mbox"))[0]
    assert str(opened["Subject"]).startswith("[iact-health] ALERT critical: mysql:reachable:h: MySQL is not")
    body = opened.get_payload(decode=True).decode()
    assert "Summary:    MySQL is not reachable with" in body
    assert "this alert is not in the alerts table" in body
    state = [r for r in reports[-1].results if r.component == "health"]
    assert [(r.check_name, r.status) for r in state] == [("state", Status.OK)]


def test_no_record_runs_neither_alert_nor_remember(tmp_path: Path,
                                                   unreachable_config: health_config.HealthConfig) -> None:
    for _ in range(3):
        report = run_health(unreachable_config, record=False)
        assert report.alerts == []
    assert not (tmp_path / "mbox").exists() and not (tmp_path / "state").exists()
