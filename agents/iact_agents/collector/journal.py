"""The journal reader: ``journalctl -o json --all --follow`` with ``--after-cursor`` of the last acknowledged
entry; the pipe is read without blocking; if journalctl exits it is restarted from the last handed-out
cursor. The committed position is the cursor (:class:`~.position.JournalState`), and a batch is handed out
as the file reader's are (:mod:`.source`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import time
from collections.abc import Sequence
from typing import Literal

from .position import JournalState
from .records import Record, guarded, parse_journal_entry
from .source import Batch, Clock, from_us, ts_us

log = logging.getLogger(__name__)

_journal_entry = guarded(parse_journal_entry)


class JournalReader:
    """Follows the systemd journal with ``journalctl -o json``; the committed position is a cursor."""

    def __init__(
        self,
        *,
        source: str,
        state: JournalState | None,
        journalctl: str = "journalctl",
        extra_args: Sequence[str] = (),
        start: Literal["head", "tail"] = "head",
        batch_lines: int = 500,
        batch_bytes: int = 1 << 20,
        max_line_bytes: int = 64 << 10,
        restart_delay_s: float = 2.0,
        follow: bool = True,
        clock: Clock = time.monotonic,
    ) -> None:
        self.key = f"journal:{source}"
        self.follow = follow
        self._finished = False
        self.source = source
        self.journalctl = journalctl
        self.extra_args = list(extra_args)
        self.start = start
        self.batch_lines = batch_lines
        self.batch_bytes = max(batch_bytes, max_line_bytes)
        self.max_line_bytes = max_line_bytes
        self.restart_delay_s = restart_delay_s
        self._clock = clock
        self._cursor = state.cursor if state else None  # last entry handed out
        self._last_ts_us = state.last_ts_us if state else 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._buf = bytearray()
        self._skip_to_newline = False
        self._next_spawn = 0.0
        self._stderr_tail = b""

    def command(self) -> list[str]:
        cmd = [self.journalctl, "-o", "json", "--all", "--no-pager", *self.extra_args]
        if self.follow:
            cmd.append("--follow")
        if self._cursor:
            cmd += [f"--after-cursor={self._cursor}", "--no-tail"]
        elif self.start == "head" or not self.follow:
            cmd += ["--no-tail"]
        else:
            cmd += ["--lines=0"]
        return cmd

    def _spawn(self) -> bool:
        if self._clock() < self._next_spawn:
            return False
        self._buf.clear()
        self._skip_to_newline = False
        self._stderr_tail = b""
        try:
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            log.warning("journal: cannot start %s: %s", self.journalctl, exc.strerror)
            self._next_spawn = self._clock() + self.restart_delay_s
            return False
        assert self._proc.stdout is not None and self._proc.stderr is not None
        os.set_blocking(self._proc.stdout.fileno(), False)
        os.set_blocking(self._proc.stderr.fileno(), False)
        log.info("journal: following from %s", self._cursor or self.start)
        return True

    def _fill(self) -> bool:
        """Read what the pipe has, up to the batch size. False when journalctl has exited."""
        assert self._proc is not None and self._proc.stdout is not None
        self._drain_stderr()
        fd = self._proc.stdout.fileno()
        while len(self._buf) < self.batch_bytes:
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                return True
            try:
                chunk = os.read(fd, self.batch_bytes - len(self._buf))
            except BlockingIOError:
                return True
            if not chunk:
                return False
            self._buf += chunk
        return True

    def _drain_stderr(self) -> None:
        """Keep journalctl's stderr pipe empty (it would block journalctl once full); keep its tail."""
        assert self._proc is not None
        if self._proc.stderr is None:
            return
        with contextlib.suppress(OSError, TypeError):
            while chunk := os.read(self._proc.stderr.fileno(), 65536):
                self._stderr_tail = (self._stderr_tail + chunk)[-4096:]

    def _reap(self) -> None:
        assert self._proc is not None
        self._drain_stderr()
        err = self._stderr_tail
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        detail = err.decode("utf-8", "replace").strip().splitlines()
        log.warning("journal: journalctl exited with %s%s; restarting in %.0fs", code,
                    f" ({detail[-1]})" if detail else "", self.restart_delay_s)
        if self._cursor and any("seek to cursor" in d for d in detail):
            # A malformed cursor (a cursor that merely no longer exists is sought to the nearest entry).
            log.warning("journal: saved cursor %r is not usable; starting from the %s instead (entries "
                        "shipped before are rewritten with the same row keys)", self._cursor, self.start)
            self._cursor = None
        self.close()
        self._next_spawn = self._clock() + self.restart_delay_s

    def read_batch(self, limit: int | None = None) -> Batch | None:
        if self._finished or (self._proc is None and not self._spawn()):
            return None
        alive = self._fill()
        records: list[Record] = []
        fallback = from_us(self._last_ts_us)
        consumed = 0
        buf = self._buf
        max_lines = self.batch_lines if limit is None else min(limit, self.batch_lines)
        while len(records) < max_lines:
            nl = buf.find(b"\n", consumed)
            if nl < 0:
                if len(buf) - consumed >= self.batch_bytes:  # one entry larger than a batch: keep its head
                    line = bytes(buf[consumed : consumed + self.max_line_bytes]).decode("utf-8", "replace")
                    records.append(_journal_entry(line, source=self.source, fallback_ts=fallback))
                    consumed = len(buf)
                    self._skip_to_newline = True
                break
            chunk = bytes(buf[consumed:nl])
            consumed = nl + 1
            if self._skip_to_newline:
                self._skip_to_newline = False
                continue
            if not chunk.strip():
                continue
            rec = _journal_entry(chunk.decode("utf-8", "replace"), source=self.source, fallback_ts=fallback)
            if not rec.parse_error:
                fallback = rec.ts
                self._cursor = rec.position
            records.append(rec)
        del buf[:consumed]
        self._last_ts_us = ts_us(fallback)
        if not alive and not records:
            if not self.follow and self._proc is not None and self._proc.wait() == 0:
                self._finished = True  # read to the end of the journal (--once)
                self.close()
                return None
            self._reap()
            return None
        if not records:
            return None
        return Batch(self.key, records, JournalState(self._cursor, self._last_ts_us), consumed)

    def ack(self, batch: Batch) -> None:
        pass

    def busy(self) -> bool:
        """Without --follow (``--once``): busy until journalctl reached the end of the journal."""
        return not self.follow and not self._finished

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
