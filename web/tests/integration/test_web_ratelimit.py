"""The rate limiter against the real MariaDB: exact under concurrency (threads of one process, and the
worker processes of a real gunicorn), the sustained limit, the sliding window's edges, the headers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone
from iact_web.config import RateLimitSettings
from iact_web.core import ratelimit
from iact_web.core.models import ApiClient
from webtest_helpers import Token, make_token

pytestmark = pytest.mark.integration

CLIENTS = 8
REQUESTS = 150


def _limits(burst: int = 100, sustained: int = 1000, sustained_window: int = 3600) -> Any:
    return settings.CONFIG.model_copy(update={"ratelimit": RateLimitSettings(
        burst_limit=burst, burst_window_s=60, sustained_limit=sustained, sustained_window_s=sustained_window)})


@pytest.fixture
def fresh_token(defaults_dir: Path) -> Iterator[Token]:
    made = make_token(f"it-rl-{uuid.uuid4().hex[:10]}")
    try:
        yield made
    finally:
        ApiClient.objects.filter(pk=made.client.pk).update(revoked_at=timezone.now())


def _run_concurrently(send: Callable[[], tuple[int, dict[str, str], bytes]]) -> list[tuple[int, dict[str, str],
                                                                                         bytes]]:
    """REQUESTS requests from CLIENTS threads at once (a barrier releases them together)."""
    results: list[tuple[int, dict[str, str], bytes]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)
    share = [REQUESTS // CLIENTS + (1 if i < REQUESTS % CLIENTS else 0) for i in range(CLIENTS)]

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(n):
                got = send()
                with lock:
                    results.append(got)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _check_exactly_100_of_150(results: list[tuple[int, dict[str, str], bytes]]) -> None:
    assert len(results) == REQUESTS
    accepted = [h for s, h, _ in results if s == 200]
    rejected = [(h, b) for s, h, b in results if s == 429]
    assert (len(accepted), len(rejected)) == (100, 50), sorted({s for s, _, _ in results})
    # Every accepted request saw a distinct count: 99 left, 98 left, ..., 0 left.
    assert sorted(int(h["X-RateLimit-Remaining"]) for h in accepted) == list(range(100))
    assert {h["X-RateLimit-Limit"] for h in accepted} == {"100"}
    resets = {h["X-RateLimit-Reset"] for h, _ in rejected} | {h["X-RateLimit-Reset"] for h in accepted}
    assert len(resets) == 1, "one window, one reset time"
    for headers, body in rejected:
        assert headers["X-RateLimit-Remaining"] == "0" and headers["X-RateLimit-Used"] == "100"
        assert headers["X-RateLimit-Resource"] == "burst"
        assert 1 <= int(headers["Retry-After"]) <= 61
        assert headers["RateLimit-Policy"] == '"burst";q=100;w=60, "sustained";q=1000;w=3600'
        assert headers["RateLimit"].startswith('"burst";r=0;t=')
        problem = json.loads(body)
        assert problem["status"] == 429 and problem["policy"] == "burst"
        assert problem["retry_after_s"] == int(headers["Retry-After"])
        assert headers["Content-Type"] == "application/problem+json"


def test_150_requests_from_8_clients_in_one_process(fresh_token: Token) -> None:
    def send() -> tuple[int, dict[str, str], bytes]:
        response = fresh_token.http().get("/api/versions")
        return response.status_code, dict(response.items()), response.content

    with override_settings(CONFIG=_limits()):
        results = _run_concurrently(send)
    _check_exactly_100_of_150(results)
    with connection.cursor() as cur:
        cur.execute("SELECT hits FROM web_rate_limits WHERE client_key = %s AND policy = 'burst'",
                    (f"client:{fresh_token.client.pk}",))
        row = cur.fetchone()
    assert row is not None and row[0] == 100, "the 50 rejected requests were not counted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gunicorn(tmp_path: Path, defaults_dir: Path) -> Iterator[str]:
    """A real gunicorn with 4 worker processes on loopback, with the deployed limits (100/min, 1000/h)."""
    source = Path(os.environ["IACT_WEB_CONFIG"]).read_text()
    config = tmp_path / "web.toml"
    config.write_text(source.replace("burst_limit = 1000000", "burst_limit = 100")
                      .replace("sustained_limit = 10000000", "sustained_limit = 1000"))
    port = _free_port()
    env = {**os.environ, "IACT_WEB_CONFIG": str(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "4", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
         "--control-socket", str(tmp_path / "gunicorn.ctl"), "iact_web.wsgi:application"],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"gunicorn did not start: {out[-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_150_requests_from_8_clients_across_gunicorn_workers(gunicorn: str, fresh_token: Token) -> None:
    pids: set[str] = set()

    def send() -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"{gunicorn}/api/versions",
                                         headers={"Authorization": f"Token {fresh_token.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read()

    results = _run_concurrently(send)
    _check_exactly_100_of_150(results)
    pids.update(h.get("X-Request-Id", "") for _, h, _ in results)
    assert len(pids) == REQUESTS  # every answer went through the app (one request id each)


def test_the_sustained_limit_with_a_test_sized_limit(fresh_token: Token) -> None:
    http = fresh_token.http()
    with override_settings(CONFIG=_limits(burst=100, sustained=30)):
        answers = [http.get("/api/versions") for _ in range(40)]
    assert [a.status_code for a in answers] == [200] * 30 + [429] * 10
    last_ok, first_no = answers[29], answers[30]
    assert last_ok["X-RateLimit-Resource"] == "sustained" and last_ok["X-RateLimit-Remaining"] == "0"
    assert first_no["X-RateLimit-Resource"] == "sustained" and first_no.json()["policy"] == "sustained"
    assert first_no["RateLimit-Policy"] == '"burst";q=100;w=60, "sustained";q=30;w=3600'
    assert first_no["RateLimit"].startswith('"burst";r=70;t=')
    assert int(first_no["Retry-After"]) > 3500  # not before the next sustained window


def test_every_answer_carries_the_headers(fresh_token: Token, browser: Client) -> None:
    with override_settings(CONFIG=_limits()):
        for response in (fresh_token.http().get("/api/v1/live"), fresh_token.http().get("/api/v1/nothing-here"),
                         fresh_token.http().get("/api/v1/deployments?page_size=0"), browser.get("/ops/health/"),
                         Client().get("/dora/"), Client().get("/api/v1/live")):
            for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Used", "X-RateLimit-Reset",
                         "RateLimit-Policy", "RateLimit"):
                assert name in response, (response.status_code, name)


# --- the sliding window, with explicit times (no waiting, no wall clock) ------------------------------------

S = ratelimit.US


def test_window_edges_roll_over_and_rejections_do_not_count(defaults_dir: Path) -> None:
    key = f"it-rl:{uuid.uuid4().hex}"
    # A policy name of its own: prune() at a future time must not touch anybody else's counters.
    policies = (ratelimit.Policy(f"it{uuid.uuid4().hex[:12]}", 10, 10),)
    t0 = 1_900_000_000 * S

    def at(t: int) -> ratelimit.Decision:
        return ratelimit.count_request(key, policies, now_us=t)

    assert all(at(t0 + i).accepted for i in range(10))
    assert not at(t0 + 5 * S).accepted  # same window, full
    assert not any(at(t0 + 9 * S + i).accepted for i in range(20))  # rejections do not count...
    with connection.cursor() as cur:
        cur.execute("SELECT hits, prev_hits, window_start_us FROM web_rate_limits WHERE client_key = %s", (key,))
        assert cur.fetchone() == (10, 0, t0)  # ...the row holds the 10 accepted ones
    # Just after the edge the previous window still weighs (almost) fully: no 2x burst at the edge.
    assert not at(t0 + 10 * S + 1).accepted
    # Half-way through the next window the previous 10 weigh 5: exactly 5 more.
    results = [at(t0 + 15 * S).accepted for _ in range(7)]
    assert results == [True] * 5 + [False] * 2
    # A second later the previous window weighs 4: one more fits (5 + 1 + 4 = 10), then none.
    assert at(t0 + 16 * S).accepted
    rejected = at(t0 + 16 * S)
    assert not rejected.accepted
    # Retry-After is exact: the 7th request fits when the previous 10 weigh 3, at 17 s; not a microsecond sooner.
    wait = rejected.states[0].wait_us()
    assert wait == 1 * S
    assert not at(t0 + 16 * S + wait - 1).accepted
    assert at(t0 + 16 * S + wait).accepted
    # Two windows later nothing weighs any more.
    assert all(at(t0 + 40 * S + i).accepted for i in range(10))
    with connection.cursor() as cur:
        cur.execute("SELECT hits, prev_hits, window_start_us FROM web_rate_limits WHERE client_key = %s", (key,))
        assert cur.fetchone() == (10, 0, t0 + 40 * S)
    # Pruning: the row weighs nothing two windows after its window began; then it goes.
    assert ratelimit.prune(policies, now_us=t0 + 59 * S) == 0
    assert ratelimit.prune(policies, now_us=t0 + 61 * S) == 1
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM web_rate_limits WHERE client_key = %s", (key,))
        assert cur.fetchone() == (0,)


def test_two_policies_a_rejection_by_one_counts_in_neither(defaults_dir: Path) -> None:
    key = f"it-rl:{uuid.uuid4().hex}"
    burst, sustained = f"it{uuid.uuid4().hex[:12]}", f"it{uuid.uuid4().hex[:12]}"
    policies = (ratelimit.Policy(burst, 100, 60), ratelimit.Policy(sustained, 3, 3600))
    t0 = 1_900_000_000 * S
    outcomes = [ratelimit.count_request(key, policies, now_us=t0 + i).accepted for i in range(5)]
    assert outcomes == [True, True, True, False, False]
    with connection.cursor() as cur:
        cur.execute("SELECT policy, hits FROM web_rate_limits WHERE client_key = %s", (key,))
        assert dict(cur.fetchall()) == {burst: 3, sustained: 3}
        cur.execute("DELETE FROM web_rate_limits WHERE client_key = %s", (key,))
