"""The weighted sliding window's arithmetic (no database): admission, remaining, Retry-After, headers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from iact_web.core.ratelimit import US, Decision, Policy, PolicyState

BURST = Policy("burst", 100, 60)


def state(hits: int, prev: int, elapsed_s: float, policy: Policy = BURST) -> PolicyState:
    start = 1_000_000 * US
    return PolicyState(policy, start + round(elapsed_s * US), start, hits, prev)


def test_fresh_window_counts_exactly() -> None:
    assert state(100, 0, 10).admits() and not state(101, 0, 10).admits()
    assert state(100, 0, 10).remaining == 0 and state(37, 0, 10).remaining == 63
    assert state(37, 0, 10).used == 37


def test_the_previous_window_weighs_by_the_time_left_of_it() -> None:
    # Half-way through: 100 previous hits weigh 50, so 50 more fit, not 100 (no 2x at the edge).
    assert state(50, 100, 30).admits() and not state(51, 100, 30).admits()
    # Right after the edge the previous window weighs (almost) fully.
    assert not state(1, 100, 0.001).admits()
    assert state(100, 100, 60).admits()  # at the very end of the window it weighs nothing


def test_wait_is_exact_within_the_window() -> None:
    s = state(50, 100, 30)  # 50 + 50 = 100: the next request waits for the weight to drop by one
    wait = s.wait_us()
    assert wait > 0
    after = PolicyState(s.policy, s.now_us + wait, s.window_start_us, s.hits, s.prev_hits)
    before = PolicyState(s.policy, s.now_us + wait - 1, s.window_start_us, s.hits, s.prev_hits)
    assert after.admits(1) and not before.admits(1)


def test_wait_runs_into_the_next_window_when_this_one_is_full() -> None:
    s = state(100, 0, 20)
    wait = s.wait_us()
    # 40 s to the edge, then until 100 previous hits weigh at most 99: 0.6 s into the next window.
    assert wait == 40 * US + round(0.6 * US)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 150), st.integers(0, 150), st.floats(0, 59.999), st.integers(1, 120))
def test_remaining_never_exceeds_what_admits_allows(hits: int, prev: int, elapsed: float, limit: int) -> None:
    s = state(hits, prev, elapsed, Policy("p", limit, 60))
    assert 0 <= s.remaining <= limit
    if s.remaining > 0:
        assert s.admits(1)
    assert s.wait_us() >= 0
    assert (s.wait_us() == 0) == s.admits(1)


def test_headers_name_the_policy_closest_to_running_out() -> None:
    sustained = Policy("sustained", 1000, 3600)
    d = Decision(True, (state(10, 0, 5), state(995, 0, 100, sustained)))
    h = d.headers()
    assert h["X-RateLimit-Limit"] == "1000" and h["X-RateLimit-Remaining"] == "5"
    assert h["X-RateLimit-Used"] == "995" and h["X-RateLimit-Resource"] == "sustained"
    assert h["RateLimit-Policy"] == '"burst";q=100;w=60, "sustained";q=1000;w=3600'
    assert h["RateLimit"].startswith('"burst";r=90;t=55, "sustained";r=5;t=3500')
    assert "Retry-After" not in h


def test_429_headers() -> None:
    d = Decision(False, (state(100, 0, 20), state(100, 0, 20, Policy("sustained", 1000, 3600))))
    h = d.headers()
    assert h["X-RateLimit-Resource"] == "burst" and h["X-RateLimit-Remaining"] == "0"
    assert h["Retry-After"] == "41"  # 40.6 s, rounded up
