"""``cassandra:cql_login`` against the real cluster named by IACT_TEST_CASSANDRA_* (skipped without it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from iact_agents.health.config import CassandraSettings
from iact_agents.health.cql import cql_login_check
from iact_agents.health.models import Status

pytestmark = pytest.mark.integration


@pytest.fixture
def cassandra() -> CassandraSettings:
    hosts = os.environ.get("IACT_TEST_CASSANDRA_HOSTS")
    user = os.environ.get("IACT_TEST_CASSANDRA_USER")
    password_file = os.environ.get("IACT_TEST_CASSANDRA_PASSWORD_FILE")
    if not (hosts and user and password_file):
        pytest.skip("IACT_TEST_CASSANDRA_HOSTS, IACT_TEST_CASSANDRA_USER and IACT_TEST_CASSANDRA_PASSWORD_FILE"
                    " are needed for the CQL login check")
    return CassandraSettings.model_validate({
        "enabled": True,
        "contact_points": hosts,
        "port": int(os.environ.get("IACT_TEST_CASSANDRA_PORT", "9042")),
        "username": user,
        "password_file": password_file,
        "connect_timeout_s": 15,
        "ssl_ca_file": os.environ.get("IACT_TEST_CASSANDRA_CA") or None,  # the stack requires TLS
    })


def test_cql_login_works(cassandra: CassandraSettings) -> None:
    result = cql_login_check(cassandra, "itest")
    assert result.status is Status.OK, result.summary
    assert result.detail["release_version"]


def test_cql_login_with_a_wrong_password_is_critical(cassandra: CassandraSettings, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    result = cql_login_check(cassandra.model_copy(update={"password_file": wrong}), "itest")
    assert result.status is Status.CRITICAL
    assert "CQL login as" in result.summary
