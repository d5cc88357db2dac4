"""Fixtures of remediation's integration tests: the real MariaDB, from ``IACT_TEST_MYSQL_DEFAULTS`` (an option
file of a user with the iact_health grants, migrations up to 0016). Every test uses its own ``host`` values
(``itest-<random>``), so tests never see each other's rows (iact_health may not delete them)."""

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
