"""Poison records: a record the collector cannot process is set aside, counted and skipped, never retried
forever.

Parsers are total, so a line that does not parse is a ``parse_error`` row, not a poison record. Poison is
what still fails unexpectedly: a parser bug (an exception), a value the sink or the driver cannot
serialize, a row Cassandra refuses while it accepts a plain row, or a record during which the process
died more than once (a crash in a C extension, the OOM killer). Each such record is

* appended to the local quarantine file (``<state_dir>/quarantine.jsonl``, JSON lines with the source,
  position, reason and raw text; bounded: past ``max_bytes`` it is moved to ``quarantine.jsonl.1``,
  replacing the older one, so at most twice ``max_bytes`` are kept);
* stored as a ``parse_error`` row when Cassandra accepts a plain one (raw text ASCII-escaped, field
  ``quarantine`` = the reason), so that nothing disappears from the log table silently;
* counted in the state file (``positions.json``, key ``quarantine``), in the same atomic write that
  commits the position past it. The health agent reads that key (contract in health/checks.py).

Crashes across restarts: before batches are written, :class:`Inflight` notes every batch in flight (its
source, first position and size) in ``inflight.json`` (replaced atomically, no fsync: it must survive the
process, not the machine). A clean exit removes it. At start, a note left behind means the previous run
died with those batches in flight; their attempt counts go up, and until every one of them is committed past
the collector keeps only one batch in flight, so each later note names a single batch. The second time the
same batch is found in flight, its source is read one record at a time for the length of that batch
("careful mode", itself noted so that it survives further crashes, and also one batch in flight at a time);
a single record found in flight twice is quarantined unread by the sink.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..fsutil import replace_atomically, write_all_and_sync
from ..storable import clean_text

log = logging.getLogger(__name__)

CRASHES_BEFORE_CAREFUL = 2
"""A batch found in flight this many times at start is re-read one record at a time."""
CRASHES_BEFORE_QUARANTINE = 2
"""A single record found in flight this many times at start is quarantined."""
RAW_KEPT = 64 << 10
"""Characters of raw text kept per quarantined record in the local file."""


@dataclass(slots=True)
class QuarantineStats:
    """What the state file says about quarantined records (read by the health agent)."""

    count: int = 0
    last_at: float | None = None
    last_source: str | None = None
    last_reason: str | None = None
    file: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> QuarantineStats:
        if not isinstance(raw, dict):
            return cls()
        count = raw.get("count")
        last_at = raw.get("last_at")
        return cls(
            count=count if isinstance(count, int) and count >= 0 else 0,
            last_at=float(last_at) if isinstance(last_at, int | float) else None,
            last_source=raw.get("last_source") if isinstance(raw.get("last_source"), str) else None,
            last_reason=raw.get("last_reason") if isinstance(raw.get("last_reason"), str) else None,
            file=raw.get("file") if isinstance(raw.get("file"), str) else None,
        )


class Quarantine:
    """The bounded local quarantine file and the counters that go into the state file."""

    def __init__(self, state_dir: Path, *, max_bytes: int, stats: QuarantineStats | None = None,
                 clock: Any = time.time) -> None:
        self.path = state_dir / "quarantine.jsonl"
        self.max_bytes = max_bytes
        self.stats = stats if stats is not None else QuarantineStats()
        self.stats.file = str(self.path)
        self._clock = clock

    def add(self, *, source: str, position: str, raw: str, reason: str) -> None:
        """Set one record aside (never raises: a full disk must not stop the collector)."""
        now = self._clock()
        source, reason = clean_text(source), clean_text(reason)[:1000]
        entry = {
            "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "source": source, "position": clean_text(position), "reason": reason,
            "raw": clean_text(raw[:RAW_KEPT]), "raw_truncated": len(raw) > RAW_KEPT,
        }
        data = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        self.stats.count += 1
        self.stats.last_at = now
        self.stats.last_source = source
        self.stats.last_reason = reason
        log.error("quarantined a record of %s at %s: %s (kept in %s)", source, position, reason, self.path)
        try:
            with contextlib.suppress(FileNotFoundError):
                if self.path.stat().st_size + len(data) > self.max_bytes:
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                write_all_and_sync(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("%s: cannot write the quarantined record: %s", self.path, exc.strerror)


def _counts(raw: Any) -> dict[str, int]:
    """A ``{source key: positive count}`` map from any JSON value (others dropped)."""
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and type(v) is int and v > 0}


@dataclass(slots=True)
class Flying:
    """One batch in flight: its source, first row key, number of records, and how often the process died
    while it was in flight."""

    key: str
    first: str
    count: int
    attempts: int = 0

    @classmethod
    def from_json(cls, raw: Any) -> Flying | None:
        if not isinstance(raw, dict):
            return None
        key, first, count, attempts = (raw.get(k) for k in ("key", "first", "count", "attempts"))
        if not (isinstance(key, str) and isinstance(first, str) and type(count) is int and type(attempts) is int
                and count >= 0 and attempts >= 0):
            return None
        return cls(key, first, count, attempts)


@dataclass(slots=True)
class Note:
    """What ``inflight.json`` holds: every batch in flight, and the crash bookkeeping that outlives them."""

    batches: list[Flying] = field(default_factory=list)
    careful: dict[str, int] = field(default_factory=dict)
    """Every source still read one record at a time, and for how many more records."""
    serial: dict[str, int] = field(default_factory=dict)
    """Every source whose batches in flight at an unexpected exit are not yet committed past, and how many
    records that still is: until then only one batch is in flight at a time."""

    @classmethod
    def from_json(cls, raw: Any) -> Note | None:
        """A note, also one written by a collector that kept a single batch in flight (``key``, ``first``,
        ``count``, ``attempts`` at the top level); None for anything else."""
        if not isinstance(raw, dict) or not isinstance(raw.get("careful"), dict):
            return None
        if "batches" in raw:
            items = raw["batches"] if isinstance(raw["batches"], list) else None
            batches = [Flying.from_json(b) for b in items] if items is not None else [None]
        else:
            batches = [Flying.from_json(raw)]
        if any(b is None for b in batches):
            return None
        return cls([b for b in batches if b is not None], _counts(raw["careful"]), _counts(raw.get("serial")))


@dataclass(slots=True)
class Inflight:
    """Notes which batches are in flight, so that a record that kills the process is found and skipped."""

    state_dir: Path
    previous: Note | None = None
    """The note a previous run left behind (it died with those batches in flight), attempts counted."""
    careful: dict[str, int] = field(default_factory=dict)
    """Source key -> records still to read one at a time."""
    serial: dict[str, int] = field(default_factory=dict)
    """Source key -> records still to commit with only one batch in flight (after an unexpected exit)."""

    @property
    def path(self) -> Path:
        return self.state_dir / "inflight.json"

    def load(self) -> None:
        """At start: count the previous run's death, and decide what to do about it."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s); ignoring it", self.path, exc)
            return
        note = Note.from_json(raw)
        if note is None:
            return
        self.previous = note
        self.careful = dict(note.careful)
        self.serial = dict(note.serial)
        noted: dict[str, int] = {}
        for b in note.batches:
            noted[b.key] = noted.get(b.key, 0) + b.count
        for key, count in noted.items():
            self.serial[key] = max(self.serial.get(key, 0), count)
        for b in note.batches:
            b.attempts += 1
            if b.count == 1 and b.attempts >= CRASHES_BEFORE_QUARANTINE:
                log.warning("the collector stopped %d times while writing the record of %s at %s: it will be "
                            "quarantined", b.attempts, b.key, b.first)
                self.careful[b.key] = max(1, self.careful.get(b.key, 0))
            elif b.attempts >= CRASHES_BEFORE_CAREFUL:
                log.warning("the collector stopped %d times with the batch of %s from %s in flight: reading the "
                            "next %d records of that source one at a time", b.attempts, b.key, b.first, b.count)
                self.careful[b.key] = max(b.count, self.careful.get(b.key, 0))
            else:
                log.warning("the previous run stopped with the batch of %s from %s in flight; reading it again",
                            b.key, b.first)
        if note.batches:
            log.warning("one batch in flight at a time until the %d batches in flight at that exit are committed",
                        len(note.batches))
        note.careful, note.serial = dict(self.careful), dict(self.serial)
        self._write(note)

    def limit(self, key: str) -> int | None:
        """1 while ``key`` is read one record at a time, else None (the configured batch size)."""
        return 1 if self.careful.get(key) else None

    def serial_only(self) -> bool:
        """Only one batch may be in flight: a source is read carefully, or the batches in flight at an
        unexpected exit are not all committed past yet (so that the careful-mode logic sees one at a time)."""
        return bool(self.careful or self.serial)

    def _attempts(self, key: str, first: str) -> int:
        p = self.previous
        return max((b.attempts for b in p.batches if b.key == key and b.first == first), default=0) if p else 0

    def is_poison(self, key: str, first: str, count: int) -> bool:
        p = self.previous
        return p is not None and count == 1 and any(
            b.count == 1 and b.key == key and b.first == first and b.attempts >= CRASHES_BEFORE_QUARANTINE
            for b in p.batches)

    def note(self, batches: Sequence[tuple[str, str, int]]) -> None:
        """Before writing: ``batches`` ((source key, first row key, records)) are every batch in flight now."""
        flying = [Flying(key, first, count, self._attempts(key, first)) for key, first, count in batches]
        self._write(Note(flying, dict(self.careful), dict(self.serial)))

    def begin(self, key: str, first: str, count: int) -> None:
        """Before writing the only batch in flight."""
        self.note([(key, first, count)])

    def done(self, key: str, count: int) -> None:
        """After a commit: ``count`` records of ``key`` are behind us."""
        left = self.careful.get(key)
        if left:
            left -= count
            if left > 0:
                self.careful[key] = left
            else:
                del self.careful[key]
                log.info("%s: reading whole batches again", key)
        left = self.serial.get(key)
        if left:
            left -= count
            if left > 0:
                self.serial[key] = left
            else:
                self.forget(key)

    def forget(self, key: str) -> None:
        """``key`` has nothing left of what was in flight at the exit (committed past, or the source is gone)."""
        if self.serial.pop(key, None) is not None and not self.serial:
            log.info("the batches in flight at the previous exit are committed; several batches in flight again")

    def clear(self) -> None:
        """A clean exit: nothing was in flight when the process ended."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _write(self, note: Note) -> None:
        try:
            replace_atomically(self.path, json.dumps(asdict(note)).encode("utf-8"), 0o640, sync=False)
        except OSError as exc:
            log.warning("%s: cannot note the batches in flight: %s", self.path, exc.strerror)
