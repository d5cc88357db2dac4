"""The cron job wrapper: lock, timeout, exit codes, output size, best-effort recording. Real processes, no database."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
from iact_agents import cli, jobs
from iact_agents.jobs import EXIT_OVERLAP, EXIT_TIMEOUT, job_lock, run_command


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
