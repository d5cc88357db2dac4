"""Fixtures of the DORA and quality agents' end-to-end tests against the real MariaDB.

``IACT_TEST_MYSQL_DEFAULTS_DIR``  folder with ``mysql-dora.cnf`` and ``mysql-quality.cnf`` (``[client]`` host,
                                  user, password, database) of the iact_dora and iact_quality users; the tests
                                  skip without it. The schema must include migration 0011.

Other tests (and the sample data) share the database, so every test uses its own ``source``
(``it-<random>``), its own service names and a snapshot day of its own (a random day in the 1990s, which no
real data uses), and removes its rows afterwards.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pymysql
import pytest
from iact_agents import mysqlconn


@dataclass(frozen=True)
class Ctx:
    source: str
    service: str
    day: date
    config: Path
    dora_cnf: Path
    quality_cnf: Path
    tmp: Path


@pytest.fixture
def defaults_dir() -> Path:
    value = os.environ.get("IACT_TEST_MYSQL_DEFAULTS_DIR")
    if not value:
        pytest.skip("IACT_TEST_MYSQL_DEFAULTS_DIR is not set (folder with mysql-dora.cnf and mysql-quality.cnf)")
    path = Path(value)
    for name in ("mysql-dora.cnf", "mysql-quality.cnf"):
        if not (path / name).is_file():
            pytest.skip(f"IACT_TEST_MYSQL_DEFAULTS_DIR={value}: no {name}")
    return path


def _cleanup(dora_cnf: Path, source: str, services: tuple[str, ...], day: date) -> None:
    conn = mysqlconn.connect(dora_cnf)
    try:
        with conn.cursor() as cur:
            for table in ("deployments", "changes", "incidents", "dora_rejected_events"):
                cur.execute(f"DELETE FROM {table} WHERE source = %s", (source,))
            cur.execute("DELETE FROM dora_metrics WHERE computed_on BETWEEN %s AND %s",
                        (day - timedelta(days=120), day))
    finally:
        conn.close()


@pytest.fixture
def ctx(defaults_dir: Path, tmp_path: Path) -> Iterator[Ctx]:
    tag = uuid.uuid4().hex[:10]
    day = date(1990, 1, 1) + timedelta(days=random.randrange(200, 3650))
    config = tmp_path / "dora.toml"
    config.write_text(
        "[mysql]\n"
        f'defaults_file = "{defaults_dir / "mysql-dora.cnf"}"\n'
        f'quality_defaults_file = "{defaults_dir / "mysql-quality.cnf"}"\n'
        "[retry]\nbase_delay_s = 0.1\n"
        f'[report]\nhtml_path = "{tmp_path / "configured" / "dora.html"}"\n',
        encoding="utf-8",
    )
    c = Ctx(f"it-{tag}", f"svc-{tag}", day, config, defaults_dir / "mysql-dora.cnf",
            defaults_dir / "mysql-quality.cnf", tmp_path)
    _cleanup(c.dora_cnf, c.source, (c.service,), c.day)
    try:
        yield c
    finally:
        _cleanup(c.dora_cnf, c.source, (c.service,), c.day)


@pytest.fixture
def dora_db(ctx: Ctx) -> Iterator[pymysql.Connection]:
    conn = mysqlconn.connect(ctx.dora_cnf)
    try:
        yield conn
    finally:
        conn.close()
