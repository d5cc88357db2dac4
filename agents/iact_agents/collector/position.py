"""Where each source stands: file identities, row keys, and the atomic offset store.

A file is identified by ``(device, inode, fingerprint, generation)``. The fingerprint is the sha256 of the
file's first line, or of its first ``fingerprint_bytes`` bytes when the first line is longer; it is fixed
as soon as the file has one complete line, so it never changes while the file grows, and a file that is
truncated and refilled, or replaced by one that reuses the inode, gets a different identity. The
generation only counts truncations that left the first line identical.

The row key of a file line is ``<file_id>:<offset of the line start, 16 digits>``; of a journal entry, its
cursor. Both are derived from the position only, so a replay after a crash rewrites the same rows.

Offsets are committed by :class:`OffsetStore` with tmp file + fsync + rename + fsync of the directory
(:func:`iact_agents.fsutil.replace_atomically`), and the daemon commits only after Cassandra acknowledged
every row of the batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import AgentError
from ..fsutil import replace_atomically

log = logging.getLogger(__name__)

STATE_VERSION = 1


class StateError(AgentError):
    """The state directory cannot be read or written."""

    exit_code = 1


def fingerprint(fd: int, nbytes: int) -> str | None:
    """sha256 of the first line (up to ``nbytes``) of an open file, or None while there is no full line."""
    head = os.pread(fd, nbytes, 0)
    newline = head.find(b"\n")
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < nbytes:
        return None
    return hashlib.sha256(head).hexdigest()


@dataclass(frozen=True, slots=True)
class FileIdentity:
    dev: int
    ino: int
    fp: str
    gen: int = 0

    @property
    def file_id(self) -> str:
        """Stable short id of this content stream: the first half of the row key of its lines."""
        text = f"{self.dev}:{self.ino}:{self.fp}:{self.gen}"
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def file_position(file_id: str, offset: int) -> str:
    """Row key of the line starting at ``offset`` (zero-padded so that text order is offset order)."""
    return file_positions(file_id, offset, (0,))[0]


def file_positions(file_id: str, base: int, starts: Iterable[int]) -> list[str]:
    """Row keys of the lines starting at ``base + start``, for each of ``starts``: ``<file_id>:<offset, 16
    digits>``. (``str.zfill`` pads as the format ``016d`` does, sign first, at about half its cost per line.)"""
    prefix = file_id + ":"
    return [prefix + str(base + start).zfill(16) for start in starts]


@dataclass(frozen=True, slots=True)
class FileState:
    """Committed position in one file source: the identity of the file being read and the next offset."""

    path: str
    dev: int
    ino: int
    fp: str
    gen: int
    offset: int
    last_ts_us: int
    """Timestamp (µs since the epoch) of the last line that parsed: the timestamp of unparseable lines."""
    seen: tuple[str, ...] | None = None
    """Short fingerprints of the files of this source already read to their end (or present when the
    source was first seen), newest last and bounded: a rotated copy with one of them is never read again.
    None in a state written before this field existed."""

    @property
    def identity(self) -> FileIdentity:
        return FileIdentity(self.dev, self.ino, self.fp, self.gen)


@dataclass(frozen=True, slots=True)
class JournalState:
    cursor: str | None
    last_ts_us: int


SourceState = FileState | JournalState


def _encode(state: SourceState) -> dict[str, Any]:
    kind = "file" if isinstance(state, FileState) else "journal"
    return {"kind": kind, **asdict(state)}


def _decode(raw: Any) -> SourceState | None:
    if not isinstance(raw, dict):
        return None
    data = dict(raw)
    kind = data.pop("kind", None)
    try:
        if kind == "file":
            seen = data.get("seen")
            data["seen"] = tuple(str(x) for x in seen) if isinstance(seen, list) else None
            return FileState(**data)
        if kind == "journal":
            return JournalState(**data)
    except TypeError:
        return None
    return None


class OffsetStore:
    """All committed positions of one collector, in one JSON file written atomically."""

    def __init__(self, state_dir: Path, name: str = "positions.json") -> None:
        self.dir = state_dir
        self.path = state_dir / name
        self._states: dict[str, SourceState] = {}
        self.quarantine: dict[str, Any] | None = None
        """The ``quarantine`` key of the state file (collector/quarantine.py), written with every commit."""
        self._written_quarantine: dict[str, Any] | None = None
        self.commits = 0

    def load(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._states = {}
            return
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state: {exc.strerror}") from None
        try:
            doc = json.loads(text)
        except ValueError:
            raise StateError(f"{self.path}: state file is not valid JSON; move it away to start over") from None
        sources = doc.get("sources", {}) if isinstance(doc, dict) else {}
        quarantine = doc.get("quarantine") if isinstance(doc, dict) else None
        self.quarantine = self._written_quarantine = quarantine if isinstance(quarantine, dict) else None
        states: dict[str, SourceState] = {}
        for key, raw in sources.items():
            state = _decode(raw)
            if state is None:
                log.warning("%s: ignoring unreadable state of %s", self.path, key)
            else:
                states[str(key)] = state
        self._states = states

    def get(self, key: str) -> SourceState | None:
        return self._states.get(key)

    def snapshot(self) -> dict[str, SourceState]:
        return dict(self._states)

    def commit(self, key: str, state: SourceState) -> None:
        """Record ``state`` for ``key`` (and the quarantine counters) durably: when this returns, a crash
        cannot lose it."""
        self.commit_many({key: state})

    def commit_many(self, states: dict[str, SourceState]) -> None:
        """Record several sources' states (and the quarantine counters) in one durable write."""
        if all(self._states.get(k) == v for k, v in states.items()) and self.quarantine == self._written_quarantine:
            return
        new = dict(self._states)
        new.update(states)
        quarantine = None if self.quarantine is None else dict(self.quarantine)
        self._write(new, quarantine)
        self._states = new
        self._written_quarantine = quarantine

    def _write(self, states: dict[str, SourceState], quarantine: dict[str, Any] | None) -> None:
        doc: dict[str, Any] = {"version": STATE_VERSION,
                               "sources": {k: _encode(v) for k, v in sorted(states.items())}}
        if quarantine is not None:
            doc["quarantine"] = quarantine
        data = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
        try:
            replace_atomically(self.path, data, 0o640)  # the health agent reads it through the collector's group
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write the state: {exc.strerror}") from None
        self.commits += 1
