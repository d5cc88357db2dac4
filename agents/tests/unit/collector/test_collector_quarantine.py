"""Poison records (collector/quarantine.py): whatever a record does, the collector quarantines it, commits
past it and keeps shipping, in the same process or across restarts after the process died on it.

Faults are injected where no real input can produce them any more (the parsers are total): a parser that
raises, a sink that raises on one record, and a sink that kills its process on one record (as a crash in
a C extension or the OOM killer would). The real sink's own refusal path is tested against Cassandra in
agents/tests/integration/collector/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import pytest
from collector_support import crash_loop
from iact_agents.collector import records as records_mod
from iact_agents.collector import tailer as tailer_mod
from iact_agents.collector.config import CollectorConfig
from iact_agents.collector.daemon import Collector
from iact_agents.collector.quarantine import Flying, Inflight, Note, Quarantine, QuarantineStats
from iact_agents.collector.records import LineParser, Record
from iact_agents.collector.sink import Refused


class RecordingSink:
    """Keeps what it was given; ``poison`` records make write() raise, as a sink bug would."""

    def __init__(self, poison: str | None = None) -> None:
        self.rows: dict[str, Record] = {}
        self.plain: dict[str, str] = {}
        self.poison = poison

    def write(self, records: Sequence[Record]) -> list[Refused]:
        if self.poison is not None and any(self.poison in r.raw for r in records):
            raise RuntimeError("sink bug")
        for r in records:
            self.rows[r.position] = r
        return []

    def write_plain(self, records: Sequence[Record], reason: str) -> None:
        for r in records:
            self.plain[r.position] = reason

    def close(self) -> None:
        pass


def config(tmp_path: Path, **over: object) -> CollectorConfig:
    data: dict[str, object] = {"host": "h", "state_dir": str(tmp_path / "state"), "rotate_wait_s": 0,
                               "batch_lines": 4, "files": [{"paths": [str(tmp_path / "syslog")]}]}
    data.update(over)
    return CollectorConfig.model_validate(data)


def lines(n: int, poison_at: int | None = None) -> str:
    return "".join(f"Nov 27 18:00:{i:02d} h p[{i}]: {'POISON' if i == poison_at else 'line'} {i}\n" for i in range(n))


def state(tmp_path: Path) -> dict[str, object]:
    doc = json.loads((tmp_path / "state" / "positions.json").read_text())
    assert isinstance(doc, dict)
    return doc


def quarantined(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "state" / "quarantine.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_parser_that_raises_quarantines_the_line_and_ships_the_rest(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = records_mod.syslog_parser

    def buggy_parser(source: str, now: datetime, zone: tzinfo = UTC) -> LineParser:
        parse = real(source, now, zone)

        def buggy(line: str, position: str, fallback_ts: datetime) -> Record:
            if "POISON" in line:
                raise IndexError("parser bug")
            return parse(line, position, fallback_ts)

        return buggy

    monkeypatch.setattr(tailer_mod, "syslog_parser", buggy_parser)
    (tmp_path / "syslog").write_text(lines(10, poison_at=5))
    sink = RecordingSink()
    assert Collector(config(tmp_path), sink).run(once=True) == 0
    assert len(sink.rows) == 10
    bad = [r for r in sink.rows.values() if "POISON" in r.raw]
    assert len(bad) == 1 and bad[0].parse_error and bad[0].quarantine and "IndexError" in bad[0].quarantine
    q = quarantined(tmp_path)
    assert [e["raw"] for e in q] == ["Nov 27 18:00:05 h p[5]: POISON 5"] and "parser bug" in str(q[0]["reason"])
    doc = state(tmp_path)
    assert doc["quarantine"]["count"] == 1  # type: ignore[index]
    assert doc["quarantine"]["last_source"] == f"file:{tmp_path / 'syslog'}"  # type: ignore[index]
    assert not (tmp_path / "state" / "inflight.json").exists()


def test_a_sink_that_raises_on_one_record_quarantines_only_that_record(tmp_path: Path) -> None:
    (tmp_path / "syslog").write_text(lines(10, poison_at=6))
    sink = RecordingSink(poison="POISON")
    assert Collector(config(tmp_path), sink).run(once=True) == 0
    assert len(sink.rows) == 9 and len(sink.plain) == 1
    assert "RuntimeError" in next(iter(sink.plain.values()))
    assert len(quarantined(tmp_path)) == 1
    # Restart: nothing is read again, nothing quarantined again.
    again = RecordingSink(poison="POISON")
    Collector(config(tmp_path), again).run(once=True)
    assert again.rows == {} and again.plain == {} and len(quarantined(tmp_path)) == 1


CRASHING_RUN = textwrap.dedent("""
    import os, sys, json
    from iact_agents.collector.config import CollectorConfig
    from iact_agents.collector.daemon import Collector

    cfg = CollectorConfig.model_validate(json.loads(sys.argv[1]))
    out = sys.argv[2]

    class CrashingSink:
        def _keep(self, records, plain):
            with open(out, "a") as fh:
                for r in records:
                    fh.write(json.dumps([r.position, plain]) + "\\n")
        def write(self, records):
            if any("POISON" in r.raw for r in records):
                os._exit(86)  # dies as a crash in a C extension or the OOM killer would: no cleanup at all
            self._keep(records, False)
            return []
        def write_plain(self, records, reason):
            self._keep(records, True)
        def close(self):
            pass

    sys.exit(Collector(cfg, CrashingSink()).run(once=True))
""")


def test_a_record_that_kills_the_process_is_quarantined_after_restarts(tmp_path: Path) -> None:
    (tmp_path / "syslog").write_text(lines(30, poison_at=13))
    cfg = config(tmp_path, batch_lines=10)
    out = tmp_path / "delivered.jsonl"
    codes = crash_loop(CRASHING_RUN, cfg, out)  # a crash loop under systemd (Restart=on-failure), bounded
    assert codes[-1] == 0, codes
    assert 2 <= codes.count(86) <= 4, codes  # within the unit's start limit (roles/collector: StartLimitBurst)
    delivered = [json.loads(x) for x in out.read_text().splitlines()]
    positions = {p for p, _ in delivered}
    assert len(positions) == 30  # every line delivered (at least once: replays reuse the row key)
    plain = [p for p, is_plain in delivered if is_plain]
    assert len(plain) == 1
    q = quarantined(tmp_path)
    assert len(q) == 1 and "POISON 13" in str(q[0]["raw"]) and "stopped 2 times" in str(q[0]["reason"])
    assert state(tmp_path)["quarantine"]["count"] == 1  # type: ignore[index]
    assert not (tmp_path / "state" / "inflight.json").exists()
    # The next start reads whole batches again and finds nothing new.
    proc = subprocess.run([sys.executable, "-c", CRASHING_RUN, cfg.model_dump_json(), str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and len(out.read_text().splitlines()) == len(delivered)


def test_one_unexpected_exit_only_reads_the_batch_again(tmp_path: Path) -> None:
    """A single SIGKILL (the collector's own fault tests do this) suspects nothing."""
    inflight = Inflight(tmp_path)
    inflight.begin("file:x", "f:0", 10)
    again = Inflight(tmp_path)
    again.load()
    assert again.previous is not None and [b.attempts for b in again.previous.batches] == [1]
    assert again.limit("file:x") is None and not again.is_poison("file:x", "f:0", 10)
    assert again.serial_only()  # one batch in flight until those 10 records are committed past
    again.done("file:x", 10)
    assert not again.serial_only()
    again.begin("file:x", "f:0", 10)  # the same batch in flight again: its attempts carry over
    third = Inflight(tmp_path)
    third.load()
    assert third.limit("file:x") == 1  # read one record at a time for the length of that batch
    third.clear()
    fourth = Inflight(tmp_path)
    fourth.load()
    assert fourth.previous is None


@pytest.mark.parametrize("raw", ["", "{", "[]", '{"key": 1}', '{"key": "k", "first": "f", "count": -1, '
                                 '"attempts": 0, "careful": {}}', '{"key": "k", "first": "f", "count": 1, '
                                 '"attempts": 0, "careful": []}'])
def test_an_unreadable_note_is_ignored(tmp_path: Path, raw: str) -> None:
    (tmp_path / "inflight.json").write_text(raw)
    inflight = Inflight(tmp_path)
    inflight.load()
    assert inflight.previous is None and inflight.careful == {}


def test_note_round_trip() -> None:
    note = Note([Flying("k", "f", 3, 1), Flying("j", "g", 5, 0)], {"k": 2, "gone": 0}, {"j": 5})
    assert Note.from_json(json.loads(json.dumps(asdict(note)))) == Note(
        [Flying("k", "f", 3, 1), Flying("j", "g", 5, 0)], {"k": 2}, {"j": 5})


def test_a_note_of_the_serial_collector_is_still_read(tmp_path: Path) -> None:
    """inflight.json as the collector with one batch in flight wrote it (an upgrade right after a crash)."""
    old = {"key": "file:x", "first": "f:0", "count": 1, "attempts": 1, "careful": {"file:x": 1}}
    assert Note.from_json(old) == Note([Flying("file:x", "f:0", 1, 1)], {"file:x": 1}, {})
    (tmp_path / "inflight.json").write_text(json.dumps(old))
    inflight = Inflight(tmp_path)
    inflight.load()
    assert inflight.is_poison("file:x", "f:0", 1) and inflight.limit("file:x") == 1


def test_the_note_is_replaced_atomically_without_sync(tmp_path: Path, sync_calls: list[str]) -> None:
    """inflight.json must survive the process, not the machine: it is renamed into place, never fsynced
    (it is rewritten before every batch)."""
    inflight = Inflight(tmp_path)
    inflight.note([("file:x", "f:0", 3)])
    assert sync_calls == ["replace"]
    assert Note.from_json(json.loads((tmp_path / "inflight.json").read_text())) == Note([Flying("file:x", "f:0", 3)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inflight.json"]


def test_an_unwritable_note_is_only_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Inflight(tmp_path / "missing").note([("file:x", "f:0", 3)])  # never raises
    assert "cannot note the batches in flight" in caplog.text


def test_quarantine_file_is_bounded(tmp_path: Path) -> None:
    q = Quarantine(tmp_path, max_bytes=64 << 10)
    for i in range(100):
        q.add(source="s", position=str(i), raw="x" * 2000, reason="r")
    main, old = tmp_path / "quarantine.jsonl", tmp_path / "quarantine.jsonl.1"
    assert main.stat().st_size <= 64 << 10 and old.stat().st_size <= 64 << 10
    assert q.stats.count == 100 and q.stats.last_reason == "r"
    assert json.loads(main.read_text().splitlines()[-1])["position"] == "99"


def test_quarantine_survives_an_unwritable_directory(tmp_path: Path) -> None:
    q = Quarantine(tmp_path / "missing", max_bytes=64 << 10)
    q.add(source="s", position="p", raw="\udcff", reason="r")  # logs, counts, never raises
    assert q.stats.count == 1


@pytest.mark.parametrize("raw", [None, [], {"count": "x"}, {"count": -3, "last_at": "y"}, {"count": 2, "last_at": 5}])
def test_stats_from_any_json(raw: object) -> None:
    stats = QuarantineStats.from_json(raw)
    assert stats.count >= 0 and (stats.last_at is None or isinstance(stats.last_at, float))


def test_state_file_keeps_the_counters_across_restarts(tmp_path: Path) -> None:
    (tmp_path / "syslog").write_text(lines(3, poison_at=1))
    Collector(config(tmp_path), RecordingSink(poison="POISON")).run(once=True)
    with (tmp_path / "syslog").open("a") as fh:
        fh.write(lines(6, poison_at=4)[-2 * 40:])
    Collector(config(tmp_path), RecordingSink(poison="POISON")).run(once=True)
    assert state(tmp_path)["quarantine"]["count"] == 2  # type: ignore[index]
    assert os.stat(tmp_path / "state" / "quarantine.jsonl").st_mode & 0o077 == 0
