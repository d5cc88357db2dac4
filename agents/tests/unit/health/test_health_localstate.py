"""The health agent's local state file: atomic, locked, total on read, and loud (health:state) when unusable."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iact_agents.health.localstate import LOCK_FILE, MAX_BYTES, STATE_FILE, VERSION, LocalState, StateUnavailable
from iact_agents.health.models import Status


def test_sections_are_kept_between_runs_and_side_by_side(tmp_path: Path) -> None:
    folder = tmp_path / "health"
    with LocalState(folder).section("services") as part:
        assert part == {}
        part["a.service"] = {"unsteady_checks": 1}
    with LocalState(folder).section("mysql_outage") as part:
        part["outage"] = {"key": "k"}
    doc = json.loads((folder / STATE_FILE).read_text())
    assert doc == {"version": VERSION, "services": {"a.service": {"unsteady_checks": 1}},
                   "mysql_outage": {"outage": {"key": "k"}}}
    assert oct(folder.stat().st_mode & 0o777) == oct(0o750)
    assert oct((folder / STATE_FILE).stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
    state = LocalState(folder)
    with state.section("services") as part:
        assert part == {"a.service": {"unsteady_checks": 1}}
    result = state.result("h")
    assert (result.component, result.check_name, result.status) == ("health", "state", Status.OK)


def test_an_exception_in_the_block_writes_nothing(tmp_path: Path) -> None:
    state = LocalState(tmp_path)
    with pytest.raises(RuntimeError), state.section("services") as part:
        part["x"] = 1
        raise RuntimeError("boom")
    assert not (tmp_path / STATE_FILE).exists()


def test_read_only_runs_create_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "health"
    state = LocalState(folder, write=False)
    with state.section("services") as part:
        part["x"] = 1
    assert not folder.exists()
    assert state.result("h").status is Status.OK and "not written" in state.result("h").summary


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"version": 99, "services": {}}', b"NaN", b"[" * 100_000, b"\xff\xfe",
     b" " * (MAX_BYTES + 1)],
)
def test_a_damaged_file_is_an_empty_memory_with_a_note(tmp_path: Path, content: bytes) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    state = LocalState(tmp_path)
    with state.section("services") as part:
        assert part == {}
        part["a"] = 1
    assert json.loads((tmp_path / STATE_FILE).read_text())["services"] == {"a": 1}
    result = state.result("h")
    assert result.status is Status.WARNING and "started from an empty state" in result.summary


def test_a_section_that_is_not_an_object_is_empty(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"version": VERSION, "services": [1, 2]}))
    with LocalState(tmp_path).section("services") as part:
        assert part == {}


def test_a_missing_parent_is_reported_not_raised_into_the_run(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "absent" / "health")
    with pytest.raises(StateUnavailable, match="cannot create the state folder"), state.section("services"):
        pass
    result = state.result("h")
    assert result.status is Status.WARNING and "cannot create the state folder" in result.summary
    assert "crash loops are not escalated" in result.summary


def test_a_symlinked_state_file_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"version": VERSION, "services": {"x": 1}}))
    folder = tmp_path / "health"
    folder.mkdir()
    (folder / STATE_FILE).symlink_to(target)
    state = LocalState(folder)
    with pytest.raises(StateUnavailable, match="cannot read"), state.section("services"):
        pass


def test_another_run_holding_the_lock_is_waited_for_then_reported(tmp_path: Path) -> None:
    with LocalState(tmp_path).section("services"):
        pass
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = LocalState(tmp_path, lock_timeout_s=0.3)
        with pytest.raises(StateUnavailable, match="still locked by another health run"), state.section("x"):
            pass
    finally:
        os.close(fd)
    with LocalState(tmp_path, lock_timeout_s=0.3).section("x"):
        pass  # released: usable again


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to leave a root-owned file and test the hand-back")
def test_a_run_as_root_leaves_the_file_to_the_folder_owner(tmp_path: Path) -> None:
    folder = tmp_path / "health"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    with LocalState(folder).section("services") as part:
        part["a"] = 1
    for name in (STATE_FILE, LOCK_FILE):
        st = (folder / name).stat()
        assert (st.st_uid, st.st_gid) == (65534, 65534), name


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_reading_any_bytes_never_raises(tmp_path: Path, content: bytes) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    with LocalState(tmp_path).section("services") as part:
        assert isinstance(part, dict)
