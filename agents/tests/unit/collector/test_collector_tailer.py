"""File tailing with real files: steady state, partial lines, bounds, rotation, copytruncate, truncation,
and the offset store (a crash between read and ack re-reads the same positions, hence the same row keys)."""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iact_agents.collector.journal import JournalReader
from iact_agents.collector.position import FileState, JournalState, OffsetStore, StateError
from iact_agents.collector.records import Record
from iact_agents.collector.source import Batch
from iact_agents.collector.tailer import FileTailer, TailParams, split_lines

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "collector"


def line(i: int) -> str:
    return f"2026-11-27T18:00:{i % 60:02d}.{i:06d}+00:00 cass1 test[{i}]: message number {i}\n"


def write(path: Path, text: str, mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as fh:
        fh.write(text)


class Harness:
    """A tailer plus the daemon's commit discipline: commit the batch state, then ack."""

    def __init__(self, path: Path, state_dir: Path, **params: object) -> None:
        self.path = path
        self.store = OffsetStore(state_dir)
        self.store.load()
        self.params = TailParams(**{"rotate_wait_s": 0.0, "batch_lines": 1000, **params})  # type: ignore[arg-type]
        self.tailer = self.new_tailer()

    def new_tailer(self) -> FileTailer:
        state = self.store.get(f"file:{self.path}")
        assert state is None or isinstance(state, FileState)
        return FileTailer(str(self.path), "syslog", state=state, params=self.params)

    def commit(self, batch: Batch) -> None:
        self.store.commit(batch.key, batch.state)
        self.tailer.ack(batch)

    def read(self, *, max_batches: int = 1000) -> list[Record]:
        out: list[Record] = []
        for _ in range(max_batches):
            batch = self.tailer.read_batch()
            if batch is None:
                break
            out.extend(batch.records)
            self.commit(batch)
        return out


def messages(records: list[Record]) -> list[str]:
    return [r.message for r in records]


def assert_distinct(records: list[Record]) -> None:
    keys = [r.position for r in records]
    assert len(keys) == len(set(keys))


def test_steady_state_and_positions(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(10)))
    h = Harness(log, tmp_path / "state")
    recs = h.read()
    assert messages(recs) == [f"message number {i}" for i in range(10)]
    offsets = [int(r.position.split(":")[1]) for r in recs]
    assert offsets[0] == 0 and offsets == sorted(offsets)
    write(log, "".join(line(i) for i in range(10, 15)))
    more = h.read()
    assert messages(more) == [f"message number {i}" for i in range(10, 15)]
    assert_distinct(recs + more)
    state = h.store.get(f"file:{log}")
    assert isinstance(state, FileState) and state.offset == log.stat().st_size


def test_partial_last_line_waits(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, line(0) + "Nov 27 18:00:01 cass1 p: half")
    h = Harness(log, tmp_path / "state")
    assert messages(h.read()) == ["message number 0"]
    assert h.read() == []
    write(log, " and the rest\n")
    assert messages(h.read()) == ["half and the rest"]


def test_new_file_waits_for_its_first_complete_line(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "no newline yet")
    h = Harness(log, tmp_path / "state")
    assert h.read() == []
    assert h.store.get(f"file:{log}") is None
    write(log, "\n" + line(1))
    assert len(h.read()) == 2


def test_batches_are_bounded_in_lines_and_bytes(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(1000)))
    h = Harness(log, tmp_path / "state", batch_lines=100, batch_bytes=4096, max_line_bytes=1024)
    sizes = []
    total = 0
    while (batch := h.tailer.read_batch()) is not None:
        h.commit(batch)
        if batch.records:
            sizes.append(len(batch.records))
            assert batch.nbytes <= 4096
            total += len(batch.records)
    assert total == 1000 and max(sizes) <= 100


def test_overlong_line_is_cut_not_buffered(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, line(0) + "x" * 2500 + "\n" + line(1))
    h = Harness(log, tmp_path / "state", batch_bytes=4096, max_line_bytes=1024)
    recs = h.read()
    assert [len(r.raw) for r in recs[1:4]] == [1024, 1024, 452]
    assert recs[-1].message == "message number 1"
    assert_distinct(recs)


def test_rename_rotation_finishes_the_old_file_first(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(5)))
    h = Harness(log, tmp_path / "state", batch_lines=3)
    h.commit(h.tailer.read_batch())  # type: ignore[arg-type]  # the identity
    first = h.tailer.read_batch()
    assert first is not None and len(first.records) == 3
    h.commit(first)
    log.rename(tmp_path / "syslog.1")
    write(tmp_path / "syslog.1", line(5) + line(6))  # the writer still had the old file open
    write(log, "".join(line(i) for i in range(7, 11)))
    recs = first.records + h.read()
    assert messages(recs) == [f"message number {i}" for i in range(11)]
    assert_distinct(recs)
    assert len({r.position.split(":")[0] for r in recs}) == 2


def test_rotated_file_last_partial_line_is_flushed(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, line(0) + "Nov 27 18:00:01 cass1 p: never finished")
    h = Harness(log, tmp_path / "state")
    assert len(h.read()) == 1
    log.rename(tmp_path / "syslog.1")
    write(log, line(2))
    assert messages(h.read()) == ["never finished", "message number 2"]


def test_rotation_waits_for_rotate_wait(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, line(0))
    now = [0.0]
    h = Harness(log, tmp_path / "state", rotate_wait_s=5.0)
    h.tailer = FileTailer(str(log), "syslog", state=None, params=h.params, clock=lambda: now[0])
    assert len(h.read()) == 1
    log.rename(tmp_path / "syslog.1")
    write(log, line(2))
    assert h.read() == []
    now[0] = 3.0
    write(tmp_path / "syslog.1", line(1))
    assert messages(h.read()) == ["message number 1"]
    now[0] = 7.9
    assert h.read() == []
    now[0] = 8.1
    assert messages(h.read()) == ["message number 2"]


def test_rotation_while_stopped_resumes_in_the_rotated_file(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(6)))
    h = Harness(log, tmp_path / "state", batch_lines=2)
    done: list[Record] = []
    while len(done) < 4:
        b = h.tailer.read_batch()
        assert b is not None
        h.commit(b)
        done += b.records
    h.tailer.close()  # stopped after 4 lines
    log.rename(tmp_path / "syslog.1")
    write(log, line(6))
    h.tailer = h.new_tailer()
    recs = h.read()
    assert messages(recs) == ["message number 4", "message number 5", "message number 6"]
    assert_distinct(done + recs)


def test_copytruncate_reads_the_rest_from_the_copy(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(5)))
    h = Harness(log, tmp_path / "state", batch_lines=2)
    h.commit(h.tailer.read_batch())  # type: ignore[arg-type]  # the identity
    b = h.tailer.read_batch()
    assert b is not None and len(b.records) == 2
    h.commit(b)
    shutil.copyfile(log, tmp_path / "syslog.1")
    with log.open("r+") as fh:
        fh.truncate(0)
    write(log, line(5) + line(6) + line(7))
    recs = b.records + h.read()
    assert messages(recs) == [f"message number {i}" for i in range(8)]
    assert_distinct(recs)


def test_truncation_without_copy_restarts_at_zero_with_a_new_identity(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(5)))
    h = Harness(log, tmp_path / "state")
    before = h.read()
    with log.open("r+") as fh:
        fh.truncate(0)
    write(log, line(0) + line(9))  # same first line as before, shorter file
    after = h.read()
    assert messages(after) == ["message number 0", "message number 9"]
    assert after[0].position.endswith(":0000000000000000")
    assert after[0].position != before[0].position  # new generation, new row key
    assert_distinct(before + after)


def test_truncation_refilled_past_the_old_offset_is_noticed_by_fingerprint(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, line(0) + line(1))
    h = Harness(log, tmp_path / "state")
    before = h.read()
    with log.open("w", encoding="utf-8") as fh:
        fh.write("".join(line(i) for i in range(10, 15)))
    after = h.read()
    assert messages(after) == [f"message number {i}" for i in range(10, 15)]
    assert_distinct(before + after)


def test_crash_between_read_and_ack_rereads_the_same_row_keys(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(9)) + "garbage line\n")
    h = Harness(log, tmp_path / "state", batch_lines=4)
    b1 = h.tailer.read_batch()
    assert b1 is not None
    h.commit(b1)  # identity committed
    b2 = h.tailer.read_batch()
    assert b2 is not None and b2.records
    h.commit(b2)
    lost = [h.tailer.read_batch(), h.tailer.read_batch()]  # read, never acknowledged: then "SIGKILL"
    assert all(b is not None for b in lost)
    h2 = Harness(log, tmp_path / "state", batch_lines=4)
    replay = h2.read()
    lost_records = [r for b in lost if b for r in b.records]
    assert [(r.position, r.ts, r.raw) for r in replay] == [(r.position, r.ts, r.raw) for r in lost_records]
    assert replay[-1].parse_error


def test_start_at_end_skips_existing_lines(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, line(0) + line(1))
    h = Harness(log, tmp_path / "state", start_at="end")
    assert h.read() == []
    write(log, line(2))
    assert messages(h.read()) == ["message number 2"]


def test_missing_file_is_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    h = Harness(log, tmp_path / "state")
    assert h.read() == []
    write(log, line(0))
    assert messages(h.read()) == ["message number 0"]


# --- offset store ------------------------------------------------------------------------------------

def test_offset_store_round_trip_and_atomic_write(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path / "state")
    store.load()
    fs = FileState("/var/log/syslog", 1, 2, "ab", 0, 100, 5)
    js = JournalState("s=1;i=2", 7)
    store.commit("file:/var/log/syslog", fs)
    store.commit("journal:journal", js)
    assert sorted(os.listdir(tmp_path / "state")) == ["positions.json"]
    assert (tmp_path / "state" / "positions.json").stat().st_mode & 0o777 == 0o640  # group: the health agent
    again = OffsetStore(tmp_path / "state")
    again.load()
    assert again.get("file:/var/log/syslog") == fs and again.get("journal:journal") == js
    commits = store.commits
    store.commit("journal:journal", js)
    assert store.commits == commits  # unchanged state: no write


def test_offset_store_commit_is_durable_before_it_returns(tmp_path: Path, sync_calls: list[str]) -> None:
    """The committed file is fsynced before the rename and the folder after it (a machine crash right after
    commit() returns keeps the position)."""
    store = OffsetStore(tmp_path)
    store.load()
    store.commit("journal:j", JournalState("c1", 1))
    assert sync_calls == ["fsync file", "replace", "fsync dir"]


def test_offset_store_unwritable_state_is_a_state_error(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path / "state")
    store.load()
    (tmp_path / "state").rmdir()
    with pytest.raises(StateError, match="cannot write the state"):
        store.commit("journal:j", JournalState("c1", 1))
    assert store.commits == 0


def test_offset_store_ignores_a_leftover_tmp_file(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path)
    store.load()
    store.commit("journal:j", JournalState("c1", 1))
    (tmp_path / ".positions.json.tmp").write_text('{"half written')  # crash during a later write
    again = OffsetStore(tmp_path)
    again.load()
    assert again.get("journal:j") == JournalState("c1", 1)


def test_offset_store_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "positions.json").write_text("{not json")
    with pytest.raises(StateError, match="not valid JSON"):
        OffsetStore(tmp_path).load()


# --- journal ---------------------------------------------------------------------------------------------

FAKE_JOURNALCTL = textwrap.dedent("""\
    #!{python}
    import sys, time
    lines = open({fixture!r}, encoding="utf-8").read().splitlines()
    after = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--after-cursor=")]
    with open({argv_log!r}, "a") as fh:
        fh.write(" ".join(sys.argv[1:]) + "\\n")
    start = 0
    if after:
        import json
        cursors = [json.loads(l)["__CURSOR"] for l in lines]
        start = cursors.index(after[0]) + 1
    for l in lines[start:]:
        sys.stdout.write(l + "\\n")
    sys.stdout.flush()
    if "--follow" in sys.argv:
        time.sleep(60)
""")


def fake_journalctl(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "journalctl"
    argv_log = tmp_path / "argv.log"
    script.write_text(FAKE_JOURNALCTL.format(python=sys.executable, fixture=str(FIXTURES / "journal.json"),
                                             argv_log=str(argv_log)))
    script.chmod(0o755)
    return script, argv_log


def read_journal(reader: JournalReader, store: OffsetStore, want: int) -> list[Record]:
    out: list[Record] = []
    deadline = time.monotonic() + 20
    while len(out) < want and time.monotonic() < deadline:
        batch = reader.read_batch()
        if batch is None:
            time.sleep(0.02)
            continue
        out.extend(batch.records)
        store.commit(batch.key, batch.state)
    return out


def test_journal_reader_follows_and_resumes_after_the_cursor(tmp_path: Path) -> None:
    script, argv_log = fake_journalctl(tmp_path)
    store = OffsetStore(tmp_path / "state")
    store.load()
    reader = JournalReader(source="journal", state=None, journalctl=str(script), batch_lines=20)
    try:
        recs = read_journal(reader, store, 50)
    finally:
        reader.close()
    assert len(recs) == 50 and not any(r.parse_error for r in recs)
    assert "--no-tail" in argv_log.read_text()
    state = store.get("journal:journal")
    assert isinstance(state, JournalState) and state.cursor == recs[-1].position
    # Restart from the cursor of the 30th entry: only the last 20 come again, with the same row keys.
    store.commit("journal:journal", JournalState(recs[29].position, 0))
    resumed = JournalReader(source="journal", state=JournalState(recs[29].position, 0), journalctl=str(script))
    try:
        again = read_journal(resumed, store, 20)
    finally:
        resumed.close()
    assert [r.position for r in again] == [r.position for r in recs[30:]]
    assert f"--after-cursor={recs[29].position}" in argv_log.read_text()


def test_journal_reader_survives_a_missing_journalctl(tmp_path: Path) -> None:
    reader = JournalReader(source="journal", state=None, journalctl=str(tmp_path / "nope"))
    assert reader.read_batch() is None
    reader.close()


def test_copytruncate_between_check_and_read_drops_the_read(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(5)))
    h = Harness(log, tmp_path / "state", batch_lines=2)
    h.commit(h.tailer.read_batch())  # type: ignore[arg-type]  # the identity
    b = h.tailer.read_batch()
    assert b is not None and len(b.records) == 2
    h.commit(b)
    # The race: the file is copied, truncated and refilled after the change check, before the read.
    shutil.copyfile(log, tmp_path / "syslog.1")
    write(log, "".join(line(i) for i in range(100, 110)), mode="w")
    assert h.tailer._read_lines(flush_partial=False) == ([], 0)
    recs = b.records + h.read()
    assert messages(recs) == [f"message number {i}" for i in [*range(5), *range(100, 110)]]
    assert_distinct(recs)


def test_journal_without_follow_reads_to_the_end(tmp_path: Path) -> None:
    script, argv_log = fake_journalctl(tmp_path)
    reader = JournalReader(source="journal", state=None, journalctl=str(script), follow=False)
    recs: list[Record] = []
    deadline = time.monotonic() + 20
    while reader.busy() and time.monotonic() < deadline:
        batch = reader.read_batch()
        if batch is not None:
            recs.extend(batch.records)
        else:
            time.sleep(0.01)
    assert len(recs) == 50 and not reader.busy()
    assert "--follow" not in argv_log.read_text()


def test_unreadable_file_is_retried_and_warned_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "syslog"
    write(log, line(0))
    real_open = os.open

    def deny(path: object, *args: object, **kwargs: object) -> int:
        if str(path) == str(log):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    h = Harness(log, tmp_path / "state")
    assert h.read() == [] and h.read() == [] and h.read() == []
    assert sum("cannot open" in r.message for r in caplog.records) == 1
    monkeypatch.setattr(os, "open", real_open)
    assert len(h.read()) == 1


def test_journal_malformed_cursor_falls_back_to_the_start(tmp_path: Path) -> None:
    script = tmp_path / "journalctl"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        if any(a.startswith("--after-cursor=") for a in sys.argv):
            sys.stderr.write("Failed to seek to cursor: Invalid argument\\n")
            sys.exit(1)
        sys.stdout.write(open({str(FIXTURES / "journal.json")!r}).read())
    """))
    script.chmod(0o755)
    reader = JournalReader(source="journal", state=JournalState("garbage", 0), journalctl=str(script),
                           follow=False, restart_delay_s=0)
    recs: list[Record] = []
    deadline = time.monotonic() + 20
    while reader.busy() and time.monotonic() < deadline:
        batch = reader.read_batch()
        if batch is not None:
            recs.extend(batch.records)
        else:
            time.sleep(0.01)
    assert len(recs) == 50


# --- compressed rotated files: long outages and stops lose nothing ------------------------------------------

def compress(path: Path, mtime: float) -> Path:
    """What logrotate's `compress` does: write name.gz, delete name."""
    gz = path.with_name(path.name + ".gz")
    with path.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    os.utime(gz, (mtime, mtime))
    return gz


def rotate_compressed(log: Path, keep: int, mtime: float) -> None:
    """logrotate with `compress` (no delaycompress): name.N.gz -> name.N+1.gz, name -> name.1.gz."""
    for n in range(keep - 1, 0, -1):
        src = log.with_name(f"{log.name}.{n}.gz")
        if src.exists():
            src.rename(log.with_name(f"{log.name}.{n + 1}.gz"))
    rotated = log.with_name(log.name + ".1")
    log.rename(rotated)
    compress(rotated, mtime)


def test_two_compressed_rotations_during_an_outage_lose_nothing(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(10)))
    h = Harness(log, tmp_path / "state", batch_lines=4, spool_dir=tmp_path / "state")
    got = h.read(max_batches=2)  # the identity, then 4 lines; then Cassandra goes down: nothing is read
    t0 = time.time()
    write(log, "".join(line(i) for i in range(10, 20)))
    rotate_compressed(log, 5, t0 + 10)  # A (0..19) -> syslog.1.gz; the tailer still holds A open
    write(log, "".join(line(i) for i in range(20, 30)))  # B
    os.utime(log, (t0 + 15, t0 + 15))
    rotate_compressed(log, 5, t0 + 20)  # A -> syslog.2.gz, B -> syslog.1.gz
    write(log, "".join(line(i) for i in range(30, 35)))  # C at the path
    got += h.read()
    assert messages(got) == [f"message number {i}" for i in range(35)]
    assert_distinct(got)
    assert list((tmp_path / "state").glob("tmp*")) == []  # spool files are unlinked


def test_two_compressed_rotations_while_stopped_lose_nothing(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(10)))
    h = Harness(log, tmp_path / "state", batch_lines=4, spool_dir=tmp_path / "state")
    got = h.read(max_batches=2)
    h.tailer.close()  # stopped
    t0 = time.time()
    rotate_compressed(log, 5, t0 + 10)
    write(log, "".join(line(i) for i in range(10, 20)))
    os.utime(log, (t0 + 15, t0 + 15))
    rotate_compressed(log, 5, t0 + 20)
    write(log, "".join(line(i) for i in range(20, 25)))
    h.tailer = h.new_tailer()
    rest = h.read()
    assert messages(got + rest) == [f"message number {i}" for i in range(25)]
    assert_distinct(got + rest)
    # The rest of A continues under A's identity: the same row keys as if it had been read uncompressed.
    assert rest[0].position.split(":")[0] == got[-1].position.split(":")[0]


def test_delaycompress_never_rereads_a_file(tmp_path: Path) -> None:
    """Debian's rsyslog rotation: the newest rotated file stays plain, the one before is compressed now."""
    log = tmp_path / "syslog"
    old = tmp_path / "syslog.1"
    write(old, "old 1\nold 2\n")  # there before the collector: history
    os.utime(old, (time.time() - 100, time.time() - 100))
    write(log, "".join(line(i) for i in range(3)))
    h = Harness(log, tmp_path / "state", spool_dir=tmp_path / "state")
    got = h.read()
    for day in range(3):
        t = time.time() + 10 * (day + 1)
        plain1 = tmp_path / "syslog.1"
        compress(plain1, t)  # syslog.1 -> syslog.1.gz (then renamed to .2.gz)
        for n in range(day + 1, 0, -1):
            src = tmp_path / f"syslog.{n}.gz"
            if src.exists():
                src.rename(tmp_path / f"syslog.{n + 1}.gz")
        log.rename(plain1)
        write(log, "".join(line(i) for i in range(3 * (day + 1), 3 * (day + 2))))
        got += h.read()
    assert messages(got) == [f"message number {i}" for i in range(12)]
    assert_distinct(got)


def test_old_compressed_files_are_not_read_at_first_sight_or_after_an_upgrade(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    for n in (1, 2):
        plain = tmp_path / f"syslog.{n}"
        write(plain, f"old {n}\n")
        compress(plain, time.time() + 50)  # even when their mtime is recent
    write(log, line(0))
    h = Harness(log, tmp_path / "state", spool_dir=tmp_path / "state")
    assert messages(h.read()) == ["message number 0"]
    # A state written before `seen` existed: the siblings found at start are history too.
    state = h.store.get(f"file:{log}")
    assert isinstance(state, FileState) and state.seen is not None and len(state.seen) == 2
    h.store.commit(f"file:{log}", dataclasses.replace(state, seen=None))
    h.tailer.close()
    h.tailer = h.new_tailer()
    log.rename(tmp_path / "syslog.0")
    write(log, line(1))
    assert messages(h.read()) == ["message number 1"]


def test_a_damaged_archive_gives_what_it_has(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    write(log, "".join(line(i) for i in range(4)))
    h = Harness(log, tmp_path / "state", batch_lines=2, spool_dir=tmp_path / "state")
    got = h.read(max_batches=2)
    h.tailer.close()
    rotated = tmp_path / "syslog.1"
    log.rename(rotated)
    gz = compress(rotated, time.time())
    gz.write_bytes(gz.read_bytes()[:-12])  # cut: no trailer (still being written, or damaged)
    write(log, line(9))
    h.tailer = h.new_tailer()
    rest = h.read()
    assert messages(rest)[-1] == "message number 9"
    assert_distinct(got + rest)


def _split_reference(data: bytes, max_lines: int, max_line: int, flush: bool) -> tuple[list[tuple[int, bytes]], int]:
    """The line-by-line rule split_lines must give (its one-go split is only a faster way to the same)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data) and len(out) < max_lines:
        nl = data.find(b"\n", pos, pos + max_line + 1)
        if nl >= 0:
            end, nxt = nl, nl + 1
        elif len(data) - pos >= max_line:
            end = nxt = pos + max_line
        elif flush:
            end = nxt = len(data)
        else:
            break
        out.append((pos, data[pos:end].removesuffix(b"\r")))
        pos = nxt
    return out, pos


@settings(max_examples=500, deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"\xff", "é".encode(), b"x" * 9, b"\n\r"]),
                     max_size=60).map(b"".join),
       max_lines=st.integers(1, 8), max_line=st.integers(1, 12), flush=st.booleans())
def test_split_lines_is_the_line_by_line_rule(data: bytes, max_lines: int, max_line: int, flush: bool) -> None:
    starts, lines, end = split_lines(data, max_lines, max_line, flush=flush)
    assert (list(zip(starts, lines, strict=True)), end) == _split_reference(data, max_lines, max_line, flush)
    if data.isascii():  # the reader splits an ASCII read as text: the same lines at the same offsets
        t_starts, t_lines, t_end = split_lines(data.decode("ascii"), max_lines, max_line, flush=flush)
        assert (t_starts, [t.encode("ascii") for t in t_lines], t_end) == (starts, lines, end)


def test_the_readers_former_names_still_import() -> None:
    """JournalReader, Batch and Source moved to journal.py and source.py; tailer still exports them."""
    from iact_agents.collector import journal, source, tailer  # noqa: PLC0415 - the import is the test

    assert tailer.JournalReader is journal.JournalReader
    assert tailer.Batch is source.Batch and tailer.Source is source.Source
