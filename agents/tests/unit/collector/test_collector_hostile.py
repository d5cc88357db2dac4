"""Hostile input: every input that once stopped a collector (issue 12), and property-based tests of every
parser and of the file reader. Invariants: a parser never raises, and its record fits the log table
(timestamp inside the storable range, valid UTF-8 text, bounded sizes, a pid that fits an int), which is
checked by serializing each row with the Cassandra driver's own column types, read from the table
definition in roles/cassandra/vars/main.yml."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cassandra import cqltypes
from collector_support import read_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iact_agents import storable
from iact_agents.collector.records import (
    FACILITIES,
    SEVERITIES,
    Record,
    parse_journal_entry,
    parse_json_line,
    parse_raw_line,
    parse_syslog,
)
from iact_agents.collector.sink import COLUMNS, row_values
from iact_agents.collector.tailer import FileTailer, TailParams

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
FALLBACK = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[4]

_CQL = {
    "text": cqltypes.UTF8Type,
    "date": cqltypes.SimpleDateType,
    "timestamp": cqltypes.DateType,
    "int": cqltypes.Int32Type,
    "boolean": cqltypes.BooleanType,
    "map<text, text>": cqltypes.MapType.apply_parameters([cqltypes.UTF8Type, cqltypes.UTF8Type]),
}


def _column_types() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "roles/cassandra/vars/main.yml").read_text(encoding="utf-8"))
    return {c["name"]: _CQL[c["type"]] for c in doc["__cassandra_log_columns"]}


COLUMN_TYPES = _column_types()


def assert_storable(rec: Record, raw_len: int) -> None:
    """The record fits the store: what the sink would send serializes with the table's column types."""
    assert rec.ts.tzinfo is not None and rec.ts.utcoffset() == timedelta(0)
    assert storable.TS_MIN <= rec.ts < storable.TS_MAX
    assert rec.pid is None or 0 <= rec.pid <= 2**31 - 1
    assert rec.severity is None or rec.severity in SEVERITIES
    assert rec.facility is None or rec.facility in FACILITIES.values()
    texts = [rec.message, rec.raw, rec.program or "", rec.hostname or "", *rec.fields, *rec.fields.values()]
    for text in texts:
        text.encode("utf-8")  # no lone surrogate
    bound = 4 * raw_len + 64  # compact JSON of a value may be a little longer than its source text
    assert sum(len(t) for t in texts) <= 3 * bound
    row = row_values("cass1", rec, store_raw=True, ingested_at=NOW)
    assert set(COLUMNS) == set(COLUMN_TYPES)
    for name, value in zip(COLUMNS, row, strict=True):
        if value is not None:
            COLUMN_TYPES[name].serialize(value, 4)


def syslog(line: str) -> Record:
    return parse_syslog(line, source="/var/log/syslog", position="p:1", fallback_ts=FALLBACK, now=NOW)


def json_line(line: str) -> Record:
    return parse_json_line(line, source="/var/log/iact/app.json.log", position="p:1", fallback_ts=FALLBACK)


def journal(entry: dict[str, Any] | str) -> Record:
    line = entry if isinstance(entry, str) else json.dumps(entry)
    return parse_journal_entry(line, source="journal", fallback_ts=FALLBACK)


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"__CURSOR": "s=1;i=2", "__REALTIME_TIMESTAMP": "1796040000000000", "MESSAGE": "hi",
                            "_HOSTNAME": "cass1"}
    base.update(fields)
    return base


# --- every input of issue 12, one by one ---------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "Nov 29 11:59:00 cass1 x[²]: hi",  # `logger -t 'x[²]' hi` as rsyslog writes it
    "2026-11-29T11:59:00.123456+00:00 cass1 x[²]: hi",
    "<13>Nov 29 11:59:00 cass1 x[²]: hi",
    "<13>1 2026-11-29T11:59:00Z cass1 x ² - - hi",  # RFC 5424 PROCID
    "Nov 29 11:59:00 cass1 x[٣]: hi",  # another non-ASCII digit
])
def test_syslog_pid_with_a_non_ascii_digit(line: str) -> None:
    rec = syslog(line)
    assert not rec.parse_error
    assert rec.program == "x" and rec.pid is None and rec.message == "hi"
    assert rec.fields["procid"] in ("²", "٣")
    assert_storable(rec, len(line))


def test_file_reader_survives_a_non_ascii_pid(tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    path.write_text("Nov 29 11:59:00 cass1 x[²]: hi\nNov 29 11:59:01 cass1 ok[1]: after\n", encoding="utf-8")
    tailer = FileTailer(str(path), "syslog", state=None, params=TailParams(rotate_wait_s=0))
    records: list[Record] = []
    for _ in range(5):
        batch = tailer.read_batch()
        if batch is not None:
            records += batch.records
            tailer.ack(batch)
    tailer.close()
    assert [r.message for r in records] == ["hi", "after"]
    assert records[0].pid is None and records[1].pid == 1


@pytest.mark.parametrize(("fields", "severity", "pid"), [
    ({"SYSLOG_IDENTIFIER": "x", "SYSLOG_PID": "²", "_PID": "²"}, None, None),
    ({"PRIORITY": "²"}, None, None),
    ({"PRIORITY": ["3", "6"]}, "err", None),  # PRIORITY given twice: journalctl lists the values
    ({"PRIORITY": [], "_PID": ["12", "13"]}, None, 12),
    ({"PRIORITY": 3, "_PID": 12}, None, None),  # numbers instead of strings: not the journal's format
    ({"PRIORITY": {"a": 1}, "SYSLOG_FACILITY": ["x"], "_HOSTNAME": ["a", "b"]}, None, None),
])
def test_journal_entry_with_odd_fields(fields: dict[str, Any], severity: str | None, pid: int | None) -> None:
    rec = journal(entry(**fields))
    assert not rec.parse_error
    assert rec.severity == severity and rec.pid == pid
    assert_storable(rec, 400)


@pytest.mark.parametrize("realtime", ["²", "-1", "99999999999999999999999", "1e6", "", None, ["1"]])
def test_journal_entry_with_an_unusable_time_is_a_parse_error(realtime: Any) -> None:
    rec = journal(entry(__REALTIME_TIMESTAMP=realtime))
    assert rec.parse_error and rec.ts == FALLBACK
    assert_storable(rec, 400)


@pytest.mark.parametrize("ts", [
    "NaN", "Infinity", "-Infinity", '"0001-01-01T00:00:00+01:00"', '"9999-12-31T23:30:00-05:00"',
    '"0001-01-01T00:00:00Z"', "1e400", "-5", str(10**400), '"2200-01-01T00:00:00Z"',
])
def test_json_line_with_an_unstorable_time_is_a_parse_error(ts: str) -> None:
    line = '{"ts": ' + ts + ', "message": "m"}'
    rec = json_line(line)
    assert rec.parse_error and rec.ts == FALLBACK and rec.raw == line and rec.message == "m"
    assert_storable(rec, len(line))


def test_json_line_nested_60000_levels_is_a_parse_error() -> None:
    line = '{"ts": "2026-11-29T11:00:00Z", "x": ' + "[" * 60_000 + "]" * 60_000 + "}"
    rec = json_line(line)
    assert rec.parse_error and rec.raw == line
    assert_storable(rec, len(line))


def test_json_line_with_a_lone_surrogate_is_stored_with_a_replacement_character() -> None:
    line = '{"ts": "2026-11-29T11:00:00Z", "message": "file \\udcff.txt", "path": "\\udcff", "\\udc80": 1}'
    rec = json_line(line)
    assert not rec.parse_error
    assert rec.message == "file \ufffd.txt" and rec.fields["path"] == "\ufffd" and rec.fields["\ufffd"] == "1"
    assert_storable(rec, len(line))


def test_json_line_with_nan_in_a_field_keeps_the_line() -> None:
    rec = json_line('{"ts": "2026-11-29T11:00:00Z", "message": "m", "ratio": NaN}')
    assert not rec.parse_error and rec.fields["ratio"] == "NaN"


def test_json_line_with_a_bom_parses() -> None:
    rec = json_line('\ufeff{"ts": "2026-11-29T11:00:00Z", "message": "m"}')
    assert not rec.parse_error and rec.message == "m"


def test_journal_entry_with_a_lone_surrogate_and_a_bad_cursor() -> None:
    rec = journal(entry(MESSAGE="\udcff", SYSLOG_IDENTIFIER="\ud800x"))
    assert rec.message == "\ufffd" and rec.program == "\ufffdx"
    assert_storable(rec, 400)
    bad_cursor = journal(entry(__CURSOR="s=1\x00;i=2"))  # would break journalctl --after-cursor
    assert bad_cursor.parse_error and bad_cursor.position.startswith("unparsed:")


def test_syslog_line_with_a_time_outside_the_storable_range() -> None:
    rec = syslog("0001-01-01T00:00:00+01:00 cass1 x[1]: hi")
    assert rec.parse_error and rec.ts == FALLBACK
    assert_storable(rec, 60)


# --- properties -------------------------------------------------------------------------------------------

PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Building blocks of syslog lines: a mix of valid shapes and hostile pieces.
_digits = st.text(alphabet="0123456789²³¹\u0663\u0664\u06f5", min_size=0, max_size=12)  # ASCII and other digits
_word = st.text(alphabet=st.characters(blacklist_categories=("Cc",)), min_size=0, max_size=20)
_stamp = st.one_of(
    st.builds(lambda m, d, t: f"{m} {d:>2} {t}", st.sampled_from(["Nov", "Feb", "Xyz", "nov"]),
              st.integers(0, 40), st.sampled_from(["11:59:00", "24:00:00", "99:99:99", "1:2:3"])),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.isoformat()).flatmap(
        lambda s: st.sampled_from([s + "Z", s + "+01:00", s + "-05:00", s + "+0130", s])),
    _word,
)


@st.composite
def syslog_lines(draw: st.DrawFn) -> str:
    pri = draw(st.one_of(st.just(""), _digits.map(lambda d: f"<{d}>")))
    if draw(st.booleans()):  # RFC 5424
        parts = [f"{pri}1", draw(_stamp), draw(_word), draw(_word), draw(_digits), draw(_word)]
        sd = draw(st.sampled_from(["-", '[x a="b"]', '[x a="\\"]', "[", '[x@1 a="1"][y b="2"]', ""]))
        return " ".join([*parts, sd, draw(_word)])
    tag = draw(st.one_of(st.just(""), st.builds(lambda p, d: f"{p}[{d}]: ", _word, _digits),
                         _word.map(lambda p: p + ": ")))
    return f"{pri}{draw(_stamp)} {draw(_word)} {tag}{draw(_word)}"


@PROPS
@given(st.one_of(syslog_lines(), st.text()))
def test_property_syslog_parser(line: str) -> None:
    assert_storable(syslog(line), len(line))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children,
                                                                             max_size=4)),
    max_leaves=20,
)
_ts_values = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.isoformat() + "Z"),
    st.floats(), st.integers(), st.text(max_size=40), json_values,
)


@st.composite
def json_lines(draw: st.DrawFn) -> str:
    obj = draw(st.dictionaries(st.sampled_from(["message", "msg", "level", "logger", "pid", "host", "x", "y"]),
                               json_values, max_size=6))
    obj["ts"] = draw(_ts_values)
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut]  # truncated lines
    return text


@PROPS
@given(st.one_of(json_lines(), st.text()))
def test_property_json_line_parser(line: str) -> None:
    rec = json_line(line)
    assert_storable(rec, len(line))
    assert rec.raw == storable.clean_text(line)


@st.composite
def journal_lines(draw: st.DrawFn) -> str:
    keys = ["MESSAGE", "PRIORITY", "SYSLOG_FACILITY", "SYSLOG_IDENTIFIER", "_COMM", "_PID", "SYSLOG_PID",
            "_HOSTNAME", "_SYSTEMD_UNIT", "_TRANSPORT", "_UID", "_BOOT_ID"]
    value = st.one_of(_digits, st.text(max_size=20), st.lists(st.integers(-1, 300), max_size=8),
                      st.lists(st.one_of(_digits, st.text(max_size=5)), max_size=3), json_values)
    obj: dict[str, Any] = draw(st.dictionaries(st.sampled_from(keys), value, max_size=8))
    obj["__CURSOR"] = draw(st.one_of(st.just("s=1;i=2"), st.text(max_size=20), json_values))
    obj["__REALTIME_TIMESTAMP"] = draw(st.one_of(st.integers(-(10**20), 10**20).map(str), _digits, json_values))
    return json.dumps(obj, ensure_ascii=draw(st.booleans()))


@PROPS
@given(st.one_of(journal_lines(), st.text()))
def test_property_journal_parser(line: str) -> None:
    rec = parse_journal_entry(line, source="journal", fallback_ts=FALLBACK)
    assert_storable(rec, len(line))
    assert rec.position and rec.position.isprintable()


@PROPS
@given(st.text())
def test_property_raw_parser(line: str) -> None:
    assert_storable(parse_raw_line(line, source="x", position="p", fallback_ts=FALLBACK), len(line))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.one_of(st.binary(max_size=300), syslog_lines().map(lambda s: s.encode("utf-8", "replace")),
                               json_lines().map(lambda s: s.encode("utf-8", "replace"))), max_size=12),
       fmt=st.sampled_from(["syslog", "json", "raw"]))
def test_property_file_reader(tmp_path_factory: pytest.TempPathFactory, data: list[bytes], fmt: str) -> None:
    """The whole file path: bytes (invalid UTF-8, CR, NUL, over-long lines) -> lines -> records."""
    path = tmp_path_factory.mktemp("reader") / "log"
    blob = b"\n".join(data) + b"\n"
    path.write_bytes(blob)
    tailer = FileTailer(str(path), fmt,  # type: ignore[arg-type]
                        state=None, params=TailParams(rotate_wait_s=0, max_line_bytes=128, batch_lines=7))
    records = read_all(tailer, len(blob) + 5)
    if records:
        assert len({r.position for r in records}) == len(records)
    for rec in records:
        assert_storable(rec, 128)
    os.unlink(path)


def test_day_of_every_storable_instant_is_a_date() -> None:
    for ts in (storable.TS_MIN, storable.TS_MAX - timedelta(microseconds=1)):
        rec = Record(source="s", position="p", ts=ts, message="", raw="")
        assert isinstance(rec.day, date)
