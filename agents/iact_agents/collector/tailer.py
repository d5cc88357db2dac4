"""The file reader: files followed across rotation and truncation. It hands out one batch at a time and
never reads ahead of the batch in flight (:mod:`.source`); the journal reader is :mod:`.journal`.

Files
    * only complete lines are read; a partial last line waits for its newline (a line longer than
      ``max_line_bytes`` is cut there, and the rest is the next record);
    * rename rotation (``syslog`` -> ``syslog.1`` + new ``syslog``): the old inode is read to its end, and
      after ``rotate_wait_s`` without growth (its last partial line then counts as a line) the new file
      is read from offset 0;
    * copytruncate and truncation (same inode, smaller than our offset, or a different first line): if a
      rotated sibling (``<name>.1``, ``<name>-20261127``) has our fingerprint and more bytes than we read,
      the rest is read from that copy under the old identity; then the new content from offset 0 under a
      new identity (generation + 1);
    * at start, a committed identity that is no longer at the path is looked for among the siblings in
      the same way;
    * compressed siblings (``.gz``, ``.xz``, ``.bz2``) count too: a copy found only compressed is
      decompressed into an unlinked file in ``spool_dir`` and read from the saved offset under the old
      identity (same row keys);
    * files rotated away before they were ever opened (two rotations during a long outage, or while the
      collector was stopped) are read before the file at the path: when a file is finished, every sibling,
      compressed or not, that is at least as recent and whose fingerprint is not among the ``seen`` ones
      (files of this source already read to their end, and those present when the source was first seen)
      is read, oldest first, under the identity of the sibling file itself.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import hashlib
import io
import logging
import lzma
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from itertools import accumulate, count
from operator import add
from pathlib import Path
from typing import AnyStr, Literal

from .journal import JournalReader
from .position import FileIdentity, FileState, file_positions, fingerprint
from .records import LineParser, Record, json_line_parser, quarantined, raw_line_parser, syslog_parser
from .source import Batch, Clock, Source, from_us, now_us, ts_us

__all__ = ["COMPRESSED_SUFFIXES", "PARSER_NAMES", "Batch", "FileFormat", "FileTailer", "JournalReader", "LineParser",
           "Source", "TailParams", "make_line_parser", "split_lines"]
"""Batch, Source and JournalReader lived here before source.py and journal.py: importing them from here works."""

log = logging.getLogger(__name__)

FileFormat = Literal["syslog", "json", "raw"]
COMPRESSED_SUFFIXES = (".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z")
_OPENERS: dict[str, Callable[[Path], io.BufferedIOBase]] = {
    ".gz": gzip.GzipFile, ".xz": lzma.LZMAFile, ".bz2": bz2.BZ2File,
}
"""Compressed siblings the collector can read (the standard library's codecs)."""
_DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, ValueError)
SEEN_KEPT = 32
"""Fingerprints of finished files remembered per source (more than any rotate count in use)."""


@dataclass(frozen=True, slots=True)
class TailParams:
    batch_lines: int = 500
    batch_bytes: int = 1 << 20
    max_line_bytes: int = 64 << 10
    fingerprint_bytes: int = 1024
    rotate_wait_s: float = 2.0
    start_at: Literal["beginning", "end"] = "beginning"
    zone: tzinfo = field(default=UTC)
    spool_dir: Path | None = None
    """Where compressed copies are decompressed (unlinked files); None: the system's temporary folder."""


PARSER_NAMES: dict[str, str] = {"syslog": "parse_syslog", "json": "parse_json_line", "raw": "parse_raw_line"}
"""The parser of each format, as a quarantined record names it."""


def make_line_parser(fmt: FileFormat, source: str, zone: tzinfo, now: datetime) -> LineParser:
    """The parser of one file format for the lines of one batch (read at ``now``). It is not guarded: the file
    reader guards each call inline, as :func:`~.records.guarded` does (one call per line, not two)."""
    if fmt == "syslog":
        return syslog_parser(source, now, zone)
    if fmt == "json":
        return json_line_parser(source)
    return raw_line_parser(source)


def _siblings(path: Path, *, compressed: bool = False) -> list[Path]:
    """Rotated copies next to ``path``: ``name.1``, ``name.0``, ``name-20261127`` ... (uncompressed first,
    then, with ``compressed``, those the collector can decompress: ``name.2.gz`` ...)."""
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    rotated = sorted(
        p for p in entries
        if p.name != path.name and (p.name.startswith(path.name + ".") or p.name.startswith(path.name + "-"))
    )
    plain = [p for p in rotated if not p.name.endswith(COMPRESSED_SUFFIXES)]
    return plain + [p for p in rotated if compressed and p.suffix in _OPENERS]


def _short(fp: str) -> str:
    return fp[:16]


def _compressed_head(path: Path, nbytes: int) -> str | None:
    """The fingerprint of a compressed file's content (as :func:`fingerprint` of the plain file)."""
    try:
        with _OPENERS[path.suffix](path) as fh:
            head = fh.read(nbytes)
    except _DECOMPRESS_ERRORS:
        return None
    newline = head.find(b"\n")
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < nbytes:
        return None
    return hashlib.sha256(head).hexdigest()


def _decompressed(path: Path, spool_dir: Path | None) -> int | None:
    """An fd on an unlinked file holding ``path`` decompressed (what can be read of a damaged archive)."""
    try:
        tmp = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (the fd outlives the file object)
    except OSError as exc:
        log.warning("%s: cannot decompress into %s: %s", path, spool_dir or "the temporary folder", exc.strerror)
        return None
    with tmp:
        try:
            with _OPENERS[path.suffix](path) as src:
                shutil.copyfileobj(src, tmp, 1 << 20)
        except _DECOMPRESS_ERRORS as exc:
            log.warning("%s: damaged or still being written (%s); reading what could be decompressed", path, exc)
        tmp.flush()
        return os.dup(tmp.fileno())


_open_warned: set[Path] = set()  # paths whose open failed, warned about once until they open again


def _open_ro(path: Path) -> int | None:
    try:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # a symlink: follow it, as `tail -F` does
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path not in _open_warned:
            _open_warned.add(path)
            log.warning("%s: cannot open: %s (will keep trying)", path, exc.strerror)
        return None
    _open_warned.discard(path)
    return fd


def split_lines(data: AnyStr, max_lines: int, max_line_bytes: int, *,
                flush: bool) -> tuple[list[int], list[AnyStr], int]:
    """The first ``max_lines`` lines of ``data``: their offsets, the lines without their newline and a trailing
    CR, and the offset after the last one. Only complete lines count, but a line longer than ``max_line_bytes``
    is cut there (the rest is the next line) and, with ``flush`` (the end of a file that will not grow), the last
    partial line counts too. ``data`` is bytes, or the text of bytes that are all ASCII (one byte per character,
    so the offsets are the same)."""
    if isinstance(data, str):
        nl, cr = "\n", "\r"
    else:
        nl, cr = b"\n", b"\r"
    starts: list[int] = []
    lines: list[AnyStr] = []
    pos = 0
    complete = data.split(nl, max_lines)
    del complete[-1]  # what follows the last newline taken
    if complete and max(map(len, complete)) <= max_line_bytes:  # nearly always: split in one go
        # offset of line i: the lengths before it, plus one newline each (in C: no Python code per line)
        starts = list(map(add, accumulate(map(len, complete), initial=0), count()))
        pos = starts.pop()
        lines = [line[:-1] if line.endswith(cr) else line for line in complete] if cr in data else complete
    n = len(data)
    while pos < n and len(lines) < max_lines:  # over-long lines, the last partial line
        nl_at = data.find(nl, pos, pos + max_line_bytes + 1)
        if nl_at >= 0:
            line_end, nxt = nl_at, nl_at + 1
        elif n - pos >= max_line_bytes:  # an over-long line: cut it
            line_end = nxt = pos + max_line_bytes
        elif flush:  # the last line of a rotated file, never finished
            line_end = nxt = n
        else:
            break
        line = data[pos:line_end]
        starts.append(pos)
        lines.append(line[:-1] if line.endswith(cr) else line)
        pos = nxt
    return starts, lines, pos


class FileTailer:
    """Follows one file path; see the module docstring for rotation and truncation."""

    def __init__(
        self,
        path: str,
        fmt: FileFormat,
        *,
        state: FileState | None,
        params: TailParams,
        clock: Clock = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``clock``: seconds for the rotation wait; ``wall_clock``: the time of reading, from which the year of
        traditional syslog timestamps is inferred (both given by tests)."""
        self.path = Path(path)
        self.key = f"file:{path}"
        self.params = params
        self._fmt = fmt
        self._source = path
        self._clock = clock
        self._wall_clock = wall_clock
        self._committed: FileState | None = state
        self._fd: int | None = None
        self._ident: FileIdentity | None = None
        self._prev_ident: FileIdentity | None = state.identity if state else None
        self._offset = 0
        self._last_ts_us = state.last_ts_us if state else 0
        self._draining = False
        self._idle_since: float | None = None
        self._must_commit = False
        self._initialized = False
        self._apply_start_at = state is None
        self._seen: list[str] = list(state.seen) if state is not None and state.seen is not None else []
        self._seed_seen = state is None or state.seen is None
        self._copy_mtime: float | None = None
        """mtime of the compressed file the open content was decompressed from (its fd is a spool file)."""
        self._line_bytes = 256.0
        """Average length of the lines of the last batch (sizes the next read)."""

    # --- state -------------------------------------------------------------------------------------

    def _state(self) -> FileState | None:
        if self._ident is None:
            return None
        i = self._ident
        return FileState(str(self.path), i.dev, i.ino, i.fp, i.gen, self._offset, self._last_ts_us, tuple(self._seen))

    def _remember(self, fp: str) -> None:
        short = _short(fp)
        if short in self._seen:
            self._seen.remove(short)
        self._seen.append(short)
        del self._seen[:-SEEN_KEPT]

    def _sibling_fp(self, cand: Path) -> str | None:
        if cand.suffix in _OPENERS and cand.name.endswith(COMPRESSED_SUFFIXES):
            return _compressed_head(cand, self.params.fingerprint_bytes)
        fd = _open_ro(cand)
        if fd is None:
            return None
        try:
            return fingerprint(fd, self.params.fingerprint_bytes)
        finally:
            os.close(fd)

    def _seed(self) -> None:
        """First sight of this source: the rotated files already there are history, not to be read."""
        if self._seed_seen:
            self._seed_seen = False
            for cand in _siblings(self.path, compressed=True):
                fp = self._sibling_fp(cand)
                if fp is not None:
                    self._remember(fp)

    def ack(self, batch: Batch) -> None:
        if isinstance(batch.state, FileState):
            self._committed = batch.state

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def busy(self) -> bool:
        """Still finishing a rotated file (waiting out rotate_wait_s), even if no line came this time."""
        return self._draining

    def finished_and_gone(self) -> bool:
        """No file open (the last one was read to its end) and nothing at the path any more."""
        return self._initialized and self._fd is None and not self.path.exists()

    # --- opening -----------------------------------------------------------------------------------

    def _adopt(self, fd: int, ident: FileIdentity, offset: int, *, draining: bool,
               copy_mtime: float | None = None) -> None:
        self.close()
        self._fd = fd
        self._ident = ident
        self._offset = offset
        self._draining = draining
        self._idle_since = None
        self._copy_mtime = copy_mtime

    def _new_identity(self, fd: int, fp: str) -> FileIdentity:
        st = os.fstat(fd)
        prev = self._prev_ident
        gen = prev.gen + 1 if prev is not None and (prev.dev, prev.ino) == (st.st_dev, st.st_ino) else 0
        return FileIdentity(st.st_dev, st.st_ino, fp, gen)

    def _start_fresh(self) -> bool:
        """Open the file at the path as new content from offset 0 (the identity may have to wait)."""
        self.close()
        self._ident = None
        self._draining = False
        self._copy_mtime = None
        fd = _open_ro(self.path)
        if fd is None:
            return False
        self._fd = fd
        self._offset = 0
        return self._ensure_identity()

    def _ensure_identity(self) -> bool:
        """Give the open file its identity once it has a complete first line."""
        if self._ident is not None:
            return True
        assert self._fd is not None
        fp = fingerprint(self._fd, self.params.fingerprint_bytes)
        if fp is None:
            return False
        self._ident = self._new_identity(self._fd, fp)
        self._prev_ident = self._ident
        self._offset = 0
        self._last_ts_us = now_us()  # timestamp of unparseable lines before the first good one
        if self._apply_start_at and self.params.start_at == "end":
            self._offset = self._last_line_end(self._fd)
        self._apply_start_at = False
        self._must_commit = True
        log.info("%s: reading new file %s from offset %d", self.path, self._ident.file_id, self._offset)
        return True

    @staticmethod
    def _last_line_end(fd: int) -> int:
        size = os.fstat(fd).st_size
        start = max(0, size - (64 << 10))
        tail = os.pread(fd, size - start, start)
        nl = tail.rfind(b"\n")
        return start + nl + 1 if nl >= 0 else 0

    def _find_copy(self, ident: FileIdentity, offset: int, *, same_inode: bool) -> tuple[int, float | None] | None:
        """An open fd on a rotated sibling holding ``ident``'s content beyond ``offset``, if any (decompressed
        into a spool file when only a compressed copy has it; then with the compressed file's mtime)."""
        for cand in _siblings(self.path, compressed=True):
            if cand.name.endswith(COMPRESSED_SUFFIXES):
                try:
                    st = os.stat(cand)
                except OSError:
                    continue
                inode_ok = (st.st_dev, st.st_ino) == (ident.dev, ident.ino)
                if (not inode_ok and same_inode) or _compressed_head(cand, self.params.fingerprint_bytes) != ident.fp:
                    continue
                fd = _decompressed(cand, self.params.spool_dir)
                if fd is None:
                    continue
                if os.fstat(fd).st_size >= offset:
                    log.info("%s: continuing %s in %s (decompressed) at offset %d", self.path, ident.file_id, cand,
                             offset)
                    return fd, st.st_mtime
                os.close(fd)
                continue
            fd = _open_ro(cand)
            if fd is None:
                continue
            st = os.fstat(fd)
            inode_ok = (st.st_dev, st.st_ino) == (ident.dev, ident.ino)
            if (inode_ok or not same_inode) and st.st_size >= offset \
                    and fingerprint(fd, self.params.fingerprint_bytes) == ident.fp:
                log.info("%s: continuing %s in %s at offset %d", self.path, ident.file_id, cand, offset)
                return fd, None
            os.close(fd)
        return None

    def _next_rotated(self, finished_mtime: float) -> bool:
        """After a finished file: adopt the oldest rotated sibling not read yet (see the module docstring)."""
        found: list[tuple[float, bool, str, Path, str]] = []
        for cand in _siblings(self.path, compressed=True):
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if st.st_mtime < finished_mtime - 1.0:  # older than what we finished (1 s: coarse mtimes)
                continue
            fp = self._sibling_fp(cand)
            if fp is None or _short(fp) in self._seen:
                continue
            found.append((st.st_mtime, cand.name.endswith(COMPRESSED_SUFFIXES), str(cand), cand, fp))
        for mtime, compressed, _, cand, fp in sorted(found):
            fd = _decompressed(cand, self.params.spool_dir) if compressed else _open_ro(cand)
            if fd is None:
                continue
            st = os.stat(cand) if compressed else os.fstat(fd)
            ident = FileIdentity(st.st_dev, st.st_ino, fp, 0)
            log.warning("%s: %s was rotated away before it was read; reading it now (%s)", self.path, cand,
                        ident.file_id)
            self._adopt(fd, ident, 0, draining=True, copy_mtime=mtime if compressed else None)
            self._last_ts_us = now_us()
            return True
        return False

    def _open_initial(self) -> bool:
        self._seed()
        s = self._committed
        if s is None:
            return self._start_fresh()
        ident = s.identity
        fd = _open_ro(self.path)
        if fd is not None:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (s.dev, s.ino):
                fp = fingerprint(fd, self.params.fingerprint_bytes)
                if fp == s.fp and st.st_size >= s.offset:
                    self._adopt(fd, ident, s.offset, draining=False)
                    self._last_ts_us = s.last_ts_us
                    return True
            os.close(fd)
        # The committed file is no longer at the path (rotated, truncated or replaced while we were away).
        copy = self._find_copy(ident, s.offset, same_inode=True) or self._find_copy(ident, s.offset, same_inode=False)
        if copy is not None:
            self._adopt(copy[0], ident, s.offset, draining=True, copy_mtime=copy[1])
            self._last_ts_us = s.last_ts_us
            return True
        log.warning("%s: the file read up to offset %d (%s) is gone; lines written to it after that offset "
                    "cannot be read (deleted, or compressed in a format the collector cannot read)", self.path,
                    s.offset, ident.file_id)
        self._remember(ident.fp)
        if self._next_rotated(0.0):
            return True
        return self._start_fresh()

    # --- change detection --------------------------------------------------------------------------

    def _detect_change(self) -> None:
        """While reading the file at the path: notice rename rotation, deletion, truncation, replacement."""
        assert self._fd is not None and self._ident is not None
        st_fd = os.fstat(self._fd)
        try:
            st_path: os.stat_result | None = os.stat(self.path)
        except OSError:
            st_path = None
        if st_path is None or (st_path.st_dev, st_path.st_ino) != (st_fd.st_dev, st_fd.st_ino):
            log.info("%s: rotated (file %s moved away); reading it to the end", self.path, self._ident.file_id)
            self._draining = True
            self._idle_since = None
            return
        fp = fingerprint(self._fd, self.params.fingerprint_bytes)
        if fp == self._ident.fp and st_fd.st_size >= self._offset:
            return
        # Same inode, other content: truncated (copytruncate, `> file`) or rewritten.
        ident, offset = self._ident, self._offset
        log.info("%s: truncated or rewritten (size %d, read up to %d)", self.path, st_fd.st_size, offset)
        copy = self._find_copy(ident, offset, same_inode=False)
        if copy is not None:
            self._adopt(copy[0], ident, offset, draining=True, copy_mtime=copy[1])
            return
        self._prev_ident = ident
        self._ident = None
        self._offset = 0
        self._ensure_identity()

    # --- reading -----------------------------------------------------------------------------------

    def _read_size(self, max_lines: int) -> int:
        """Bytes to read for the next batch: enough for ``max_lines`` lines of the length seen so far (and for
        one line of ``max_line_bytes``, so that an over-long line is always recognised), at most batch_bytes."""
        p = self.params
        want = max(p.max_line_bytes + 1, int(self._line_bytes * max_lines * 1.25) + 4096)
        return min(p.batch_bytes, want)

    def _read_lines(self, *, flush_partial: bool, limit: int | None = None) -> tuple[list[Record], int]:
        assert self._fd is not None and self._ident is not None
        p = self.params
        max_lines = p.batch_lines if limit is None else min(limit, p.batch_lines)
        size = self._read_size(max_lines)
        data = os.pread(self._fd, size, self._offset)
        if not data:
            return [], 0
        flush = flush_partial and len(data) < size
        lines: list[str]
        if data.isascii():  # nearly always: one decode for the whole read, then split as text
            starts, lines, end = split_lines(data.decode("ascii"), max_lines, p.max_line_bytes, flush=flush)
        else:  # decoded line by line: an over-long line may be cut inside a character
            starts, raw_lines, end = split_lines(data, max_lines, p.max_line_bytes, flush=flush)
            lines = [chunk.decode("utf-8", "replace") for chunk in raw_lines]
        del data
        base = self._offset
        positions = file_positions(self._ident.file_id, base, starts)
        source = self._source
        parse = make_line_parser(self._fmt, source, self.params.zone, self._wall_clock())
        records: list[Record] = []
        append = records.append
        fallback = from_us(self._last_ts_us)
        last_good: datetime | None = None
        for position, line in zip(positions, lines, strict=True):
            try:
                rec = parse(line, position, fallback)
            except Exception as exc:  # on purpose: see records.guarded
                rec = quarantined(PARSER_NAMES[self._fmt], line, exc, source=source, position=position,
                                  fallback_ts=fallback)
            if not rec.parse_error:
                last_good = fallback = rec.ts
            append(rec)
        if records and not self._unchanged_since_read(base + end):
            return [], 0
        if records:
            self._offset = base + end
            self._line_bytes = max(1.0, end / len(records))
            if last_good is not None:
                self._last_ts_us = ts_us(last_good)
        return records, end

    def _unchanged_since_read(self, end: int) -> bool:
        """After a read: was the file truncated or rewritten meanwhile? Then what we read may be new content
        at old offsets: drop it, and let the next call see the change (and read the old rest from the copy)."""
        assert self._fd is not None and self._ident is not None
        if os.fstat(self._fd).st_size < end or fingerprint(self._fd, self.params.fingerprint_bytes) != self._ident.fp:
            log.info("%s: changed while being read; reading again", self.path)
            return False
        return True

    def _ready(self) -> bool:
        """Have an open file with an identity (opening, or waiting for a first line, as needed)."""
        if not self._initialized:
            self._initialized = True
            self._open_initial()
        elif self._fd is None:
            self._start_fresh()
        if self._fd is None:
            return False
        if self._ident is None and not self._ensure_identity():
            # Waiting for the first line of a new file; it may also have been replaced meanwhile.
            with contextlib.suppress(OSError):
                st, fst = os.stat(self.path), os.fstat(self._fd)
                if (st.st_dev, st.st_ino) != (fst.st_dev, fst.st_ino):
                    self._start_fresh()
            return False
        return True

    def _take_commit(self) -> bool:
        must, self._must_commit = self._must_commit, False
        return must

    def read_batch(self, limit: int | None = None) -> Batch | None:
        """The next batch of complete lines (at most ``limit``), a state-only batch, or None when there is
        nothing new."""
        if not self._ready():
            return None
        if self._take_commit():
            return self._state_batch()
        if not self._draining:
            self._detect_change()
            if self._ident is None:
                return None
            if self._take_commit():
                return self._state_batch()
        records, nbytes = self._read_lines(flush_partial=False, limit=limit)
        if records:
            self._idle_since = None
            return self._batch(records, nbytes)
        return self._drain_step(limit) if self._draining else None

    def _drain_step(self, limit: int | None = None) -> Batch | None:
        """At the end of a rotated file: after rotate_wait_s without growth, finish it and move on."""
        assert self._ident is not None
        now = self._clock()
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < self.params.rotate_wait_s:
            return None
        records, nbytes = self._read_lines(flush_partial=True, limit=limit)
        if records:
            return self._batch(records, nbytes)
        assert self._fd is not None
        log.info("%s: finished rotated file %s", self.path, self._ident.file_id)
        finished_mtime = self._copy_mtime if self._copy_mtime is not None else os.fstat(self._fd).st_mtime
        self._remember(self._ident.fp)
        self._prev_ident = self._ident
        if not self._next_rotated(finished_mtime):
            self._start_fresh()
        self._must_commit = False
        return self._state_batch()

    def _batch(self, records: list[Record], nbytes: int) -> Batch:
        state = self._state()
        assert state is not None
        return Batch(self.key, records, state, nbytes)

    def _state_batch(self) -> Batch | None:
        """A batch without records that moves the committed state (new file, finished rotated file)."""
        state = self._state()
        if state is None or state == self._committed:
            return None
        return Batch(self.key, [], state, 0)
