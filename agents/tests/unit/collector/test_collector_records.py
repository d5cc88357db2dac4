"""Parsers on real captured lines (agents/tests/fixtures/collector/README.md), with golden expectations.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest ...`` (each rewritten file
fails that run), review the diff and run again without it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from iact_agents.collector.records import (
    Record,
    parse_journal_entry,
    parse_json_line,
    parse_rfc3339,
    parse_syslog,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "collector"
GOLDEN = FIXTURES / "golden"
NOW = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
FALLBACK = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)

CASES = {
    "syslog_traditional.log": "syslog",
    "syslog_rfc3339.log": "syslog",
    "auth.log": "syslog",
    "rfc5424.log": "syslog",
    "garbage.log": "syslog",
    "app.json.log": "json",
    "journal.json": "journal",
    "journal_special.json": "journal",
}


def parse_file(name: str) -> list[Record]:
    fmt = CASES[name]
    out: list[Record] = []
    fallback = FALLBACK
    for i, line in enumerate((FIXTURES / name).read_text(encoding="utf-8").split("\n")[:-1]):
        pos = f"test:{i:04d}"
        if fmt == "syslog":
            rec = parse_syslog(line, source=name, position=pos, fallback_ts=fallback, now=NOW)
        elif fmt == "json":
            rec = parse_json_line(line, source=name, position=pos, fallback_ts=fallback)
        else:
            rec = parse_journal_entry(line, source="journal", fallback_ts=fallback)
        if not rec.parse_error:
            fallback = rec.ts
        out.append(rec)
    return out


def as_json(rec: Record) -> dict[str, Any]:
    return {
        "position": rec.position, "ts": rec.ts.isoformat(), "day": rec.day.isoformat(),
        "parse_error": rec.parse_error, "facility": rec.facility, "severity": rec.severity, "program": rec.program,
        "pid": rec.pid, "hostname": rec.hostname, "message": rec.message, "fields": rec.fields,
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    got = [as_json(r) for r in parse_file(name)]
    golden = GOLDEN / (name + ".golden.json")
    expected = json.loads(golden.read_text(encoding="utf-8")) if golden.exists() else None
    if got != expected and os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        pytest.fail(f"{golden.name} rewritten: review its diff, then run again without UPDATE_GOLDEN")
    assert got == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_line_is_dropped_and_raw_is_kept(name: str) -> None:
    lines = (FIXTURES / name).read_text(encoding="utf-8").split("\n")[:-1]
    records = parse_file(name)
    assert len(records) == len(lines)
    assert [r.raw for r in records] == lines


@pytest.mark.parametrize("name", ["syslog_traditional.log", "syslog_rfc3339.log", "auth.log", "rfc5424.log",
                                  "journal.json", "journal_special.json"])
def test_real_captures_parse_cleanly(name: str) -> None:
    records = parse_file(name)
    assert not [r.raw for r in records if r.parse_error]
    assert all(r.hostname and r.hostname.startswith("cass") for r in records)


def test_traditional_line() -> None:
    rec = parse_syslog("Nov 27 18:33:21 cass1 sshd[65]: Server listening on 0.0.0.0 port 22.",
                       source="s", position="p", fallback_ts=FALLBACK, now=NOW)
    assert (rec.ts, rec.hostname, rec.program, rec.pid, rec.message) == (
        datetime(2026, 11, 27, 18, 33, 21, tzinfo=UTC), "cass1", "sshd", 65, "Server listening on 0.0.0.0 port 22.")
    assert rec.facility is None and rec.severity is None and not rec.parse_error


def test_rfc3339_high_precision_both_offset_spellings() -> None:
    for text in ("2026-11-27T18:33:23.123456+00:00", "2026-11-27T18:33:23.123456+0000",
                 "2026-11-27T19:33:23.123456+01:00"):
        rec = parse_syslog(f"{text} cass2 systemd[1]: Started x.", source="s", position="p",
                           fallback_ts=FALLBACK, now=NOW)
        assert rec.ts == datetime(2026, 11, 27, 18, 33, 23, 123456, tzinfo=UTC), text
        assert (rec.program, rec.pid, rec.message) == ("systemd", 1, "Started x.")


def test_year_is_inferred_around_new_year() -> None:
    jan_first = datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC)
    rec = parse_syslog("Dec 31 23:59:59 h p: late", source="s", position="p", fallback_ts=FALLBACK, now=jan_first)
    assert rec.ts.year == 2026
    rec = parse_syslog("Jan  1 00:00:10 h p: early", source="s", position="p", fallback_ts=FALLBACK, now=jan_first)
    assert rec.ts == datetime(2027, 1, 1, 0, 0, 10, tzinfo=UTC)


def test_traditional_timestamps_use_the_configured_zone() -> None:
    rec = parse_syslog("Nov 27 18:33:21 h p: x", source="s", position="p", fallback_ts=FALLBACK, now=NOW,
                       zone=ZoneInfo("Europe/Berlin"))
    assert rec.ts == datetime(2026, 11, 27, 17, 33, 21, tzinfo=UTC)


def test_rfc5424_facilities_and_structured_data() -> None:
    recs = {r.message: r for r in parse_file("rfc5424.log")}
    assert recs["fixture message authpriv.notice"].facility == "auth"
    assert recs["fixture message authpriv.notice"].fields["facility_code"] == "10"
    assert recs["fixture message auth.info"].facility == "auth"
    assert recs["fixture message local0.debug"].facility == "local0"
    assert recs["fixture message local0.debug"].severity == "debug"
    sd = recs["with msgid and sd"]
    assert sd.fields["msgid"] == "ID47" and sd.fields["sd.exampleSDID@32473.eventSource"] == "App"
    assert sd.program == "app"


def test_rfc5424_nanoseconds_and_escapes() -> None:
    line = r'<165>1 2026-11-27T18:50:03.123456789Z h app 77 ID1 [a@1 k="x\"y\]z"] hello'
    rec = parse_syslog(line, source="s", position="p", fallback_ts=FALLBACK, now=NOW)
    assert not rec.parse_error
    assert rec.ts == datetime(2026, 11, 27, 18, 50, 3, 123456, tzinfo=UTC)
    assert (rec.facility, rec.severity, rec.pid, rec.message) == ("local4", "notice", 77, "hello")
    assert rec.fields["sd.a@1.k"] == 'x"y]z'


def test_unparseable_lines_keep_raw_and_the_last_good_timestamp() -> None:
    recs = parse_file("garbage.log")
    good = recs[0]
    assert not good.parse_error
    bad = [r for r in recs if r.parse_error]
    assert {r.raw for r in bad} >= {"", "-- MARK --", "Feb 30 12:00:00 cass1 bad[1]: no such day"}
    assert all(r.ts == good.ts and r.message == r.raw for r in bad[:3])


def test_journal_facility_mapping_and_binary_message() -> None:
    recs = parse_file("journal_special.json")
    by_prog = {r.program: r for r in recs}
    assert by_prog["sudo"].facility == "auth"  # authpriv (10)
    assert by_prog["sshd"].facility == "auth"  # auth (4)
    assert by_prog["iact-bin"].message == "bin\x01ary\ufffd payload"
    assert by_prog["iact-bin"].fields["message_binary"] == "true"
    kern = [r for r in parse_file("journal.json") if r.program == "kernel"]
    assert kern and all(r.facility == "kern" for r in kern)
    assert all(r.position.startswith("s=") for r in recs)


def test_journal_entry_without_cursor_is_kept() -> None:
    rec = parse_journal_entry('{"MESSAGE": "x"}', source="journal", fallback_ts=FALLBACK)
    assert rec.parse_error and rec.position.startswith("unparsed:") and rec.ts == FALLBACK
    again = parse_journal_entry('{"MESSAGE": "x"}', source="journal", fallback_ts=FALLBACK)
    assert again.position == rec.position


def test_json_lines() -> None:
    recs = parse_file("app.json.log")
    first = recs[0]
    assert (first.severity, first.program, first.message) == ("info", "iact_agents.dora.ingest", "ingested 12 events")
    assert first.fields == {"accepted": "12", "rejected": "0"}
    second = recs[1]
    assert second.hostname == "cass1" and second.pid == 4242
    assert second.fields["check"] == '{"latency_ms":2300,"name":"cql"}'
    assert recs[2].ts == datetime.fromtimestamp(1795804803.5, UTC) and recs[2].severity == "err"
    assert recs[3].ts == datetime(2026, 11, 27, 18, 40, 4, 1, tzinfo=UTC)
    assert recs[4].parse_error and recs[4].message == "no timestamp at all"
    assert recs[5].parse_error and recs[5].message == "this is not json"
    assert recs[7].parse_error


def test_rfc3339_rejects_naive_and_garbage() -> None:
    assert parse_rfc3339("2026-11-27T18:33:23") is None
    assert parse_rfc3339("-") is None
    assert parse_rfc3339("yesterday") is None
