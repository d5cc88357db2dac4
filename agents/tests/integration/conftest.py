"""Fixtures shared by the agents' MariaDB integration tests (health, remediation): the real MariaDB, from
``IACT_TEST_MYSQL_DEFAULTS``, a MySQL option file of a user with the iact_health grants (the tests that need it
skip without it; molecule/default/verify.yml sets it). Every test uses its own ``host`` value
(``itest-<random>``), so tests never see each other's rows and can run again on the same database.
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
    """A host name of this test only (``itest-<random>``): rows and tables of other tests are never seen."""
    return f"itest-{uuid.uuid4().hex[:12]}"
