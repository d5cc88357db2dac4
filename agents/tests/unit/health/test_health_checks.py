"""Checks on real files and programs where that is cheap (statvfs of a tmp dir, a state file, a fake
systemctl script), and on captured command output through a fake runner otherwise."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from health_support import FakeRunner, fixture_text
from hypothesis import given
from hypothesis import strategies as st
from iact_agents.collector.position import FileState, JournalState, OffsetStore
from iact_agents.collector.quarantine import Quarantine
from iact_agents.health import config as health_config
from iact_agents.health.checks import (
    CommandFailed,
    CommandOutput,
    cassandra_checks,
    collector_checks,
    disk_checks,
    job_age_check,
    judge_quarantine,
    judge_unit,
    run_program,
    service_checks,
    time_sync_check,
    used_percent,
)
from iact_agents.health.config import (
    CassandraSettings,
    CollectorSettings,
    DiskPath,
    DiskSettings,
    JobAge,
    ServiceSettings,
    TimeSyncSettings,
)
from iact_agents.health.models import CheckResult, Status
from iact_agents.health.parsers import UnitState, parse_systemctl_show
from pydantic import ValidationError

# --- disk ----------------------------------------------------------------------------------------


def test_disk_thresholds_are_crossed_on_a_real_directory(tmp_path: Path) -> None:
    pct = used_percent(os.statvfs(tmp_path))
    assert 0 < pct < 100

    def status(warn: float, crit: float) -> Status:
        cfg = DiskSettings(paths=[DiskPath(path=tmp_path, warn_percent=warn, crit_percent=crit)])
        [result] = disk_checks(cfg, "h")
        assert result.component == "disk" and result.check_name == str(tmp_path)
        assert result.detail["used_percent"] == pytest.approx(pct, abs=0.5)
        return result.status

    assert status(100, 100) is Status.OK
    assert status(0, 100) is Status.WARNING
    assert status(0, 0) is Status.CRITICAL
    assert status(max(0.0, pct - 1), min(100.0, pct + 1)) is Status.WARNING


def test_disk_path_defaults_and_missing_path(tmp_path: Path) -> None:
    cfg = DiskSettings(warn_percent=0, crit_percent=0,
                       paths=[DiskPath(path=tmp_path), DiskPath(path=tmp_path / "absent")])
    found, missing = disk_checks(cfg, "h")
    assert found.status is Status.CRITICAL and "critical at 0%" in found.summary
    assert missing.status is Status.UNKNOWN and "No such file" in missing.summary


# --- services ------------------------------------------------------------------------------------


SHOW = "systemctl show --property=ActiveState,SubState,LoadState,NRestarts"


def systemctl_stand_in(tmp_path: Path) -> Path:
    """A systemctl that answers ``show ... <unit>`` with the file ``<unit>.show`` beside it (as systemd does for
    a unit it does not know: exit 0, ``LoadState=not-found``, when there is no such file)."""
    script = tmp_path / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        "for unit; do :; done\n"
        'if [ -f "$(dirname "$0")/$unit.show" ]; then cat "$(dirname "$0")/$unit.show"; else\n'
        "  printf 'NRestarts=0\\nLoadState=not-found\\nActiveState=inactive\\nSubState=dead\\n'; fi\n"
    )
    script.chmod(0o755)
    return script


def show(folder: Path, unit: str, active: str, sub: str, restarts: int = 0) -> None:
    (folder / f"{unit}.show").write_text(
        f"NRestarts={restarts}\nLoadState=loaded\nActiveState={active}\nSubState={sub}\n")


def test_services_through_a_real_systemctl_stand_in(tmp_path: Path) -> None:
    script = systemctl_stand_in(tmp_path)
    show(tmp_path, "good.service", "active", "running")
    show(tmp_path, "starting.service", "activating", "start")
    show(tmp_path, "dead.service", "failed", "failed")
    units = ["good.service", "starting.service", "dead.service", "no-such.service"]
    results = service_checks(ServiceSettings(units=units, systemctl=str(script)), "h")
    assert [(r.check_name, r.status, r.summary) for r in results] == [
        ("good.service", Status.OK, "active (running)"),
        ("starting.service", Status.WARNING, "activating (start)"),
        ("dead.service", Status.CRITICAL, "failed (failed)"),
        ("no-such.service", Status.CRITICAL, "inactive (dead): no such unit"),
    ]


def test_captured_systemctl_show_output() -> None:
    active = parse_systemctl_show(fixture_text("systemctl_show_active.txt"))
    assert active == UnitState("active", "running", "loaded", 0)
    gone = parse_systemctl_show(fixture_text("systemctl_show_not_found.txt"))
    assert gone == UnitState("inactive", "dead", "not-found", 0)
    crash_loop = parse_systemctl_show(fixture_text("systemctl_show_auto_restart.txt"))
    assert crash_loop is not None and (crash_loop.active, crash_loop.sub) == ("activating", "auto-restart")
    assert crash_loop.n_restarts is not None and crash_loop.n_restarts > 0


def test_a_crash_loop_is_critical_at_the_second_check(tmp_path: Path) -> None:
    """A unit restarting under Restart= ("activating (auto-restart)"): a warning once, critical the next time;
    back to ok as soon as it runs steadily. Only the units watched for crash loops escalate."""
    script = systemctl_stand_in(tmp_path)
    units = ["iact-collector.service", "other.service"]
    cfg = ServiceSettings(units=units, systemctl=str(script), crash_loop_units=["iact-collector.service"])
    memory: dict[str, object] = {}

    def check() -> list[tuple[Status, str]]:
        return [(r.status, r.summary) for r in service_checks(cfg, "h", memory=memory)]

    for unit in units:
        show(tmp_path, unit, "active", "running", restarts=0)
    assert [s for s, _ in check()] == [Status.OK, Status.OK]
    for unit in units:
        show(tmp_path, unit, "activating", "auto-restart", restarts=3)
    first = check()
    assert [s for s, _ in first] == [Status.WARNING, Status.WARNING]
    assert first[0][1] == "activating (auto-restart): restarted 3 times by systemd since the previous check"
    for unit in units:
        show(tmp_path, unit, "activating", "auto-restart", restarts=9)
    second = check()
    assert second[0] == (Status.CRITICAL, "activating (auto-restart): restarted 6 times by systemd since the"
                                          " previous check; not steadily active at 2 checks in a row")
    assert second[1][0] is Status.WARNING, "other.service is not watched for crash loops"
    assert memory["iact-collector.service"] == {"unsteady_checks": 2, "n_restarts": 9}
    for unit in units:
        show(tmp_path, unit, "active", "running", restarts=9)
    assert [s for s, _ in check()] == [Status.OK, Status.OK]
    assert memory["iact-collector.service"] == {"unsteady_checks": 0, "n_restarts": 9}


def test_a_unit_that_dies_between_checks_is_caught_by_its_restart_count(tmp_path: Path) -> None:
    """Its process lives long enough to be "active" at each check, but systemd restarted it in between."""
    script = systemctl_stand_in(tmp_path)
    cfg = ServiceSettings(units=["c.service"], systemctl=str(script))  # every unit watched by default
    memory: dict[str, object] = {}
    results = []
    for restarts in (1, 1, 4, 7, 7):
        show(tmp_path, "c.service", "active", "running", restarts=restarts)
        [result] = service_checks(cfg, "h", memory=memory)
        results.append(result.status)
    # The first check has no previous count to compare with; 1 -> 4 and 4 -> 7 are two unsteady checks in a row.
    assert results == [Status.OK, Status.OK, Status.WARNING, Status.CRITICAL, Status.OK]


def test_a_manual_restart_lowers_the_count_and_is_no_crash(tmp_path: Path) -> None:
    script = systemctl_stand_in(tmp_path)
    cfg = ServiceSettings(units=["c.service"], systemctl=str(script))
    memory: dict[str, object] = {"c.service": {"unsteady_checks": 0, "n_restarts": 5}}
    show(tmp_path, "c.service", "active", "running", restarts=0)
    [result] = service_checks(cfg, "h", memory=memory)
    assert result.status is Status.OK


def test_failed_and_inactive_are_critical_at_once_and_count_too(tmp_path: Path) -> None:
    script = systemctl_stand_in(tmp_path)
    cfg = ServiceSettings(units=["c.service"], systemctl=str(script))
    memory: dict[str, object] = {}
    show(tmp_path, "c.service", "failed", "failed", restarts=5)
    assert service_checks(cfg, "h", memory=memory)[0].status is Status.CRITICAL
    show(tmp_path, "c.service", "activating", "auto-restart", restarts=0)  # reset-failed + start by hand
    assert service_checks(cfg, "h", memory=memory)[0].status is Status.CRITICAL  # second unsteady check


def test_forgotten_units_leave_the_memory_and_unanswered_ones_keep_theirs() -> None:
    runner = FakeRunner({f"{SHOW} a.service": CommandFailed("systemctl: no answer within 15 s")})
    memory: dict[str, object] = {"a.service": {"unsteady_checks": 1, "n_restarts": 2}, "gone.service": {}}
    [a] = service_checks(ServiceSettings(units=["a.service"]), "h", runner, memory)
    assert a.status is Status.UNKNOWN
    assert memory == {"a.service": {"unsteady_checks": 1, "n_restarts": 2}}


def test_crash_loop_units_must_be_listed_units() -> None:
    with pytest.raises(ValidationError, match=r"crash_loop_units names units that are not in units: x\.service"):
        ServiceSettings(units=["a.service"], crash_loop_units=["x.service"])
    cfg = health_config.load(None, environ={"IACT_HEALTH__SERVICES__UNITS": "a.service,b.service",
                                            "IACT_HEALTH__SERVICES__CRASH_LOOP_UNITS": "b.service"})
    assert cfg.services.crash_loop_units == ["b.service"]
    assert not cfg.services.watches_crash_loops("a.service") and cfg.services.watches_crash_loops("b.service")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
unit_memories = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"unsteady_checks": json_values | st.integers(), "n_restarts": json_values}),
)


@given(st.text(max_size=400))
def test_parse_systemctl_show_is_total(text: str) -> None:
    seen = parse_systemctl_show(text)
    assert seen is None or (seen.active and (seen.n_restarts is None or seen.n_restarts >= 0))


@given(st.sampled_from(["active", "activating", "reloading", "deactivating", "inactive", "failed", "maintenance",
                        "bogus"]),
       st.none() | st.integers(min_value=0, max_value=10**6), unit_memories, st.booleans())
def test_judge_unit_is_total(active: str, restarts: int | None, previous: object, crash_loop: bool) -> None:
    result, memory = judge_unit("u.service", UnitState(active, "x", "loaded", restarts), previous, "h",
                                crash_loop=crash_loop)
    assert isinstance(result.status, Status)
    assert memory["unsteady_checks"] >= 0
    assert (result.status is Status.OK) == (active == "active" and memory["unsteady_checks"] == 0)


def test_services_without_systemd_are_unknown() -> None:
    runner = FakeRunner({
        f"{SHOW} a.service": CommandOutput(1, "", "System has not been booted with systemd as init"),
        f"{SHOW} b.service": CommandFailed("systemctl: program not found"),
    })
    a, b = service_checks(ServiceSettings(units=["a.service", "b.service"]), "h", runner)
    assert a.status is Status.UNKNOWN and "not been booted with systemd" in a.summary
    assert b.status is Status.UNKNOWN and "program not found" in b.summary


def test_run_program_reports_a_missing_program_and_a_timeout() -> None:
    with pytest.raises(CommandFailed, match="program not found"):
        run_program(["/nonexistent/nodetool", "status"], 5)
    with pytest.raises(CommandFailed, match="no answer within"):
        run_program(["sleep", "5"], 0.2)


# --- Cassandra -----------------------------------------------------------------------------------


def test_cassandra_checks_on_captured_output() -> None:
    runner = FakeRunner({
        "nodetool status": CommandOutput(0, fixture_text("status_1down.txt"), "logback noise\n"),
        "nodetool describecluster": CommandOutput(0, fixture_text("describecluster_unreachable.txt"), ""),
    })
    nodes, schema = cassandra_checks(CassandraSettings(enabled=True), "cass1", runner)
    assert (nodes.check_name, nodes.status) == ("nodes_up", Status.CRITICAL)
    assert (schema.check_name, schema.status) == ("schema_agreement", Status.CRITICAL)
    assert nodes.latency_ms is not None


def test_nodetool_failure_names_nodetool_error_not_the_java_noise() -> None:
    noise = "Failed to instantiate [ch.qos.logback.classic.LoggerContext]\n\tat x.y(Z.java:1)\n"
    refused = "nodetool: Failed to connect to '127.0.0.1:7199' - ConnectException: 'Connection refused'."
    runner = FakeRunner({
        "nodetool -h 127.0.0.1 status": CommandOutput(1, "", noise + refused + "\n"),
        "nodetool -h 127.0.0.1 describecluster": CommandFailed("nodetool: program not found"),
    })
    cfg = CassandraSettings(enabled=True, nodetool=["nodetool", "-h", "127.0.0.1"])
    nodes, schema = cassandra_checks(cfg, "cass1", runner)
    assert nodes.status is Status.CRITICAL and nodes.summary == f"nodetool status failed: {refused}"
    assert schema.status is Status.CRITICAL and "program not found" in schema.summary


# --- collector -----------------------------------------------------------------------------------


def _state(tmp_path: Path, log: Path, offset: int, mtime: float) -> Path:
    st = log.stat()
    doc = {"version": 1, "sources": {
        f"file:{log}": {"kind": "file", "path": str(log), "dev": st.st_dev, "ino": st.st_ino, "fp": "x",
                        "gen": 0, "offset": offset, "last_ts_us": int((mtime - 30) * 1e6)},
        "journal": {"kind": "journal", "cursor": "s=1", "last_ts_us": int((mtime - 5) * 1e6)},
    }}
    state = tmp_path / "positions.json"
    state.write_text(json.dumps(doc))
    os.utime(state, (mtime, mtime))
    return state


def test_collector_caught_up(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_bytes(b"a line\n" * 10)
    now = 2_000_000_000.0
    state = _state(tmp_path, log, offset=70, mtime=now - 3600)
    lag, backlog, quarantine = collector_checks(CollectorSettings(enabled=True, state_file=state), "h", now)
    assert quarantine.status is Status.OK and quarantine.summary == "nothing quarantined"
    assert lag.status is Status.OK and lag.detail["lag_s"] == 0
    assert lag.detail["sources"]["journal"]["newest_acked_age_s"] == pytest.approx(3605, abs=1)
    assert backlog.status is Status.OK and backlog.detail["backlog_bytes"] == 0


def test_collector_behind_with_thresholds(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_bytes(b"a line\n" * 1000)
    now = 2_000_000_000.0
    state = _state(tmp_path, log, offset=7, mtime=now - 600)
    cfg = CollectorSettings(enabled=True, state_file=state, lag_warn_s=300, lag_crit_s=900,
                            backlog_warn_bytes=1000, backlog_crit_bytes=100_000)
    lag, backlog, _ = collector_checks(cfg, "h", now)
    assert lag.status is Status.WARNING and lag.detail["lag_s"] == pytest.approx(600, abs=1)
    assert backlog.status is Status.WARNING and backlog.detail["backlog_bytes"] == 6993
    lag, *_ = collector_checks(cfg, "h", now + 400)
    assert lag.status is Status.CRITICAL


def test_collector_sources_that_must_not_be_quiet(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_bytes(b"a line\n")
    now = 2_000_000_000.0
    state = _state(tmp_path, log, offset=7, mtime=now - 100)  # file acked 130 s ago, journal 105 s ago
    limits = {f"file:{log}": 120.0, "journal": 600.0, "journal:other": 60.0}
    *_, sources = collector_checks(CollectorSettings(enabled=True, state_file=state, source_max_age_s=limits), "h",
                                   now)
    assert sources.check_name == "sources" and sources.status is Status.WARNING
    assert sources.summary == f"file:{log}: newest line 130 s old; journal:other: nothing acknowledged yet"
    ok = collector_checks(CollectorSettings(enabled=True, state_file=state, source_max_age_s={"journal": 600}),
                          "h", now)
    assert ok[-1].status is Status.OK


def test_collector_rotated_file_and_missing_or_bad_state(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_bytes(b"x\n" * 100)
    state = _state(tmp_path, log, offset=0, mtime=1_000.0)
    log.unlink()
    log.write_bytes(b"new\n" * 100)  # a new inode: the offset belongs to the old file
    _, backlog, _ = collector_checks(CollectorSettings(enabled=True, state_file=state), "h", 2_000.0)
    assert backlog.detail["backlog_bytes"] in (0, 400)  # 400 only if the file system reused the inode
    missing = collector_checks(CollectorSettings(enabled=True, state_file=tmp_path / "none.json"), "h")
    assert [(r.check_name, r.status) for r in missing] == [
        ("lag", Status.UNKNOWN), ("backlog", Status.UNKNOWN), ("quarantine", Status.UNKNOWN)]
    assert "has not committed a position yet" in missing[0].summary
    for garbage in ("{not json", "[" * 60_000 + "]" * 60_000, '{"sources": NaN}', "\udcff"):
        state.write_text(garbage, errors="surrogateescape")
        bad = collector_checks(CollectorSettings(enabled=True, state_file=state), "h")
        assert {r.status for r in bad} == {Status.UNKNOWN}, garbage[:20]


# --- collector: quarantined records (the contract in health/checks.py, written here by hand) --------


NOW = 2_000_000_000.0


def _quarantine_state(tmp_path: Path, quarantine: object) -> Path:
    state = tmp_path / "positions.json"
    state.write_text(json.dumps({"version": 1, "sources": {}, "quarantine": quarantine}))
    return state


def _quarantine(tmp_path: Path, quarantine: object, window_h: float = 24) -> CheckResult:
    cfg = CollectorSettings(enabled=True, state_file=_quarantine_state(tmp_path, quarantine),
                            quarantine_window_h=window_h)
    [result] = [r for r in collector_checks(cfg, "h", NOW) if r.check_name == "quarantine"]
    assert result.component == "collector"
    return result


def test_a_recent_quarantined_record_is_critical_with_its_story(tmp_path: Path) -> None:
    entry = {"count": 3, "last_at": NOW - 2 * 3600, "last_source": "file:/var/log/syslog",
             "last_reason": "ValueError: invalid literal for int() with base 10: '²'",
             "file": "/var/lib/iact-collector/quarantine.jsonl"}
    result = _quarantine(tmp_path, entry)
    assert result.status is Status.CRITICAL
    assert result.summary == ("3 records quarantined, the newest 2.0 h ago from file:/var/log/syslog: ValueError:"
                              " invalid literal for int() with base 10: '²'; kept in"
                              " /var/lib/iact-collector/quarantine.jsonl")
    assert result.detail["count"] == 3 and result.detail["age_h"] == 2.0 and result.detail["window_h"] == 24
    assert result.detail["file"] == "/var/lib/iact-collector/quarantine.jsonl"


def test_the_window_decides_and_is_configurable(tmp_path: Path) -> None:
    entry = {"count": 1, "last_at": NOW - 30 * 3600, "last_source": "journal:journal", "last_reason": "x",
             "file": "/q"}
    old = _quarantine(tmp_path, entry)
    assert old.status is Status.OK
    assert old.summary == "1 record quarantined, the newest 30.0 h ago (outside the 24 h window); kept in /q"
    assert _quarantine(tmp_path, entry, window_h=48).status is Status.CRITICAL
    cfg = health_config.load(None, environ={"IACT_HEALTH__COLLECTOR__QUARANTINE_WINDOW_H": "48"})
    assert cfg.collector.quarantine_window_h == 48
    with pytest.raises(ValidationError):
        CollectorSettings(quarantine_window_h=0)


def test_a_record_dated_in_the_future_is_not_hidden_by_a_clock_step(tmp_path: Path) -> None:
    result = _quarantine(tmp_path, {"count": 1, "last_at": NOW + 600})
    assert result.status is Status.CRITICAL and "dated in the future" in result.summary


@pytest.mark.parametrize(
    ("entry", "status", "summary"),
    [
        ({}, Status.OK, "nothing quarantined"),
        ({"count": 0}, Status.OK, "nothing quarantined"),
        ({"count": 2}, Status.WARNING, "2 records quarantined, time of the newest not understood"),
        ({"count": 2, "last_at": "yesterday"}, Status.WARNING, "time of the newest not understood"),
        ({"count": True, "last_at": NOW}, Status.CRITICAL, "an unknown number of records quarantined"),
        ({"last_at": 10**400}, Status.WARNING, "an unknown number of records"),
        ({"count": 1, "last_at": NOW - 60, "last_source": ["x"], "last_reason": None}, Status.CRITICAL,
         "from an unnamed source: no reason given"),
        ({"count": 1, "last_at": NOW - 60, "last_reason": "a\nb\udcff\u200b" + "z" * 500}, Status.CRITICAL,
         "a b\ufffd\ufffd" + "z" * 195 + "…"),
        ([1, 2], Status.UNKNOWN, "is a list, not an object"),
        ("quarantined", Status.UNKNOWN, "is a str, not an object"),
    ],
)
def test_garbage_in_the_quarantine_entry_is_a_result_not_an_exception(
        tmp_path: Path, entry: object, status: Status, summary: str) -> None:
    result = _quarantine(tmp_path, entry)
    assert result.status is status and summary in result.summary, result.summary


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=16,
)
quarantine_entries = json_like | st.fixed_dictionaries({}, optional={
    "count": json_like | st.integers(), "last_at": json_like | st.floats() | st.integers(),
    "last_source": json_like | st.text(), "last_reason": json_like | st.text(), "file": json_like | st.text()})


@given(quarantine_entries, st.floats(min_value=0.01, max_value=8784), st.floats(min_value=0, max_value=4e9))
def test_judge_quarantine_is_total(entry: object, window_h: float, now: float) -> None:
    result = judge_quarantine(entry, window_h, "h", now)
    assert isinstance(result.status, Status)
    assert "\n" not in result.summary and len(result.summary) < 1000
    result.summary.encode("utf-8")  # no lone surrogate reaches MySQL, syslog or the mailbox
    json.dumps(dict(result.detail), allow_nan=False)  # the detail is stored as JSON


# --- jobs ----------------------------------------------------------------------------------------


def test_job_ages() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    rule = JobAge(warn_age_h=7, crit_age_h=13)
    fresh = job_age_check("session_cleanup", rule, now - timedelta(hours=6), "h", now)
    assert (fresh.component, fresh.check_name, fresh.status) == ("jobs", "session_cleanup", Status.OK)
    assert job_age_check("session_cleanup", rule, now - timedelta(hours=8), "h", now).status is Status.WARNING
    naive = (now - timedelta(hours=14)).replace(tzinfo=None)  # as PyMySQL returns DATETIME
    assert job_age_check("session_cleanup", rule, naive, "h", now).status is Status.CRITICAL
    never = job_age_check("backup", JobAge(warn_age_h=26, crit_age_h=50), None, "h", now)
    assert (never.component, never.check_name, never.status) == ("backup", "last_success", Status.CRITICAL)
    lenient = JobAge(warn_age_h=26, crit_age_h=50, never_run="warning")
    assert job_age_check("backup", lenient, None, "h", now).status is Status.WARNING


# --- time ----------------------------------------------------------------------------------------


def test_time_sync_sources() -> None:
    synced = FakeRunner({"timedatectl show -p NTPSynchronized --value": CommandOutput(0, "yes\n", "")})
    assert time_sync_check(TimeSyncSettings(), "h", synced, container=False).status is Status.OK
    chrony = FakeRunner({
        "timedatectl show -p NTPSynchronized --value": CommandFailed("timedatectl: program not found"),
        "chronyc -n tracking": CommandOutput(0, fixture_text("chrony_tracking.txt"), ""),
    })
    result = time_sync_check(TimeSyncSettings(), "h", chrony, container=False)
    assert result.status is Status.OK and result.detail["leap_status"] == "Normal"
    unsynced = FakeRunner({
        "timedatectl show -p NTPSynchronized --value": CommandOutput(0, "no\n", ""),
        "chronyc -n tracking": CommandFailed("chronyc: program not found"),
    })
    host = time_sync_check(TimeSyncSettings(), "h", unsynced, container=False)
    assert host.status is Status.WARNING and "timedatectl: no" in host.summary
    box = time_sync_check(TimeSyncSettings(), "h", unsynced, container=True)
    assert box.status is Status.OK and "container" in box.summary
    strict = time_sync_check(TimeSyncSettings(in_container="unknown"), "h", unsynced, container=True)
    assert strict.status is Status.UNKNOWN


def test_collector_contract_with_the_real_offset_store(tmp_path: Path) -> None:
    """The state file as the collector itself writes it (OffsetStore) is what the check reads."""
    log = tmp_path / "syslog"
    log.write_bytes(b"a line\n" * 10)
    st = log.stat()
    store = OffsetStore(tmp_path / "state")
    store.load()
    now = 2_000_000_000.0
    store.commit(f"file:{log}", FileState(str(log), st.st_dev, st.st_ino, "fp", 0, 21, int((now - 60) * 1e6)))
    store.commit("journal:journal", JournalState("s=abc", int((now - 10) * 1e6)))
    os.utime(store.path, (now - 400, now - 400))
    cfg = CollectorSettings(enabled=True, state_file=store.path, lag_warn_s=300,
                            source_max_age_s={"journal:journal": 30})
    lag, backlog, quarantine, sources = collector_checks(cfg, "h", now)
    assert quarantine.status is Status.OK
    assert backlog.detail["backlog_bytes"] == 70 - 21
    assert lag.status is Status.WARNING and lag.detail["lag_s"] == pytest.approx(400, abs=1)
    assert lag.detail["sources"]["journal:journal"]["newest_acked_age_s"] == pytest.approx(10, abs=0.5)
    assert sources.status is Status.OK


def test_quarantine_contract_with_the_real_collector_writer(tmp_path: Path) -> None:
    """What the collector's Quarantine counts and its OffsetStore commits is what collector:quarantine reads."""
    state_dir = tmp_path / "state"
    store = OffsetStore(state_dir)
    store.load()
    quarantine = Quarantine(state_dir, max_bytes=64 << 10, clock=lambda: NOW - 3600)
    quarantine.add(source="file:/var/log/syslog", position="offset 42", raw="x[²]: hi",
                   reason="ValueError: invalid literal for int() with base 10: '²'")
    store.quarantine = quarantine.stats.as_json()
    store.commit("journal:journal", JournalState("s=abc", int((NOW - 10) * 1e6)))
    cfg = CollectorSettings(enabled=True, state_file=store.path)
    [result] = [r for r in collector_checks(cfg, "h", NOW) if r.check_name == "quarantine"]
    assert result.status is Status.CRITICAL
    assert result.summary == ("1 record quarantined, the newest 1.0 h ago from file:/var/log/syslog: ValueError:"
                              f" invalid literal for int() with base 10: '²'; kept in {state_dir}/quarantine.jsonl")
    later = [r for r in collector_checks(cfg, "h", NOW + 24 * 3600) if r.check_name == "quarantine"]
    assert later[0].status is Status.OK
