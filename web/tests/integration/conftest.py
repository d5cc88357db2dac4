"""Fixtures of the web layer's tests against the real MariaDB (and Cassandra) of the stack.

The variables are described in ``web/tests/conftest.py``. The schema must include migration 0014 and
Django's own tables (``iact-web migrate``, which the web role runs). Other suites and real data share the
database, so every test uses its own names (``it-<random>``): DORA events of its own source and services,
health results and job runs of its own host, users and API clients of its own name. It removes what the
accounts may remove; users are deactivated and clients revoked instead (iact_app may delete neither), and
alerts it opened are resolved (nobody may delete alerts).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone
from iact_agents import mysqlconn
from iact_web.core.models import ApiClient
from webtest_helpers import Principal, Token, make_token

pytestmark = pytest.mark.integration


def _defaults_dir() -> Path:
    value = os.environ.get("IACT_TEST_MYSQL_DEFAULTS_DIR")
    if not value:
        pytest.skip("IACT_TEST_MYSQL_DEFAULTS_DIR is not set (folder with mysql-app.cnf, mysql-dora.cnf, "
                    "mysql-health.cnf)")
    path = Path(value)
    if not (path / "mysql-app.cnf").is_file():
        pytest.skip(f"IACT_TEST_MYSQL_DEFAULTS_DIR={value}: no mysql-app.cnf")
    return path


@pytest.fixture(scope="session")
def defaults_dir() -> Path:
    path = _defaults_dir()
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM django_migrations WHERE app = 'auth'")
        row = cur.fetchone()
    assert row is not None and row[0] > 0, "Django's tables are missing: run `iact-web migrate` first"
    return path


def _connect(defaults_dir: Path, purpose: str) -> pymysql.Connection:
    cnf = defaults_dir / f"mysql-{purpose}.cnf"
    if not cnf.is_file():
        pytest.skip(f"IACT_TEST_MYSQL_DEFAULTS_DIR has no mysql-{purpose}.cnf")
    return mysqlconn.connect(cnf)


@pytest.fixture
def dora_db(defaults_dir: Path) -> Iterator[pymysql.Connection]:
    conn = _connect(defaults_dir, "dora")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def health_db(defaults_dir: Path) -> Iterator[pymysql.Connection]:
    conn = _connect(defaults_dir, "health")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def host(health_db: pymysql.Connection, tag: str) -> Iterator[str]:
    """A host name of the test's own: its health results, job runs and remediation decisions are removed
    afterwards (the health account may), its alerts resolved (nobody may delete alerts)."""
    name = f"it-{tag}"
    try:
        yield name
    finally:
        with health_db.cursor() as cur:
            cur.execute("DELETE FROM health_checks WHERE host = %s", (name,))
            cur.execute("DELETE FROM job_runs WHERE host = %s", (name,))
            cur.execute("DELETE FROM remediations WHERE host = %s", (name,))
            cur.execute("UPDATE alerts SET status = 'resolved', resolved_at = UTC_TIMESTAMP(6) "
                        "WHERE host = %s AND status <> 'resolved'", (name,))
        health_db.commit()


@pytest.fixture
def principal(defaults_dir: Path, tag: str) -> Iterator[Principal]:
    password = f"pw-{uuid.uuid4().hex}"
    user = User.objects.create_user(f"it-{tag}", password=password, is_staff=True, is_superuser=True)
    try:
        yield Principal(user, password)
    finally:
        User.objects.filter(pk=user.pk).update(is_active=False)


@pytest.fixture
def browser(principal: Principal) -> Client:
    """A logged-in session (CSRF checks on, as a browser meets them)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(principal.user)
    return client


@pytest.fixture
def api_token(defaults_dir: Path, tag: str) -> Iterator[Token]:
    made = make_token(f"it-{tag}")
    try:
        yield made
    finally:
        ApiClient.objects.filter(pk=made.client.pk).update(revoked_at=timezone.now())
