"""The collector loop: read one batch per source, deliver it, commit its position, repeat.

Per source there is never more than one batch in flight: a batch is read, written (the sink retries until
Cassandra acknowledges it), and only then its state is committed to the offset store and the next batch
read. Signal handlers only set a flag; the loop notices it between batches, and a write that is still
retrying keeps trying until the drain deadline (``drain_timeout_s`` after the signal), then gives up
without committing, so the batch is read again at the next start.

No record may stop the loop (collector/quarantine.py): records the parsers or the sink had to set aside are
quarantined and committed past; an unexpected exception while writing a batch makes the daemon write that
batch's records one at a time and quarantine the one that fails; a batch in flight while the process died
is noted, and the records of a batch that kills the process twice are read one at a time.
"""

from __future__ import annotations

import glob
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Protocol

from ..errors import AgentError
from .config import CollectorConfig
from .position import FileState, JournalState, OffsetStore
from .quarantine import CRASHES_BEFORE_QUARANTINE, Inflight, Quarantine, QuarantineStats
from .records import Record
from .sink import DeliveryAborted, Refused
from .tailer import Batch, FileTailer, JournalReader, Source, TailParams

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, records: Sequence[Record]) -> list[Refused]: ...

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
        # A globbed file that is gone and fully read needs no reader any more.
        for key in list(self._globbed):
            src = self.sources[key]
            if isinstance(src, FileTailer) and src.finished_and_gone():
                src.close()
                del self.sources[key]
                self._globbed.discard(key)
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

    def step(self) -> bool:
        """One pass over the sources; True if any of them moved."""
        moved = False
        for src in list(self.sources.values()):
            if self.stop:
                break
            batch = src.read_batch(self.inflight.limit(src.key))
            if batch is None:
                continue
            moved = True
            if batch.records:
                self._deliver(batch)
            self.store.quarantine = self.quarantine.stats.as_json() if self.quarantine.stats.count else None
            self.store.commit(batch.key, batch.state)
            src.ack(batch)
            self.inflight.done(batch.key, len(batch.records))
            self.rows += len(batch.records)
            self.batches += 1
        return moved

    def _deliver(self, batch: Batch) -> None:
        """Write one batch; whatever cannot be written as it is ends in the quarantine, never in a loop."""
        records = batch.records
        first = records[0].position
        for rec in records:
            if rec.quarantine is not None:  # a parser raised on it: it goes out as a parse_error row
                self._quarantine(batch.key, rec, rec.quarantine)
        if self.inflight.is_poison(batch.key, first, len(records)):
            reason = f"the collector stopped {CRASHES_BEFORE_QUARANTINE} times while writing this record"
            self.sink.write_plain(records, reason)
            refused = [Refused(rec, reason) for rec in records]
        else:
            self.inflight.begin(batch.key, first, len(records))
            try:
                refused = self.sink.write(records)
            except (AgentError, DeliveryAborted):
                raise
            except Exception:  # on purpose: a bug on some record: find it instead of dying on it forever
                log.exception("writing a batch of %s failed unexpectedly; writing its records one at a time",
                              batch.key)
                refused = []
                for rec in records:
                    try:
                        refused += self.sink.write([rec])
                    except (AgentError, DeliveryAborted):
                        raise
                    except Exception as exc:  # on purpose: this record is the one
                        reason = f"writing it raised {type(exc).__name__}: {exc}"
                        self.sink.write_plain([rec], reason)
                        refused.append(Refused(rec, reason))
        for r in refused:
            self._quarantine(batch.key, r.record, r.reason)

    def _quarantine(self, key: str, rec: Record, reason: str) -> None:
        self.quarantine.add(source=key, position=rec.position, raw=rec.raw, reason=reason)

    def _sleep(self, seconds: float) -> None:
        end = self._clock() + seconds
        while not self.stop and (left := end - self._clock()) > 0:
            time.sleep(min(left, 0.05))

    def run(self, *, once: bool = False) -> int:
        """Run until stopped (or, with ``once``, until no source has anything left). Returns an exit code."""
        self._once = once
        self.store.load()
        self.quarantine.stats = QuarantineStats.from_json(self.store.quarantine)
        self.quarantine.stats.file = str(self.quarantine.path)
        self.inflight.load()
        self.scan()
        sd_notify(f"READY=1\nSTATUS=following {len(self.sources)} sources")
        log.info("collector started: %d sources, host %s", len(self.sources), self.cfg.host)
        next_scan = self._clock() + self.cfg.rescan_interval_s
        next_report = self._clock() + 60.0
        try:
            while not self.stop:
                moved = self.step()
                now = self._clock()
                if now >= next_scan:
                    self.scan()
                    next_scan = now + self.cfg.rescan_interval_s
                if now >= next_report:
                    log.info("shipped %d rows in %d batches", self.rows, self.batches)
                    next_report = now + 60.0
                if not moved:
                    if once and not any(src.busy() for src in self.sources.values()):
                        break
                    self._sleep(self.cfg.poll_interval_s)
            if self.stop:
                log.info("stopping on signal %s", self.stop.signal)
            self.inflight.clear()
        except DeliveryAborted as exc:
            log.warning("%s", exc)
            self.inflight.clear()
        except AgentError:
            self.inflight.clear()  # a known failure (configuration, schema), not a record: nothing to suspect
            raise
        finally:
            sd_notify("STOPPING=1")
            for src in self.sources.values():
                src.close()
            self.sink.close()
        log.info("collector stopped: shipped %d rows in %d batches", self.rows, self.batches)
        return 0
