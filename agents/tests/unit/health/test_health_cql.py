"""The CQL login check fails in one line without a cluster: a missing password file, nothing listening."""

from __future__ import annotations

import socket
from pathlib import Path

from iact_agents.health.config import CassandraSettings
from iact_agents.health.cql import cql_login_check
from iact_agents.health.models import Status


def test_without_a_username_the_check_is_unknown() -> None:
    assert cql_login_check(CassandraSettings(), "h").status is Status.UNKNOWN


def test_a_missing_password_file_fails_the_check_not_the_run(tmp_path: Path) -> None:
    cfg = CassandraSettings(username="reader", password_file=tmp_path / "none")
    result = cql_login_check(cfg, "h")
    assert result.status is Status.CRITICAL and "credential file not found" in result.summary


def test_nothing_listening_is_critical_with_the_host_error(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    secret.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = CassandraSettings(contact_points=["127.0.0.1"], port=port, username="reader", password_file=secret,
                            connect_timeout_s=2)
    result = cql_login_check(cfg, "h")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"CQL login as reader failed: 127.0.0.1:{port}: ")
    assert "\n" not in result.summary
