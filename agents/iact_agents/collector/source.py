"""What every reader shares: the :class:`Batch` it hands out, the :class:`Source` protocol the daemon drives,
and the conversion of record timestamps to the µs the state file keeps.

Every reader hands out one batch at a time: records plus the position *after* them. The daemon writes the
records, and only when Cassandra acknowledged them commits the batch's state and calls ``ack``; a reader never
reads ahead of the one batch in flight, so memory is bounded by the batch limits (lines and bytes), and a
reader whose sink is down simply is not asked for more. Readers: :mod:`.tailer` (files), :mod:`.journal`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from .position import SourceState
from .records import EPOCH, Record

Clock = Callable[[], float]


def ts_us(ts: datetime) -> int:
    """µs since the epoch of an aware timestamp (exact, unlike ``timestamp()``)."""
    delta = ts - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def now_us() -> int:
    return ts_us(datetime.now(UTC))


@dataclass(slots=True)
class Batch:
    """Records read from one source and the state to commit once all of them are acknowledged."""

    key: str
    records: list[Record]
    state: SourceState
    nbytes: int = 0


class Source(Protocol):
    key: str

    def read_batch(self, limit: int | None = None) -> Batch | None: ...

    def ack(self, batch: Batch) -> None: ...

    def busy(self) -> bool: ...

    def close(self) -> None: ...
