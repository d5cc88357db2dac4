"""`iact-agent health`: exit codes, output, configuration errors and an unreachable MySQL."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from iact_agents import cli
from iact_agents.errors import ConfigError
from iact_agents.health import config as health_config
from iact_agents.health import runner
from iact_agents.health.models import CheckResult, Status, overall_exit_code, worst


class FakeCursor:
    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> int:
        return 1


class FakeConnection:
    def cursor(self) -> FakeCursor:
        return FakeCursor()

    def close(self) -> None:
        pass


@pytest.fixture
def fake_mysql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.mysqlconn, "connect", lambda *a, **k: FakeConnection())


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "health.toml"
    path.write_text(f'host = "test-host"\nstate_dir = "{tmp_path / "state"}"\n[time_sync]\nenabled = false\n' + body)
    return path


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([], 0),
        ([Status.OK], 0),
        ([Status.OK, Status.WARNING], 1),
        ([Status.WARNING, Status.CRITICAL, Status.UNKNOWN], 2),
        ([Status.OK, Status.UNKNOWN], 3),
        ([Status.UNKNOWN, Status.WARNING], 1),
    ],
)
def test_nagios_exit_codes(statuses: list[Status], code: int) -> None:
    assert overall_exit_code(CheckResult("c", "n", "h", s, "") for s in statuses) == code
    assert worst(statuses).exit_code == code


@pytest.mark.parametrize(
    ("disk", "code", "mark"),
    [
        ("warn_percent = 100\ncrit_percent = 100\n", 0, "OK"),
        ("warn_percent = 0\ncrit_percent = 100\n", 1, "WARN"),
        ("warn_percent = 0\ncrit_percent = 0\n", 2, "CRIT"),
    ],
)
def test_cli_exit_code_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_mysql: None,
                                 disk: str, code: int, mark: str) -> None:
    cfg = write_config(tmp_path, f'[disk]\n{disk}[[disk.paths]]\npath = "{tmp_path}"\n')
    assert cli.main(["health", "--config", str(cfg), "--no-record"]) == code
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["STATUS", "COMPONENT", "CHECK", "LATENCY", "SUMMARY"]
    assert f"test-host: {mark} (" in out and "not recorded" in out


def test_cli_unknown_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_mysql: None) -> None:
    cfg = write_config(tmp_path, f'[[disk.paths]]\npath = "{tmp_path / "gone"}"\n')
    assert cli.main(["health", "--config", str(cfg), "--no-record", "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "unknown" and doc["exit_code"] == 3 and doc["recorded"] is False
    assert [(r["component"], r["status"]) for r in doc["results"]] == [
        ("mysql", "ok"), ("disk", "unknown"), ("health", "ok")]


def test_unreachable_mysql_is_critical_with_one_clear_line(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cnf = tmp_path / "mysql-health.cnf"
    cnf.write_text(f"[client]\nuser = iact_health\npassword = x\nhost = 127.0.0.1\nport = {port}\ndatabase = iact\n")
    cnf.chmod(0o600)
    cfg = write_config(tmp_path, f'[mysql]\ndefaults_file = "{cnf}"\nconnect_timeout_s = 2\n'
                                 f'[jobs.backup]\nwarn_age_h = 26\ncrit_age_h = 50\n')
    assert cli.main(["health", "--config", str(cfg)]) == 2
    captured = capsys.readouterr()
    err_lines = [line for line in captured.err.splitlines() if line.startswith("iact-agent")]
    assert len(err_lines) == 1
    assert err_lines[0].startswith("iact-agent health: MySQL is not reachable with ")
    assert "results not recorded" in err_lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert "MySQL not reachable: job_runs not read" in captured.out


def test_missing_credential_file_is_a_critical_check_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, f'[mysql]\ndefaults_file = "{tmp_path / "none.cnf"}"\n')
    assert cli.main(["health", "--config", str(cfg), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["summary"].endswith("MySQL credential file not found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[disk]\nwarn_percent = 120\n", "disk.warn_percent"),
        ("[alerting]\nconsecutive_failures = 0\n", "alerting.consecutive_failures"),
        ("[alerting.webhook]\nenabled = true\nurl = \"ftp://x\"\n", "alerting.webhook"),
        ("[cassandra]\nusername = \"reader\"\n", "cassandra"),
        ("[servics]\nunits = []\n", "servics"),
        ("[jobs.backup]\nwarn_age_h = 30\ncrit_age_h = 20\n", "jobs.backup"),
    ],
)
def test_config_errors_are_one_line_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     body: str, field: str) -> None:
    path = tmp_path / "health.toml"
    path.write_text(body)
    assert cli.main(["health", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"iact-agent health: {path}: {field}")


def test_config_file_not_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["health", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_precedence_defaults_file_env(tmp_path: Path) -> None:
    assert health_config.load(None, environ={}).disk.warn_percent == 80
    path = tmp_path / "health.toml"
    path.write_text("[disk]\nwarn_percent = 70\n[services]\nunits = [\"a.service\"]\n")
    assert health_config.load(path, environ={}).disk.warn_percent == 70
    env = {"IACT_HEALTH__DISK__WARN_PERCENT": "60", "IACT_HEALTH__SERVICES__UNITS": "b.service, c.service"}
    cfg = health_config.load(path, environ=env)
    assert cfg.disk.warn_percent == 60
    assert cfg.services.units == ["b.service", "c.service"]
    over = health_config.load(path, environ=env, overrides={"disk": {"warn_percent": 50}})
    assert over.disk.warn_percent == 50
    with pytest.raises(ConfigError, match=r"IACT_HEALTH|disk.crit_percent"):
        health_config.load(None, environ={"IACT_HEALTH__DISK__CRIT_PERCENT": "lots"})


def test_cassandra_password_is_read_from_a_private_file_and_masked(tmp_path: Path) -> None:
    secret = tmp_path / "reader.password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    cfg = health_config.CassandraSettings(username="reader", password_file=secret)
    password = cfg.password()
    assert password is not None and password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(password)
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        cfg.password()
