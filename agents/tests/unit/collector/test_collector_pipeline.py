"""Several batches in flight (daemon.py): offsets still move in order per source and only past acknowledged
batches, memory holds at most ``batches_in_flight`` batches and ``rows_in_flight`` records (an acknowledged
batch waiting for an older one counts until it is committed), a failed batch stops its source's commits and
no other's, and after a death with several batches in flight the loop is serial until they are committed.

The sink here is a stand-in whose writes the test holds and releases (threading.Event), so the order in which
batches are acknowledged is the test's choice; the real sink's concurrency is tested against Cassandra in
agents/tests/integration/collector/."""

from __future__ import annotations

import gc
import json
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from collector_support import crash_loop
from iact_agents.collector.config import CollectorConfig
from iact_agents.collector.daemon import Collector, StopFlag
from iact_agents.collector.position import FileState, OffsetStore, SourceState
from iact_agents.collector.quarantine import Inflight
from iact_agents.collector.records import Record
from iact_agents.collector.sink import DeliveryAborted, Refused
from iact_agents.collector.source import Batch, Source
from iact_agents.errors import ServiceUnavailable

WAIT = 30.0  # generous bound for a thread to get somewhere on a loaded machine (never a timing assertion)


class HeldSink:
    """Writes block until released: ``hold`` (a substring of a record's raw text) -> Event. Counts how many
    writes are in progress at once."""

    def __init__(self, hold: dict[str, threading.Event] | None = None,
                 fail: dict[str, BaseException] | None = None) -> None:
        self.hold = hold or {}
        self.fail = fail or {}
        self.rows: dict[str, Record] = {}
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.started: list[str] = []
        self.sizes: list[int] = []

    def write(self, records: Sequence[Record]) -> list[Refused]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.started.append(records[0].raw)
            self.sizes.append(len(records))
        try:
            for marker, event in self.hold.items():
                if any(marker in r.raw for r in records):
                    assert event.wait(WAIT), f"batch with {marker} was never released"
            for marker, exc in self.fail.items():
                if any(marker in r.raw for r in records):
                    raise exc
            with self.lock:
                for r in records:
                    self.rows[r.position] = r
            return []
        finally:
            with self.lock:
                self.active -= 1

    def write_plain(self, records: Sequence[Record], reason: str) -> None:
        self.write(records)

    def close(self) -> None:
        pass


def config(tmp_path: Path, files: Sequence[str] = ("a.log",), **over: object) -> CollectorConfig:
    data: dict[str, object] = {"host": "h", "state_dir": str(tmp_path / "state"), "rotate_wait_s": 0,
                               "poll_interval_s": 0.01, "batch_lines": 10, "batches_in_flight": 4,
                               "files": [{"paths": [str(tmp_path / f) for f in files]}]}
    data.update(over)
    return CollectorConfig.model_validate(data)


def write_lines(path: Path, n: int, tag: str = "line") -> None:
    path.write_text("".join(f"Nov 27 18:00:{i % 60:02d} h p[{i}]: {tag} {i:04d}\n" for i in range(n)))


def committed(tmp_path: Path, name: str) -> int:
    try:
        doc = json.loads((tmp_path / "state" / "positions.json").read_text())
    except (OSError, ValueError):
        return 0
    state = doc["sources"].get(f"file:{tmp_path / name}")
    return int(state["offset"]) if state else 0


def line_offset(path: Path, index: int) -> int:
    """Offset of line ``index`` (the end of the file for index == number of lines)."""
    lines = path.read_bytes().splitlines(keepends=True)
    return sum(len(x) for x in lines[:index])


def run_in_thread(collector: Collector, *, once: bool = True) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def target() -> None:
        try:
            out.append(collector.run(once=once))
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def wait_for(pred: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def test_later_batches_acknowledged_first_are_committed_only_after_the_earlier_one(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, 60)  # six batches of ten
    release = threading.Event()
    sink = HeldSink(hold={"line 0010": release})  # the second batch waits; the ones after it do not
    thread, out = run_in_thread(Collector(config(tmp_path), sink))
    wait_for(lambda: len(sink.started) >= 5, "five batches being written")
    wait_for(lambda: committed(tmp_path, "a.log") == line_offset(log, 10), "the first batch committed")
    wait_for(lambda: len(sink.rows) >= 40, "the batches after the held one acknowledged")
    time.sleep(0.2)  # (a wrong loop would commit past the held batch now)
    assert committed(tmp_path, "a.log") == line_offset(log, 10)
    assert sink.max_active <= 4  # batches_in_flight: no more batches were read than that
    release.set()
    thread.join(WAIT)
    assert out == [0]
    assert committed(tmp_path, "a.log") == log.stat().st_size and len(sink.rows) == 60
    assert sink.max_active > 1  # several batches really were in flight
    assert not (tmp_path / "state" / "inflight.json").exists()


class CheckedStore(OffsetStore):
    """An offset store that checks, at every commit, that each file's offset only moves forward and only past
    lines the sink has acknowledged (``sink.rows`` holds the row key of each acknowledged record)."""

    def __init__(self, state_dir: Path, sink: HeldSink, log: Path) -> None:
        super().__init__(state_dir)
        self.sink = sink
        self.starts = [0]
        for line in log.read_bytes().splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.offsets: list[int] = []

    def commit_many(self, states: dict[str, SourceState]) -> None:
        for state in states.values():
            if isinstance(state, FileState):
                assert not self.offsets or state.offset >= self.offsets[-1], "an offset moved back"
                with self.sink.lock:
                    acked = {int(p.rsplit(":", 1)[1]) for p in self.sink.rows}
                assert all(start in acked for start in self.starts if start < state.offset), \
                    f"committed {state.offset} past a line not acknowledged"
                self.offsets.append(state.offset)
        super().commit_many(states)


class PeakCollector(Collector):
    """Notes the records in flight after every batch read (in the loop's own thread)."""

    peak = 0

    def _submit(self, src: Source, batch: Batch) -> None:
        super()._submit(src, batch)
        self.peak = max(self.peak, self.rows_in_flight())


def test_rows_in_flight_bound_what_is_held_whatever_the_number_of_batches(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, 60)
    release = threading.Event()
    sink = HeldSink(hold={"line 0000": release})  # the first batch waits; the ones after it are acknowledged
    store = CheckedStore(tmp_path / "state", sink, log)
    collector = PeakCollector(config(tmp_path, batches_in_flight=8, rows_in_flight=25), sink, store=store)
    thread, out = run_in_thread(collector)
    wait_for(lambda: len(sink.rows) >= 15, "the batches after the held one acknowledged")
    time.sleep(0.2)  # (a loop counting batches, or only the unacknowledged ones, would read more now)
    # 25 rows: two whole batches and a shorter third, though 8 batches would be allowed; the acknowledged
    # ones still count, as they wait in memory for the held one to be committed first.
    assert sorted(sink.sizes) == [5, 10, 10] and collector.rows_in_flight() == 25
    # The loop waits for the held write only: waiting for the acknowledged ones too would return at once (spin).
    assert len(collector._unfinished()) == 1
    assert committed(tmp_path, "a.log") == 0 and set(store.offsets) <= {0}  # (the new file's identity: offset 0)
    release.set()
    thread.join(WAIT)
    assert out == [0]
    assert len(sink.rows) == 60 and committed(tmp_path, "a.log") == log.stat().st_size
    assert collector.peak == 25 and max(sink.sizes) == 10 and sum(sink.sizes) == 60
    moved = [o for o in store.offsets if o]
    assert moved == sorted(moved) and moved[0] == line_offset(log, 25)  # the held batch and the two behind it


def test_commits_stay_in_order_when_later_batches_are_acknowledged_first(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, 80)
    gates = {f"line {i:04d}": threading.Event() for i in (0, 10, 20, 30)}
    sink = HeldSink(hold=dict(gates))
    store = CheckedStore(tmp_path / "state", sink, log)
    thread, out = run_in_thread(Collector(config(tmp_path, batches_in_flight=8, rows_in_flight=40), sink,
                                          store=store))
    wait_for(lambda: len(sink.started) == 4, "four batches in flight")
    for marker in ("line 0030", "line 0020", "line 0010"):  # acknowledged newest first
        gates[marker].set()
        wait_for(lambda m=marker: any(m in r.raw for r in sink.rows.values()), marker)  # type: ignore[misc]
    time.sleep(0.2)
    assert committed(tmp_path, "a.log") == 0 and len(sink.started) == 4  # nothing committed, nothing more read
    gates["line 0000"].set()
    thread.join(WAIT)
    assert out == [0] and len(sink.rows) == 80 and committed(tmp_path, "a.log") == log.stat().st_size
    # The first commit past line 0 took the four batches at once, in order (CheckedStore checked every step).
    assert next(o for o in store.offsets if o) == line_offset(log, 40)


def test_a_failed_batch_holds_back_the_later_ones_under_the_rows_bound(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, 40, "doomed")
    release = threading.Event()
    sink = HeldSink(hold={"doomed 0010": release},
                    fail={"doomed 0010": DeliveryAborted("stopping with a batch not acknowledged")})
    stop = StopFlag()
    store = CheckedStore(tmp_path / "state", sink, log)
    collector = PeakCollector(config(tmp_path, batches_in_flight=8, rows_in_flight=30), sink, store=store,
                              stop=stop)
    thread, out = run_in_thread(collector, once=False)
    wait_for(lambda: len(sink.rows) >= 30, "every batch but the held one acknowledged")
    stop.set()
    release.set()
    thread.join(WAIT)
    assert out == [0] and collector.peak <= 30
    assert committed(tmp_path, "a.log") == line_offset(log, 10)  # the later batches were acknowledged, not committed
    again = HeldSink()
    Collector(config(tmp_path), again).run(once=True)
    assert sorted(int(r.raw.rsplit(" ", 1)[1]) for r in again.rows.values()) == list(range(10, 40))


def test_one_held_source_does_not_hold_the_others(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.log", 30, "slow")
    write_lines(tmp_path / "b.log", 30, "fast")
    release = threading.Event()
    sink = HeldSink(hold={"slow 0000": release})
    collector = Collector(config(tmp_path, files=("a.log", "b.log")), sink)
    thread, out = run_in_thread(collector)
    wait_for(lambda: committed(tmp_path, "b.log") == (tmp_path / "b.log").stat().st_size, "b.log shipped")
    assert committed(tmp_path, "a.log") == 0
    release.set()
    thread.join(WAIT)
    assert out == [0] and len(sink.rows) == 60


def test_a_batch_that_is_not_delivered_stops_the_commits_of_its_source_only(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.log", 40, "doomed")
    write_lines(tmp_path / "b.log", 20, "other")
    release = threading.Event()
    sink = HeldSink(hold={"doomed 0010": release},
                    fail={"doomed 0010": DeliveryAborted("stopping with a batch not acknowledged")})
    stop = StopFlag()
    collector = Collector(config(tmp_path, files=("a.log", "b.log")), sink, stop=stop)
    thread, out = run_in_thread(collector, once=False)
    wait_for(lambda: committed(tmp_path, "b.log") == (tmp_path / "b.log").stat().st_size, "b.log shipped")
    wait_for(lambda: len([r for r in sink.rows.values() if "doomed" in r.raw]) >= 30, "a.log's other batches")
    stop.set()  # SIGTERM; the held batch then gives up at the drain deadline
    release.set()
    thread.join(WAIT)
    assert out == [0]
    # Its later batches were acknowledged, but the offset stays before the batch that was not.
    assert committed(tmp_path, "a.log") == line_offset(tmp_path / "a.log", 10)
    assert not (tmp_path / "state" / "inflight.json").exists()
    again = HeldSink()
    Collector(config(tmp_path, files=("a.log", "b.log")), again).run(once=True)
    assert sorted(int(r.raw.rsplit(" ", 1)[1]) for r in again.rows.values()) == list(range(10, 40))


def test_a_fatal_error_in_one_writer_stops_the_collector_with_it(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.log", 50)
    sink = HeldSink(fail={"line 0020": ServiceUnavailable("Cassandra refused the insert")})
    with pytest.raises(ServiceUnavailable):
        Collector(config(tmp_path), sink).run(once=True)
    assert committed(tmp_path, "a.log") <= line_offset(tmp_path / "a.log", 20)
    assert not (tmp_path / "state" / "inflight.json").exists()


def test_the_note_lists_every_batch_in_flight(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, 40)
    release = threading.Event()
    sink = HeldSink(hold={"line 00": release})  # every batch of this file holds
    thread, out = run_in_thread(Collector(config(tmp_path), sink))
    wait_for(lambda: len(sink.started) == 4, "four batches in flight")
    note = json.loads((tmp_path / "state" / "inflight.json").read_text())
    firsts = sorted(b["first"] for b in note["batches"])
    assert len(firsts) == 4 and {b["count"] for b in note["batches"]} == {10}
    assert [int(f.split(":")[1]) for f in firsts] == [line_offset(log, i) for i in (0, 10, 20, 30)]
    release.set()
    thread.join(WAIT)
    assert out == [0]


CRASHING_RUN = textwrap.dedent("""
    import os, sys, json, threading, time
    from iact_agents.collector.config import CollectorConfig
    from iact_agents.collector.daemon import Collector

    cfg = CollectorConfig.model_validate(json.loads(sys.argv[1]))
    out = sys.argv[2]
    lock = threading.Lock()
    active = [0]

    def keep(entry):
        with lock, open(out, "a") as fh:
            fh.write(json.dumps(entry) + "\\n")

    class CrashingSink:
        def write(self, records):
            with lock:
                active[0] += 1
                now = active[0]
            try:
                if any("POISON" in r.raw for r in records):
                    time.sleep(0.3)  # the other batches get in flight meanwhile
                    os._exit(86)  # a crash in a C extension or the OOM killer: no cleanup at all
                time.sleep(0.02)
                keep({"positions": [r.position for r in records], "active": now})
                return []
            finally:
                with lock:
                    active[0] -= 1
        def write_plain(self, records, reason):
            keep({"plain": [r.position for r in records]})
        def close(self):
            pass

    sys.exit(Collector(cfg, CrashingSink()).run(once=True))
""")


def test_a_record_that_kills_the_process_with_several_batches_in_flight_is_quarantined(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"Nov 27 18:00:00 h p[{i}]: {'POISON' if i == 25 else 'line'} {i}\n" for i in range(80)))
    cfg = config(tmp_path)
    out = tmp_path / "writes.jsonl"
    codes = crash_loop(CRASHING_RUN, cfg, out)  # a crash loop under systemd (Restart=on-failure), bounded
    assert codes[-1] == 0 and 2 <= codes.count(86) <= 4, codes  # inside the unit's StartLimitBurst
    writes = [json.loads(x) for x in out.read_text().splitlines()]
    assert max(int(w.get("active", 0)) for w in writes) > 1  # several batches in flight in the first run
    plain = [p for w in writes for p in w.get("plain", [])]
    delivered = {p for w in writes for p in w.get("positions", [])} | set(plain)
    assert len(plain) == 1 and len(delivered) == 80  # every line once at least (replays reuse the row key)
    q = [json.loads(x) for x in (tmp_path / "state" / "quarantine.jsonl").read_text().splitlines()]
    assert len(q) == 1 and "POISON 25" in str(q[0]["raw"])
    assert committed(tmp_path, "a.log") == log.stat().st_size
    assert not (tmp_path / "state" / "inflight.json").exists()


class EventSink(HeldSink):
    """Each write takes a little while and logs its start and end, so overlapping writes show."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []

    def write(self, records: Sequence[Record]) -> list[Refused]:
        with self.lock:
            self.events.append(("start", records[0].position))
        time.sleep(0.02)
        try:
            return super().write(records)
        finally:
            with self.lock:
                self.events.append(("end", records[0].position))


def test_serial_until_the_batches_noted_at_a_death_are_committed(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, 80)
    probe = HeldSink()  # learn the row keys of the first three batches (file ids depend on the inode)
    Collector(config(tmp_path, batches_in_flight=1), probe).run(once=True)
    (tmp_path / "state" / "positions.json").unlink()
    firsts = [next(p for p in probe.rows if p.endswith(f":{line_offset(log, i):016d}")) for i in (0, 10, 20)]
    # As a previous run that died with these three batches in flight left it:
    Inflight(tmp_path / "state").note([(f"file:{log}", first, 10) for first in firsts])
    sink = EventSink()
    Collector(config(tmp_path), sink).run(once=True)
    assert len(sink.rows) == 80
    # One batch at a time for the 30 noted records, then several at once again.
    assert sink.events[:6] == [(kind, first) for first in firsts for kind in ("start", "end")]
    running = peak = 0
    for kind, _ in sink.events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak > 1


@pytest.mark.parametrize("rotation", ["rename", "copytruncate"])
def test_rotation_while_batches_are_in_flight(tmp_path: Path, rotation: str) -> None:
    """The reader is ahead of the committed position when the file is rotated: every line arrives once and
    the committed state ends in the new file."""
    log = tmp_path / "a.log"
    write_lines(log, 40, "old")
    release = threading.Event()
    sink = HeldSink(hold={"old 0000": release})
    thread, out = run_in_thread(Collector(config(tmp_path), sink))
    wait_for(lambda: len(sink.started) == 4, "four batches in flight")
    with log.open("a") as fh:
        fh.write("".join(f"Nov 27 18:01:00 h p[1]: late {i:04d}\n" for i in range(10)))
    if rotation == "rename":
        log.rename(tmp_path / "a.log.1")
    else:
        (tmp_path / "a.log.1").write_bytes(log.read_bytes())
        with log.open("r+") as fh:
            fh.truncate(0)
    with log.open("a") as fh:
        fh.write("".join(f"Nov 27 18:02:00 h p[1]: new {i:04d}\n" for i in range(20)))
    release.set()
    thread.join(WAIT)
    assert out == [0]
    texts = sorted(r.raw.split(": ", 1)[1] for r in sink.rows.values())
    assert texts == sorted([f"old {i:04d}" for i in range(40)] + [f"late {i:04d}" for i in range(10)]
                           + [f"new {i:04d}" for i in range(20)])
    assert committed(tmp_path, "a.log") == log.stat().st_size


class TakingSink(HeldSink):
    """Takes the records over as CassandraSink does: keeps (position, raw) of each, empties the list, and only
    then waits for its release; ``crash`` (a marker) raises an unexpected error after taking them."""

    def __init__(self, hold: dict[str, threading.Event] | None = None, crash: str | None = None) -> None:
        super().__init__(hold)
        self.crash = crash
        self.alive_while_held: list[int] = []

    def write(self, records: Sequence[Record]) -> list[Refused]:
        assert isinstance(records, list)
        kept = [Record(source=r.source, position=r.position, ts=r.ts, message="", raw=r.raw) for r in records]
        records.clear()
        if self.crash is not None and any(self.crash in r.raw for r in kept):
            raise RuntimeError("a bug after taking the records")
        if any(m in r.raw for r in kept for m in self.hold):
            gc.collect()
            self.alive_while_held.append(sum(1 for o in gc.get_objects()
                                             if type(o) is Record and o.message.startswith("line 001")))
        return super().write(kept)


def test_records_are_not_kept_alive_while_their_rows_wait(tmp_path: Path) -> None:
    """The loop keeps of a batch in flight only what committing needs: once the sink took the records over,
    no parsed record of the batches in flight is alive (their memory is what bounds rows in flight)."""
    log = tmp_path / "a.log"
    write_lines(log, 40)
    release = threading.Event()
    sink = TakingSink(hold={"line 0010": release})
    thread, out = run_in_thread(Collector(config(tmp_path), sink))
    wait_for(lambda: sink.alive_while_held, "the held batch taken over")
    release.set()
    thread.join(WAIT)
    assert out == [0]
    assert sink.alive_while_held == [0]
    assert committed(tmp_path, "a.log") == log.stat().st_size
    assert sorted(sink.rows) == sorted(r.position for r in sink.rows.values()) and len(sink.rows) == 40


def test_an_unexpected_error_after_the_sink_took_the_records_leaves_the_batch_uncommitted(tmp_path: Path) -> None:
    """No one-record-at-a-time retry on an emptied list (it would commit rows never written): the batch
    fails, the collector stops, and the batch is read again at the next start."""
    log = tmp_path / "a.log"
    write_lines(log, 40)
    with pytest.raises(RuntimeError, match="after taking"):
        Collector(config(tmp_path, batches_in_flight=1), TakingSink(crash="line 0020")).run(once=True)
    assert committed(tmp_path, "a.log") == line_offset(log, 20)
    again = HeldSink()
    Collector(config(tmp_path), again).run(once=True)
    assert sorted(int(r.raw.rsplit(" ", 1)[1]) for r in again.rows.values()) == list(range(20, 40))
