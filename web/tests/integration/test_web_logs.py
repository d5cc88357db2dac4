"""Log search against the real Cassandra: lines written into two days' partitions are read back through the
reader role, page by page across the days, newest first, within the range; cursors cannot be forged.

The lines are a collector host's: the newer ones in the host's own table (found by its comment in the
schema, as the search finds it), the older ones in the shared table of the lines written before the per-host
tables, on both days, as on an upgraded cluster. Written with the admin role (a collector's role may not
delete), under a source of the test's own, and deleted afterwards."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
from django.test import Client
from iact_agents.config import verifying_context
from iact_agents.logtables import read_tables
from webtest_helpers import Token

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def writer() -> Iterator[Any]:
    hosts = os.environ.get("IACT_TEST_CASSANDRA_HOSTS")
    user, password_file = os.environ.get("IACT_TEST_CASSANDRA_USER"), os.environ.get(
        "IACT_TEST_CASSANDRA_PASSWORD_FILE")
    if not (hosts and user and password_file and os.environ.get("IACT_TEST_CASSANDRA_READER_PASSWORD_FILE")):
        pytest.skip("IACT_TEST_CASSANDRA_HOSTS, _USER, _PASSWORD_FILE and _READER_PASSWORD_FILE are needed")
    ca = os.environ.get("IACT_TEST_CASSANDRA_CA")  # the stack requires TLS
    cluster = Cluster([h.strip() for h in hosts.split(",")], protocol_version=5, auth_provider=PlainTextAuthProvider(
        user, Path(password_file).read_text().strip()), ssl_context=verifying_context(Path(ca)) if ca else None)
    session = cluster.connect()
    try:
        yield session
    finally:
        cluster.shutdown()


def test_search_pages_through_partitions_newest_first(writer: Any, api_token: Token, browser: Client) -> None:
    tables = read_tables(writer, "iact_logs")
    if not tables.by_host or "infrastructure_logs" not in tables.names:
        pytest.fail(f"iact_logs needs a host's own table and the shared one; it has {sorted(tables.names)}")
    host, own = sorted(tables.by_host.items())[0]
    source = f"/var/log/it-{uuid.uuid4().hex[:8]}.log"
    day2 = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    day1 = day2 - timedelta(days=1)
    times = [day1 + timedelta(minutes=i) for i in range(5)] + [day2 + timedelta(minutes=i) for i in range(4)]
    # day1 and the first two lines of day2 before the upgrade (shared table), the last two after (own table)
    where = ["infrastructure_logs"] * 7 + [own] * 2
    columns = "host, source, day, ts, position, severity, program, message, raw, parse_error"
    inserts = {t: writer.prepare(f'INSERT INTO iact_logs."{t}" ({columns}) '
                                 "VALUES (?, ?, ?, ?, ?, 'info', 'it', ?, ?, false)") for t in set(where)}
    for i, ts in enumerate(times):
        writer.execute(inserts[where[i]], (host, source, ts.date(), ts, f"0:{i:08d}", f"line {i}", f"raw {i}"))
    outside = day2 + timedelta(hours=3)
    writer.execute(inserts[own], (host, source, outside.date(), outside, "0:99999999", "outside", "outside"))
    try:
        http = api_token.http()
        start, end = day1 - timedelta(hours=1), day2 + timedelta(hours=1)
        url: str | None = (f"/api/v1/logs?host={host}&source={source}&from={start:%Y-%m-%dT%H:%M:%SZ}"
                           f"&to={end:%Y-%m-%dT%H:%M:%SZ}&page_size=3")
        seen: list[str] = []
        pages = 0
        while url is not None and pages < 10:
            answer = http.get(url)
            assert answer.status_code == 200, answer.content
            body = answer.json()
            assert len(body["results"]) <= 3
            seen += [r["message"] for r in body["results"]]
            url = body["next"]
            pages += 1
        assert seen == [f"line {i}" for i in reversed(range(9))]  # all nine, newest first, not "outside"
        # A cursor of another search, or a forged one, is a 400 naming it.
        first = http.get(f"/api/v1/logs?host={host}&source={source}&from={start:%Y-%m-%dT%H:%M:%SZ}"
                         f"&to={end:%Y-%m-%dT%H:%M:%SZ}&page_size=3").json()
        cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
        other = http.get(f"/api/v1/logs?host={host}&source=/other&cursor={cursor}")
        assert other.status_code == 400 and other.json()["parameter"] == "cursor"
        forged = http.get(f"/api/v1/logs?host={host}&source={source}&cursor={cursor[:-3]}abc")
        assert forged.status_code == 400 and forged.json()["parameter"] == "cursor"
        # The page shows the same lines and exports them.
        page = browser.get(f"/logs/?host={host}&source={source}&from={start:%Y-%m-%dT%H:%M:%SZ}"
                           f"&to={end:%Y-%m-%dT%H:%M:%SZ}&page_size=5").content.decode()
        assert "line 8" in page and "line 3" not in page and re.search(r'rel="next"', page)
    finally:
        for t in set(where):
            for d in {ts.date() for ts in [*times, outside]}:
                writer.execute(f'DELETE FROM iact_logs."{t}" WHERE host = %s AND source = %s AND day = %s',
                               (host, source, d))


def test_the_code_never_asks_cassandra_to_filter() -> None:
    code = "\n".join(p.read_text() for p in (ROOT / "web/iact_web").rglob("*.py"))
    assert "ALLOW FILTERING" not in code.upper().replace("NEVER ``ALLOW FILTERING``", "")
