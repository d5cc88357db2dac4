"""The app's rate limiter through the real proxy: 150 requests of one API client from 8 concurrent clients
through nginx and every gunicorn worker are answered exactly 100 times 200 and 50 times 429, each with
the limiter's headers. (The app's own tests cover the windows and the hourly limit with a test-sized
window; this one proves nothing on the way, nginx's shield included, changes the count.)

The client is `ci` of the inventory (the default limits). Its counters are reset in MariaDB first, as root
on the metrics store, so a rerun within the hour counts from zero too; they are reset again afterwards.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from web_testlib import Site

REQUESTS = 150
CLIENTS = 8
LIMIT = 100
ENDPOINT = "api/v1/health"
TIMEOUT = 30


def _sql(db, statement: str) -> str:
    with db.sudo():
        cmd = db.run("mariadb -N -B iact -e %s", statement)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


@pytest.fixture
def fresh_ci_client(site: Site, db_host):  # type: ignore[no-untyped-def]
    db = db_host
    client_id = _sql(db, "SELECT id FROM web_api_clients WHERE name = 'ci' AND revoked_at IS NULL")
    assert client_id, "the inventory's API client 'ci' is missing or revoked: run playbooks/web.yml"
    reset = f"DELETE FROM web_rate_limits WHERE client_key = 'client:{client_id}'"
    _sql(db, reset)
    yield site.tokens["ci"]
    _sql(db, reset)


def test_150_requests_from_8_clients_through_nginx_give_exactly_100_accepted(site: Site, fresh_ci_client: str) -> None:
    headers = {"Authorization": f"Token {fresh_ci_client}", "Accept": "application/json"}

    def worker(n: int) -> list[requests.Response]:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(site.ca)
        share = REQUESTS // CLIENTS + (1 if n < REQUESTS % CLIENTS else 0)
        return [session.get(site.url + ENDPOINT, headers=headers, timeout=TIMEOUT) for _ in range(share)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [a for batch in pool.map(worker, range(CLIENTS)) for a in batch]

    assert len(answers) == REQUESTS
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: LIMIT, 429: REQUESTS - LIMIT}, statuses

    accepted = [a for a in answers if a.status_code == 200]
    rejected = [a for a in answers if a.status_code == 429]
    # Each accepted request saw its own count: the atomic upsert gave every one a distinct place in the window.
    assert sorted(int(a.headers["X-RateLimit-Used"]) for a in accepted) == list(range(1, LIMIT + 1))
    assert sorted(int(a.headers["X-RateLimit-Remaining"]) for a in accepted) == list(range(LIMIT))
    for a in answers:
        assert a.headers["X-RateLimit-Limit"] == str(LIMIT), dict(a.headers)
        assert int(a.headers["X-RateLimit-Reset"]) > 1_700_000_000
        assert a.headers["RateLimit-Policy"] == '"burst";q=100;w=60, "sustained";q=1000;w=3600'
        assert a.headers["RateLimit"].startswith('"burst";r=')
    for a in rejected:
        # The app's 429 (a problem naming the policy), not nginx's shield.
        assert a.headers["Content-Type"].startswith("application/problem+json")
        body = json.loads(a.text)
        assert body["status"] == 429 and body["policy"] == "burst", body
        assert int(a.headers["Retry-After"]) >= 1
        assert a.headers["X-RateLimit-Remaining"] == "0"
        assert a.headers["X-RateLimit-Used"] == str(LIMIT)
