"""The rate limiter: per-client counters in MariaDB, one atomic upsert per window, a weighted sliding window.

Policies (``[ratelimit]``): ``burst`` (100 requests per 60 s) and ``sustained`` (1000 per 3600 s) by default,
per client: an API client (its token), a logged-in user, or the address of an anonymous caller. A client's
own ``burst_limit``/``sustained_limit`` replace the defaults (e.g. the benchmark client).

Counting (table ``web_rate_limits``, one row per client and policy). Each request runs one transaction:

1. per policy, one ``INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING``: if the row's window has ended it
   rolls over (the ended window's count becomes ``prev_hits``, or 0 if it ended more than one window ago;
   the new window starts a whole number of windows after the old one), then adds 1 to ``hits``, and returns
   the row. The row stays locked until the transaction ends, so concurrent requests of the same client,
   on any worker of any host, are counted one after the other and each sees a distinct count;
2. the weighted estimate of each policy, ``hits + prev_hits * (window - elapsed) / window`` (``elapsed``: time
   since the current window began), must not exceed the limit. This approximates a true sliding window:
   at a window edge the previous window still weighs almost fully, so a client cannot get 2x the limit
   through by sending at the end of one window and the start of the next;
3. a rejected request takes its 1 back from every policy in the same transaction, before the rows are
   unlocked: **a rejected request does not count**, so a client that retries too fast is not locked out
   for longer than its accepted requests demand, and ``Retry-After`` is exact.

A client's windows begin with its first request (then follow each other back to back), so the first
requests of a new client are never split across a window edge.

Headers on every answer: ``X-RateLimit-Limit/-Remaining/-Used/-Reset`` of the policy closest to running
out (the rejecting one on a 429), and ``RateLimit-Policy`` / ``RateLimit`` (IETF draft) for every policy.
``Reset`` is the epoch second the current window of that policy ends; ``Retry-After`` (429 only) the
seconds until a request would be accepted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import OperationalError, connection, transaction

log = logging.getLogger(__name__)

US = 1_000_000
RETRY_ERRORS = frozenset({1205, 1213})  # lock wait timeout, deadlock: the transaction is rolled back whole

UPSERT = (
    "INSERT INTO web_rate_limits (client_key, policy, window_start_us, hits, prev_hits) "
    "VALUES (%(key)s, %(policy)s, %(now)s, 1, 0) "
    "ON DUPLICATE KEY UPDATE "
    # Assignments run left to right and see the values assigned before them: prev_hits reads the old
    # hits and window_start_us, hits reads the old window_start_us, window_start_us moves last.
    "prev_hits = IF(%(now)s >= window_start_us + 2 * %(w)s, 0, "
    "               IF(%(now)s >= window_start_us + %(w)s, hits, prev_hits)), "
    "hits = IF(%(now)s >= window_start_us + %(w)s, 1, hits + 1), "
    "window_start_us = IF(%(now)s >= window_start_us + %(w)s, "
    "                     window_start_us + (%(now)s - window_start_us) DIV %(w)s * %(w)s, window_start_us) "
    "RETURNING window_start_us, hits, prev_hits"
)
GIVE_BACK = "UPDATE web_rate_limits SET hits = hits - 1 WHERE client_key = %s AND policy = %s AND hits > 0"
PRUNE = "DELETE FROM web_rate_limits WHERE policy = %s AND window_start_us < %s LIMIT %s"


@dataclass(frozen=True)
class Policy:
    name: str
    limit: int
    window_s: int

    @property
    def window_us(self) -> int:
        return self.window_s * US


@dataclass(frozen=True)
class PolicyState:
    """One policy's window after this request: ``hits`` counts this request only if it was accepted."""

    policy: Policy
    now_us: int
    window_start_us: int
    hits: int
    prev_hits: int

    @property
    def elapsed_us(self) -> int:
        return min(max(self.now_us - self.window_start_us, 0), self.policy.window_us)

    def estimate(self, extra: int = 0) -> float:
        """Weighted count of the sliding window ending now (``extra`` more requests in this window)."""
        w = self.policy.window_us
        return self.hits + extra + self.prev_hits * (w - self.elapsed_us) / w

    def admits(self, extra: int = 0) -> bool:
        # Exact in integers: (hits + extra) * w + prev * (w - elapsed) <= limit * w.
        w = self.policy.window_us
        return (self.hits + extra) * w + self.prev_hits * (w - self.elapsed_us) <= self.policy.limit * w

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.policy.limit - self.estimate() + 1e-9))

    @property
    def used(self) -> int:
        return self.policy.limit - self.remaining

    @property
    def reset_epoch(self) -> int:
        """Epoch second the current window ends."""
        return math.ceil((self.window_start_us + self.policy.window_us) / US)

    @property
    def reset_in_s(self) -> int:
        return max(0, math.ceil((self.window_start_us + self.policy.window_us - self.now_us) / US))

    def wait_us(self) -> int:
        """Microseconds until one more request would be accepted (0: now)."""
        p, w, e = self.policy, self.policy.window_us, self.elapsed_us
        if self.admits(1):
            return 0
        if self.hits + 1 <= p.limit:
            # Within this window: wait until the previous window's weight has fallen far enough.
            assert self.prev_hits > 0  # otherwise admits(1) held
            target = w - (p.limit - self.hits - 1) * w / self.prev_hits
            return max(0, math.ceil(target - e))
        # Not before the next window, where this window's hits become the previous window's.
        if p.limit < 1:
            return w * 2
        target_next = max(0.0, w - (p.limit - 1) * w / self.hits) if self.hits > 0 else 0.0
        return (w - e) + math.ceil(target_next)


@dataclass(frozen=True)
class Decision:
    accepted: bool
    states: tuple[PolicyState, ...]

    @property
    def deciding(self) -> PolicyState:
        """The policy the ``X-RateLimit-*`` headers describe: the rejecting one with the longest wait on a
        429, else the one closest to running out (ties: the longer window)."""
        if not self.accepted:
            rejecting = [s for s in self.states if not s.admits(1)]
            return max(rejecting, key=lambda s: (s.wait_us(), s.policy.window_s))
        return min(self.states, key=lambda s: (s.remaining, -s.policy.window_s))

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(max(s.wait_us() for s in self.states) / US))

    def headers(self) -> dict[str, str]:
        d = self.deciding
        out = {
            "X-RateLimit-Limit": str(d.policy.limit),
            "X-RateLimit-Remaining": str(d.remaining),
            "X-RateLimit-Used": str(d.used),
            "X-RateLimit-Reset": str(d.reset_epoch),
            "X-RateLimit-Resource": d.policy.name,
            "RateLimit-Policy": ", ".join(
                f'"{s.policy.name}";q={s.policy.limit};w={s.policy.window_s}' for s in self.states),
            "RateLimit": ", ".join(f'"{s.policy.name}";r={s.remaining};t={s.reset_in_s}' for s in self.states),
        }
        if not self.accepted:
            out["Retry-After"] = str(self.retry_after_s)
        return out


def _count_once(key: str, policies: Sequence[Policy], now_us: int) -> Decision:
    with transaction.atomic(), connection.cursor() as cur:
        states = []
        for policy in policies:
            cur.execute(UPSERT, {"key": key, "policy": policy.name, "now": now_us, "w": policy.window_us})
            row = cur.fetchone()
            assert row is not None  # RETURNING always yields the row
            states.append(PolicyState(policy, now_us, int(row[0]), int(row[1]), int(row[2])))
        accepted = all(s.admits() for s in states)
        if not accepted:
            for policy in policies:
                cur.execute(GIVE_BACK, (key, policy.name))
            states = [PolicyState(s.policy, s.now_us, s.window_start_us, s.hits - 1, s.prev_hits) for s in states]
    return Decision(accepted, tuple(states))


def count_request(
    key: str, policies: Sequence[Policy], *, now_us: int | None = None, attempts: int = 3,
    clock: Callable[[], int] = lambda: time.time_ns() // 1000,
) -> Decision:
    """Count one request of ``key`` against ``policies`` (at ``now_us``, microseconds since the epoch)."""
    for attempt in range(1, attempts + 1):
        try:
            return _count_once(key, policies, clock() if now_us is None else now_us)
        except OperationalError as exc:
            code = exc.args[0] if exc.args else None
            if code not in RETRY_ERRORS or attempt == attempts:
                raise
            log.info("rate limiter: %s, retrying (%d/%d)", exc.args[-1], attempt, attempts)
    raise AssertionError("unreachable")  # pragma: no cover


def prune(policies: Sequence[Policy], *, now_us: int | None = None, chunk: int = 1000) -> int:
    """Delete rows whose windows ended more than one window ago (they weigh nothing any more)."""
    now = time.time_ns() // 1000 if now_us is None else now_us
    deleted = 0
    with connection.cursor() as cur:
        for policy in policies:
            while True:
                n = cur.execute(PRUNE, (policy.name, now - 2 * policy.window_us, chunk))
                deleted += n
                if n < chunk:
                    break
    return deleted
