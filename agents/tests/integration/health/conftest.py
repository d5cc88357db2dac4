"""Fixtures of the health agent's integration tests: the real MariaDB (and Cassandra), from env vars.

``IACT_TEST_MYSQL_DEFAULTS``            MySQL option file of a user with the iact_health grants (required;
                                         the MySQL tests skip without it). The schema must include
                                         migrations 0002 and 0010.
``IACT_TEST_CASSANDRA_HOSTS``           comma-separated CQL contact points (the CQL login test skips without)
``IACT_TEST_CASSANDRA_USER``            a role that may log in
``IACT_TEST_CASSANDRA_PASSWORD_FILE``   0600 file with its password
``IACT_TEST_CASSANDRA_PORT``            CQL port (default 9042)

Every test uses its own ``host`` value (``itest-<random>``), so tests never see each other's rows and can
run again on the same database; the rows stay (iact_health may not delete).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from iact_agents import mysqlconn


@pytest.fixture
def mysql_defaults() -> Path:
    value = os.environ.get("IACT_TEST_MYSQL_DEFAULTS")
    if not value:
        pytest.skip("IACT_TEST_MYSQL_DEFAULTS is not set (MySQL option file of a user with the iact_health grants)")
    path = Path(value)
    if not path.is_file():
        pytest.skip(f"IACT_TEST_MYSQL_DEFAULTS={value}: no such file")
    return path


@pytest.fixture
def db(mysql_defaults: Path) -> Iterator[pymysql.Connection]:
    conn = mysqlconn.connect(mysql_defaults)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def test_host() -> str:
    return f"itest-{uuid.uuid4().hex[:12]}"
