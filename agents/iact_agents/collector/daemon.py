"""The collector loop: read batches, write several at once, commit each source's positions in order.

The main thread reads and parses; a small pool of writer threads delivers whole batches (the sink retries
each until Cassandra acknowledges it), so the cluster is not idle while the collector reads, and one source's
backlog does not hold the others back. Per source the batches read form a queue: a batch's state is committed
to the offset store only when it and every batch of that source before it are acknowledged, so offsets still
move strictly in order and only past acknowledged rows; the heads completed at the same time are committed in
one durable write.

What is in flight is bounded in rows, not in batches: the records of every batch read and not yet committed
(an acknowledged batch waiting for an older one of its source included) stay at most ``rows_in_flight``, all
sources together; a reader is asked for at most the rows still free, so a batch may be shorter than
``batch_lines`` but the bound is never exceeded. ``batches_in_flight`` bounds the batches (the writer threads),
and with it the raw bytes held (``batch_bytes`` each). Memory is what those rows cost, whatever the batch size,
so smaller batches put more requests in flight for the same memory.

Signal handlers only set a flag; the loop then reads nothing more, and the writes still retrying keep trying
until the drain deadline (``drain_timeout_s`` after the signal), then give up: a batch that was not
acknowledged is not committed, nor is any later batch of its source, so they are read again at the next start.

No record may stop the loop (collector/quarantine.py): records the parsers or the sink had to set aside are
quarantined and committed past; an unexpected exception while writing a batch makes its writer write that
batch's records one at a time and quarantine the one that fails (unless the sink had already taken the records
over, see sink.py: then that batch fails, uncommitted, and is read again at the next start). Every batch in
flight is noted; after a process death the loop keeps a single batch in flight until the noted batches are
committed past, so a batch that kills the process twice is found, and read one record at a time, exactly as
with one batch in flight (careful mode is always serial).
"""

from __future__ import annotations

import glob
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from ..errors import AgentError
from .config import CollectorConfig
from .journal import JournalReader
from .position import FileState, JournalState, OffsetStore, SourceState
from .quarantine import CRASHES_BEFORE_QUARANTINE, Inflight, Quarantine, QuarantineStats
from .records import Record
from .rows import Line
from .sink import DeliveryAborted, Refused
from .source import Batch, Source
from .tailer import FileTailer, TailParams

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, records: list[Record]) -> list[Refused]: ...

    def write_plain(self, records: Sequence[Record], reason: str) -> None: ...

    def close(self) -> None: ...


def sd_notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``, ``STATUS=...``) to systemd, if it is listening."""
    addr = (os.environ if environ is None else environ).get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(state.encode())
    except OSError as exc:
        log.debug("sd_notify %s failed: %s", state, exc)
        return False
    return True


class StopFlag:
    """Set by signal handlers (and nothing else happens in a handler)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.requested_at: float | None = None
        self.signal: int | None = None
        self._clock = clock

    def __bool__(self) -> bool:
        return self.requested_at is not None

    def set(self, signum: int | None = None) -> None:
        if self.requested_at is None:
            self.requested_at = self._clock()
            self.signal = signum

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.set(signum)

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handler)
        signal.signal(signal.SIGINT, self.handler)


@dataclass(slots=True, eq=False)
class _Flight:
    """A batch read and not yet committed: being written (``future``), or with nothing to write.

    It does not keep the batch's records: they go to the writer, and the sink keeps only their encoded rows
    (sink.py), so that a row in flight does not cost its parsed record too. What committing needs of them
    is kept here: how many, the first position, and the few a parser had to quarantine."""

    source: Source
    batch: Batch
    """The batch with its state; its ``records`` list is handed to the writer."""
    rows: int
    first: str
    """Position of the first record (how the in-flight note names the batch)."""
    quarantined: list[Record]
    future: Future[list[Refused]] | None = None

    def done(self) -> bool:
        return self.future is None or self.future.done()


class Collector:
    def __init__(
        self,
        cfg: CollectorConfig,
        sink: Sink,
        *,
        store: OffsetStore | None = None,
        stop: StopFlag | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        self.store = store if store is not None else OffsetStore(cfg.state_dir)
        self.stop = stop if stop is not None else StopFlag(clock)  # (a StopFlag is falsy until set)
        self._clock = clock
        self.params = TailParams(
            batch_lines=cfg.batch_lines, batch_bytes=cfg.batch_bytes, max_line_bytes=cfg.max_line_bytes,
            fingerprint_bytes=cfg.fingerprint_bytes, rotate_wait_s=cfg.rotate_wait_s, start_at=cfg.start_at,
            zone=cfg.zone, spool_dir=cfg.state_dir,
        )
        self.sources: dict[str, Source] = {}
        self._globbed: set[str] = set()
        self.inflight = Inflight(cfg.state_dir)
        self.quarantine = Quarantine(cfg.state_dir, max_bytes=cfg.quarantine_max_bytes)
        self.rows = 0
        self.batches = 0
        self._once = False
        self._queues: dict[str, deque[_Flight]] = {}
        """Per source key, its batches not yet committed, oldest first."""
        self._writing: list[_Flight] = []
        """Every batch being written (or written and waiting for an older batch of its source)."""
        self._pool: ThreadPoolExecutor | None = None
        self._turn = 0
        self._orphans: list[_Flight] = []
        """Batches still being written after an older batch of their source failed: waited for, never committed."""
        self._aborted: DeliveryAborted | None = None
        self._failure: BaseException | None = None

    def drain_deadline(self) -> float | None:
        at = self.stop.requested_at
        return None if at is None else at + self.cfg.drain_timeout_s

    # --- sources -------------------------------------------------------------------------------------

    def _add_file(self, path: str, fmt: str, *, globbed: bool) -> None:
        key = f"file:{path}"
        if key in self.sources:
            return
        state = self.store.get(key)
        tailer = FileTailer(path, fmt,  # type: ignore[arg-type]
                            state=state if isinstance(state, FileState) else None, params=self.params,
                            clock=self._clock)
        self.sources[key] = tailer
        if globbed:
            self._globbed.add(key)
        log.info("following %s (%s)%s", path, fmt, " from its saved position" if state else "")

    def scan(self) -> None:
        """Create readers for configured paths and for new files matching the globs."""
        for spec in self.cfg.files:
            for pattern in spec.paths:
                if glob.has_magic(pattern):
                    for path in sorted(glob.glob(pattern)):
                        if os.path.isfile(path):
                            self._add_file(path, spec.format, globbed=True)
                else:
                    self._add_file(pattern, spec.format, globbed=False)
        # A globbed file that is gone and fully read (and committed) needs no reader any more.
        for key in list(self._globbed):
            src = self.sources[key]
            if isinstance(src, FileTailer) and not self._queues.get(key) and src.finished_and_gone():
                src.close()
                del self.sources[key]
                self._globbed.discard(key)
                self.inflight.forget(key)
        j = self.cfg.journal
        if j.enabled and f"journal:{j.source}" not in self.sources:
            state = self.store.get(f"journal:{j.source}")
            self.sources[f"journal:{j.source}"] = JournalReader(
                source=j.source, state=state if isinstance(state, JournalState) else None,
                journalctl=j.journalctl, extra_args=j.extra_args, start=j.start, batch_lines=self.cfg.batch_lines,
                batch_bytes=self.cfg.batch_bytes, max_line_bytes=self.cfg.max_line_bytes, follow=not self._once,
                clock=self._clock,
            )

    # --- loop ------------------------------------------------------------------------------------------

    def rows_in_flight(self) -> int:
        """Records read and not yet committed (being written, or acknowledged and waiting for an older batch of
        their source); batches still written after their source failed count too, until they return."""
        return sum(f.rows for f in self._writing) + sum(f.rows for f in self._orphans)

    def _room(self) -> int:
        """How many records may be read now (0: none). Read batches wait in memory until committed: this bounds
        them, in batches and in rows."""
        depth = 1 if self.inflight.serial_only() else self.cfg.batches_in_flight
        if len(self._writing) + len(self._orphans) >= depth:
            return 0
        return max(0, self.cfg.rows_in_flight - self.rows_in_flight())

    def step(self) -> bool:
        """One pass over the sources (each may hand out one batch, while there is room); True if anything
        moved: a batch read, or one committed."""
        moved = self._commit_done()
        sources = list(self.sources.values())
        for i in range(len(sources)):
            room = self._room()
            if self.stop or self._failure is not None or room <= 0:
                break
            src = sources[(self._turn + i) % len(sources)]
            careful = self.inflight.limit(src.key)
            batch = src.read_batch(room if careful is None else min(careful, room))
            if batch is None:
                continue
            moved = True
            self._submit(src, batch)
        self._turn += 1
        return self._commit_done() or moved

    def _submit(self, src: Source, batch: Batch) -> None:
        records, batch.records = batch.records, []
        flight = _Flight(src, batch, len(records), records[0].position if records else "",
                         [rec for rec in records if rec.quarantine is not None])
        self._queues.setdefault(batch.key, deque()).append(flight)
        if not records:  # a state-only batch: committed in its turn, nothing to write
            return
        self._writing.append(flight)
        self.inflight.note([(f.batch.key, f.first, f.rows) for f in self._writing])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.cfg.batches_in_flight, thread_name_prefix="write")
        flight.future = self._pool.submit(self._write, batch.key, records)

    def _write(self, key: str, records: list[Record]) -> list[Refused]:
        """Write one batch (in a writer thread); whatever cannot be written as it is comes back as refused, to
        be quarantined, never in a loop. The sink takes the records over (it empties ``records`` as it
        encodes them)."""
        count = len(records)
        if self.inflight.is_poison(key, records[0].position, count):
            reason = f"the collector stopped {CRASHES_BEFORE_QUARANTINE} times while writing this record"
            self.sink.write_plain(records, reason)
            return [Refused(rec, reason) for rec in records]
        try:
            return self.sink.write(records)
        except (AgentError, DeliveryAborted):
            raise
        except Exception:  # on purpose: a bug on some record: find it instead of dying on it forever
            if len(records) != count:  # the sink had taken records over: not ours to write one by one
                raise  # (the batch is not committed: read again at the next start)
            log.exception("writing a batch of %s failed unexpectedly; writing its records one at a time", key)
        refused: list[Refused] = []
        for rec in records:
            try:
                refused += self.sink.write([rec])
            except (AgentError, DeliveryAborted):
                raise
            except Exception as exc:  # on purpose: this record is the one
                reason = f"writing it raised {type(exc).__name__}: {exc}"
                self.sink.write_plain([rec], reason)
                refused.append(Refused(rec, reason))
        return refused

    def _commit_done(self) -> bool:
        """Commit, per source, every batch at the head of its queue that is acknowledged (one durable write for
        all of them); True if any was. A batch that failed stops its source's commits (it and the batches
        after it are read again at the next start)."""
        states: dict[str, SourceState] = {}
        done: list[_Flight] = []
        for key, queue in self._queues.items():
            while queue and queue[0].done():
                flight = queue.popleft()
                if flight.future is not None:
                    self._writing.remove(flight)
                    exc = flight.future.exception()
                    if exc is not None:
                        self._fail(key, queue, exc)
                        break
                    for rec in flight.quarantined:  # a parser raised on it: it went out as a parse_error row
                        self._quarantine(key, rec, rec.quarantine or "")
                    for r in flight.future.result():
                        self._quarantine(key, r.record, r.reason)
                states[key] = flight.batch.state
                done.append(flight)
        if not done:
            return False
        self.store.quarantine = self.quarantine.stats.as_json() if self.quarantine.stats.count else None
        self.store.commit_many(states)
        for flight in done:
            flight.source.ack(flight.batch)
            self.inflight.done(flight.batch.key, flight.rows)
            self.rows += flight.rows
            self.batches += 1
        return True

    def _fail(self, key: str, queue: deque[_Flight], exc: BaseException) -> None:
        """A batch of ``key`` was not delivered: nothing more of that source is committed in this run."""
        for later in queue:
            if later in self._writing:
                self._writing.remove(later)
                self._orphans.append(later)
        queue.clear()
        if isinstance(exc, DeliveryAborted):
            self._aborted = self._aborted or exc
            return
        self._failure = self._failure or exc
        self.stop.set()  # the other writers stop retrying at the drain deadline

    def _quarantine(self, key: str, rec: Line, reason: str) -> None:
        self.quarantine.add(source=key, position=rec.position, raw=rec.raw, reason=reason)

    def _unfinished(self) -> list[Future[list[Refused]]]:
        """The writes still running: what the loop may wait for. (Not a batch already acknowledged that waits
        for an older one of its source: waiting for it would return at once, and the loop would spin.)"""
        return [f.future for f in self._writing if f.future is not None and not f.future.done()]

    def _wait_for_writes(self, timeout: float) -> None:
        futures = self._unfinished()
        if futures:
            wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)

    def _sleep(self, seconds: float) -> None:
        end = self._clock() + seconds
        while not self.stop and (left := end - self._clock()) > 0:
            time.sleep(min(left, 0.05))

    def _idle(self) -> bool:
        return not self._writing and not any(self._queues.values())

    def _drain(self) -> None:
        """Stopping: read nothing more; commit what the writers still get acknowledged (they retry until the
        drain deadline), in order, until no write is left."""
        while self._writing:
            self._wait_for_writes(0.2)
            self._commit_done()
        self._commit_done()  # state-only batches behind the last writes
        for flight in self._orphans:
            if flight.future is not None:
                wait([flight.future])
        self._orphans.clear()

    def _loop(self, once: bool) -> None:
        next_scan = self._clock() + self.cfg.rescan_interval_s
        next_report = self._clock() + 60.0
        while not self.stop:
            moved = self.step()
            now = self._clock()
            if now >= next_scan:
                self.scan()
                next_scan = now + self.cfg.rescan_interval_s
            if now >= next_report:
                log.info("shipped %d rows in %d batches", self.rows, self.batches)
                next_report = now + 60.0
            if moved:
                continue
            if self._writing:
                self._wait_for_writes(self.cfg.poll_interval_s)
            elif once and self._idle() and not any(src.busy() for src in self.sources.values()):
                break
            else:
                self._sleep(self.cfg.poll_interval_s)

    def run(self, *, once: bool = False) -> int:
        """Run until stopped (or, with ``once``, until no source has anything left). Returns an exit code."""
        self._once = once
        self.store.load()
        self.quarantine.stats = QuarantineStats.from_json(self.store.quarantine)
        self.quarantine.stats.file = str(self.quarantine.path)
        self.inflight.load()
        self.scan()
        sd_notify(f"READY=1\nSTATUS=following {len(self.sources)} sources")
        log.info("collector started: %d sources, host %s, up to %d rows in %d batches in flight", len(self.sources),
                 self.cfg.host, self.cfg.rows_in_flight, self.cfg.batches_in_flight)
        try:
            self._loop(once)
            self._drain()
            if self._failure is not None:
                raise self._failure
            if self.stop:
                log.info("stopping on signal %s", self.stop.signal)
            if self._aborted is not None:
                log.warning("%s", self._aborted)
            self.inflight.clear()
        except AgentError:
            self.inflight.clear()  # a known failure (configuration, schema), not a record: nothing to suspect
            raise
        finally:
            if self._writing or self._orphans:  # an unexpected error in this thread: let the writers give up
                self.stop.set()
                self._drain()
            sd_notify("STOPPING=1")
            for src in self.sources.values():
                src.close()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self.sink.close()
        log.info("collector stopped: shipped %d rows in %d batches", self.rows, self.batches)
        return 0
