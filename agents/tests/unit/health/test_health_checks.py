"""Checks on real files and programs where that is cheap (statvfs of a tmp dir, a state file, a fake
systemctl script), and on captured command output through a fake runner otherwise."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from health_support import FakeRunner, fixture_text
from iact_agents.collector.position import FileState, JournalState, OffsetStore
from iact_agents.health.checks import (
    CommandFailed,
    CommandOutput,
    cassandra_checks,
    collector_checks,
    disk_checks,
    job_age_check,
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
from iact_agents.health.models import Status

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


def test_services_through_a_real_systemctl_stand_in(tmp_path: Path) -> None:
    script = tmp_path / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        'case "$2" in\n'
        "  good.service) echo active ;;\n"
        "  starting.service) echo activating; exit 3 ;;\n"
        "  dead.service) echo failed; exit 3 ;;\n"
        "  *) echo inactive; exit 3 ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    units = ["good.service", "starting.service", "dead.service", "no-such.service"]
    results = service_checks(ServiceSettings(units=units, systemctl=str(script)), "h")
    assert [(r.check_name, r.status) for r in results] == [
        ("good.service", Status.OK),
        ("starting.service", Status.WARNING),
        ("dead.service", Status.CRITICAL),
        ("no-such.service", Status.CRITICAL),
    ]


def test_services_without_systemd_are_unknown() -> None:
    runner = FakeRunner({
        "systemctl is-active a.service": CommandOutput(1, "", "System has not been booted with systemd as init"),
        "systemctl is-active b.service": CommandFailed("systemctl: program not found"),
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
    lag, backlog = collector_checks(CollectorSettings(enabled=True, state_file=state), "h", now)
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
    lag, backlog = collector_checks(cfg, "h", now)
    assert lag.status is Status.WARNING and lag.detail["lag_s"] == pytest.approx(600, abs=1)
    assert backlog.status is Status.WARNING and backlog.detail["backlog_bytes"] == 6993
    lag, _ = collector_checks(cfg, "h", now + 400)
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
    _, backlog = collector_checks(CollectorSettings(enabled=True, state_file=state), "h", 2_000.0)
    assert backlog.detail["backlog_bytes"] in (0, 400)  # 400 only if the file system reused the inode
    missing = collector_checks(CollectorSettings(enabled=True, state_file=tmp_path / "none.json"), "h")
    assert {r.status for r in missing} == {Status.UNKNOWN}
    assert "has not committed a position yet" in missing[0].summary
    state.write_text("{not json")
    assert collector_checks(CollectorSettings(enabled=True, state_file=state), "h")[0].status is Status.UNKNOWN


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
    lag, backlog, sources = collector_checks(cfg, "h", now)
    assert backlog.detail["backlog_bytes"] == 70 - 21
    assert lag.status is Status.WARNING and lag.detail["lag_s"] == pytest.approx(400, abs=1)
    assert lag.detail["sources"]["journal:journal"]["newest_acked_age_s"] == pytest.approx(10, abs=0.5)
    assert sources.status is Status.OK
