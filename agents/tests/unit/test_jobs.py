"""The cron job wrapper: lock (and where it may live), timeout, exit codes, output size, best-effort recording.
Real processes and files, no database."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
from iact_agents import cli, jobs
from iact_agents.jobs import EXIT_OVERLAP, EXIT_TIMEOUT, EXIT_UNSAFE_LOCK, UnsafeLock, job_lock, run_command


def run_cli(tmp_path: Path, *job: str, name: str = "demo", timeout: str = "30") -> int:
    return cli.main(
        ["job", "run", "--name", name, "--timeout", timeout, "--lock-dir", str(tmp_path), "--no-syslog", "--", *job]
    )


def test_exit_code_of_the_job_is_kept(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "sh", "-c", "exit 0") == 0
    assert run_cli(tmp_path, "sh", "-c", "exit 3") == 3


def test_output_is_counted() -> None:
    result = run_command("demo", ["printf", "abc\\nde\\n"], timeout=10, to_syslog=False)
    assert result.exit_code == 0
    assert result.output_bytes == 7
    assert result.status == "success"


def test_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    started = time.monotonic()
    # The child ignores nothing; the grandchild would write the marker if it outlived the group kill.
    result = run_command(
        "demo", ["sh", "-c", f"(sleep 3; touch {marker}) & sleep 30"], timeout=0.5, grace=2, to_syslog=False
    )
    assert result.timed_out
    assert result.exit_code == EXIT_TIMEOUT
    assert result.status == "failure"
    assert "timed out" in result.message
    assert time.monotonic() - started < 10
    time.sleep(3.5)
    assert not marker.exists(), "a process of the timed-out job kept running"


def test_second_overlapping_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with job_lock(tmp_path, "demo"):
        code = run_cli(tmp_path, "sh", "-c", "exit 0")
    assert code == EXIT_OVERLAP
    assert "already running" in capsys.readouterr().err


def test_overlap_across_processes(tmp_path: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-m", "iact_agents.cli", "job", "run", "--name", "slow", "--lock-dir", str(tmp_path),
         "--no-syslog", "--", "sleep", "5"],
    )
    try:
        for _ in range(100):
            if (tmp_path / "iact-job-slow.lock").exists():
                break
            time.sleep(0.05)
        time.sleep(0.3)
        second = subprocess.run(
            [sys.executable, "-m", "iact_agents.cli", "job", "run", "--name", "slow", "--lock-dir", str(tmp_path),
             "--no-syslog", "--", "true"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert second.returncode == EXIT_OVERLAP, second.stderr
        assert second.stderr.count("\n") == 1, "the refusal is one line"
    finally:
        first.terminate()
        first.wait()
    # Once the first run is gone, the lock is free again.
    assert run_cli(tmp_path, "true", name="slow") == 0


@pytest.mark.parametrize("name", ["Bad-Name", "1job", "x" * 65])
def test_bad_job_names_are_refused(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, "true", name=name) == 2
    assert "--name" in capsys.readouterr().err


def test_missing_command_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, "/nonexistent/program") == 2
    err = capsys.readouterr().err
    assert "cannot start /nonexistent/program" in err
    assert "Traceback" not in err


def test_unreachable_database_does_not_change_the_jobs_exit_code(tmp_path: Path) -> None:
    defaults = tmp_path / "my.cnf"
    defaults.write_text("[client]\nuser = nobody\npassword = x\nhost = 127.0.0.1\nport = 9\n")
    code = cli.main(
        ["job", "run", "--name", "demo", "--lock-dir", str(tmp_path), "--no-syslog",
         "--mysql-defaults", str(defaults), "--", "sh", "-c", "exit 4"]
    )
    assert code == 4


@pytest.mark.parametrize("error", [pymysql.err.OperationalError(1046, "No database selected"),
                                   pymysql.err.ProgrammingError(1142, "INSERT command denied")])
def test_a_failed_recording_never_changes_the_jobs_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture,
                                                            error: Exception) -> None:
    def refuse(*_args: object) -> None:
        raise error

    monkeypatch.setattr(jobs, "record", refuse)
    defaults = tmp_path / "my.cnf"
    defaults.write_text("[client]\nuser = nobody\n")
    code = cli.main(["job", "run", "--name", "demo", "--lock-dir", str(tmp_path), "--no-syslog",
                     "--mysql-defaults", str(defaults), "--", "sh", "-c", "exit 4"])
    assert code == 4
    assert f"MySQL error {error.args[0]}" in caplog.text


# --- where the locks live: the running user's own folder, nobody else's ---------------------------


def test_the_default_lock_folder_is_the_running_users_own() -> None:
    assert jobs.default_lock_dir(0) == Path("/run/iact-jobs/root")
    assert jobs.default_lock_dir(2**31 - 7) == Path(f"/run/iact-jobs/{2**31 - 7}")  # a uid without a name


def test_the_lock_file_is_private_to_the_user(tmp_path: Path) -> None:
    with job_lock(tmp_path, "demo") as lock:
        st = lock.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), 0o600)


def test_a_lock_folder_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    # As another uid would see a folder of this one: not theirs, so not used.
    with pytest.raises(UnsafeLock, match=f"owned by uid {os.geteuid()}, not by uid {os.geteuid() + 1}"), \
            job_lock(tmp_path, "demo", uid=os.geteuid() + 1):
        pass


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder to another user")
def test_root_refuses_a_lock_folder_that_a_user_owns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "locks"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # nobody could have made it and filled it with anything
    assert run_cli(folder, "true") == EXIT_UNSAFE_LOCK
    assert "is owned by uid 65534, not by uid 0" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_lock_folder_others_may_write_is_refused(tmp_path: Path, mode: int,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "locks"
    folder.mkdir()
    folder.chmod(mode)  # /run/lock is 1777: exactly what this refuses
    assert run_cli(folder, "true") == EXIT_UNSAFE_LOCK
    assert "writable by group or others" in capsys.readouterr().err


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "locks"
    folder.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_text("keep me")
    (folder / "iact-job-demo.lock").symlink_to(target)
    assert run_cli(folder, "true") == EXIT_UNSAFE_LOCK
    assert "is a symbolic link" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_a_symlinked_lock_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "locks"
    link.symlink_to(real)
    assert run_cli(link, "true") == EXIT_UNSAFE_LOCK
    assert "symbolic link or not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_a_lock_file_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    lock = tmp_path / "iact-job-demo.lock"
    lock.touch()
    lock.chmod(mode)
    with pytest.raises(UnsafeLock, match=r"lock file .* is writable by group or others"), job_lock(tmp_path, "demo"):
        pass


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_a_lock_file_someone_else_owns_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "iact-job-demo.lock"
    lock.touch(mode=0o600)
    os.chown(lock, 65534, 65534)
    with pytest.raises(UnsafeLock, match=r"lock file .* is owned by uid 65534"), job_lock(tmp_path, "demo"):
        pass


def test_a_fifo_in_place_of_the_lock_file_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "iact-job-demo.lock", 0o600)
    with pytest.raises(UnsafeLock, match="not a regular file"), job_lock(tmp_path, "demo"):
        pass


def test_a_parent_others_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    folder = parent / "locks"
    folder.mkdir(mode=0o700)
    parent.chmod(0o777)  # anyone could rename "locks" away and put their own folder there
    with pytest.raises(UnsafeLock, match="parent of the lock folder"), job_lock(folder, "demo"):
        pass
    parent.chmod(0o1777)  # sticky: only the owner may rename it
    with job_lock(folder, "demo"):
        pass


def test_a_missing_lock_folder_names_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path / "absent", "true") == EXIT_UNSAFE_LOCK
    assert "tmpfiles.d" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create root's lock folder")
def test_root_creates_its_own_lock_folder_whatever_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "LOCK_ROOT", tmp_path / "iact-jobs")
    old = os.umask(0o077)
    try:
        with job_lock(jobs.LOCK_ROOT / "root", "demo"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "iact-jobs").stat().st_mode) == 0o755  # the other users' folders stay reachable
    assert stat.S_IMODE((tmp_path / "iact-jobs" / "root").stat().st_mode) == 0o700
