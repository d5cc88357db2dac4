"""The file parsers and reader made cheaper (issue 17, part 1) give every record field identical to the old code
(records_reference.py, a frozen copy) for every input: the captured fixtures, hostile generated lines (syslog
shapes, arbitrary text with lone surrogates, huge fields, bad dates, RFC 5424 structured data, JSON), several
lines through one parser (its remembered timestamps), and whole files through the file reader (invalid UTF-8,
CR, over-long lines, batches)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import records_reference as old
from collector_support import read_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iact_agents.collector.position import FileIdentity, FileState, file_position, fingerprint
from iact_agents.collector.records import (
    Record,
    json_line_parser,
    parse_json_line,
    parse_raw_line,
    parse_syslog,
    syslog_parser,
)
from iact_agents.collector.source import ts_us
from iact_agents.collector.tailer import FileTailer, TailParams
from test_collector_hostile import json_lines, syslog_lines

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "collector"
NOW = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
FALLBACK = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
ZONES: list[tzinfo] = [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/St_Johns"), ZoneInfo("Pacific/Kiritimati")]
NOWS = [NOW, datetime(2026, 12, 31, 23, 30, tzinfo=UTC), datetime(2027, 1, 1, 0, 5, tzinfo=UTC),
        datetime(2028, 2, 29, 12, 0, tzinfo=UTC), datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)]
PROPS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(new: Record, ref: Record) -> None:
    """Every field identical, including the timestamp's zone object and the order of the fields map."""
    assert repr(new) == repr(ref)
    assert new == ref
    assert type(new.pid) is type(ref.pid)


def syslog_both(line: str, now: datetime = NOW, zone: tzinfo = UTC) -> None:
    new = parse_syslog(line, source="s", position="p:1", fallback_ts=FALLBACK, now=now, zone=zone)
    ref = old.parse_syslog(line, source="s", position="p:1", fallback_ts=FALLBACK, now=now, zone=zone)
    same(new, ref)


def json_both(line: str) -> None:
    same(parse_json_line(line, source="j", position="p:1", fallback_ts=FALLBACK),
         old.parse_json_line(line, source="j", position="p:1", fallback_ts=FALLBACK))


# --- the captured fixtures -------------------------------------------------------------------------------

FIXTURE_FILES = ["syslog_traditional.log", "syslog_rfc3339.log", "auth.log", "rfc5424.log", "garbage.log",
                 "app.json.log", "journal.json"]


@pytest.mark.parametrize("name", FIXTURE_FILES)
@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_fixtures_parse_as_before(name: str, zone: tzinfo) -> None:
    lines = (FIXTURES / name).read_text(encoding="utf-8").split("\n")[:-1]
    assert lines
    for now in NOWS:
        parse = syslog_parser(name, now, zone)  # one parser for the whole file, as the reader uses one per batch
        for i, line in enumerate(lines):
            pos = f"t:{i:04d}"
            ref = old.parse_syslog(line, source=name, position=pos, fallback_ts=FALLBACK, now=now, zone=zone)
            same(parse(line, pos, FALLBACK), ref)
            same(parse_syslog(line, source=name, position=pos, fallback_ts=FALLBACK, now=now, zone=zone), ref)
    for i, line in enumerate(lines):
        same(json_line_parser(name)(line, f"t:{i}", FALLBACK),
             old.parse_json_line(line, source=name, position=f"t:{i}", fallback_ts=FALLBACK))
        same(parse_raw_line(line, source=name, position="r", fallback_ts=FALLBACK),
             old.parse_raw_line(line, source=name, position="r", fallback_ts=FALLBACK))


# --- generated lines -----------------------------------------------------------------------------------------

_any_char = st.characters(blacklist_categories=())  # surrogates included
_any_text = st.text(_any_char, max_size=80)
_sd_value = st.text(st.sampled_from(list('ab"\\] =[\u00e9\ud800')), max_size=8)
_sd_element = st.builds(
    lambda sid, params: f"[{sid}{''.join(f' {k}={v}' for k, v in params)}]",
    st.sampled_from(["x", "x@1", "timeQuality", "", "a b", "é"]),
    st.lists(st.tuples(st.sampled_from(["a", "tzKnown", "k=", "\u00e9", ""]),
                       st.one_of(_sd_value.map(lambda v: f'"{v}"'), _sd_value)), max_size=3),
)


@st.composite
def rfc5424_lines(draw: st.DrawFn) -> str:
    pri = draw(st.one_of(st.integers(0, 200).map(str), st.sampled_from(["", "0013", "999", "1a"])))
    stamp = draw(st.one_of(
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(datetime.isoformat)
        .flatmap(lambda s: st.sampled_from([s + "Z", s + "+01:00", s + "-0530", s + "123Z", s, s.replace("T", " ")])),
        st.sampled_from(["-", "2026-11-27T18:44:13.038969123+00:00", "2026-13-27T18:44:13Z", "2026-11-27T25:00:00Z",
                         "0001-01-01T00:00:00+01:00", "2200-01-01T00:00:00Z", "2199-12-31T23:59:59.999999Z"]),
    ))
    fields = [draw(st.sampled_from(["cass1", "-", "é"])) for _ in range(2)]
    procid = draw(st.sampled_from(["-", "42", "2147483648", "²", "0x1"]))
    msgid = draw(st.sampled_from(["-", "ID47"]))
    sd = draw(st.one_of(st.just("-"), st.lists(_sd_element, min_size=1, max_size=3).map("".join)))
    msg = draw(st.one_of(st.just(""), _any_text, _any_text.map(lambda m: "\ufeff" + m)))
    sep = draw(st.sampled_from([" ", "", "  "]))
    return f"<{pri}>1 {stamp} {fields[0]} {fields[1]} {procid} {msgid} {sd}{sep}{msg}"


@st.composite
def traditional_lines(draw: st.DrawFn) -> str:
    """The traditional and high-precision layouts with every part varied, bad dates and huge fields included."""
    pri = draw(st.sampled_from(["", "<13>", "<191>", "<192>", "<0>", "<1000>", "<86>"]))
    stamp = draw(st.one_of(
        st.builds(lambda m, d, hms, frac: f"{m} {d:>2} {hms}{frac}",
                  st.sampled_from(["Jan", "Feb", "Nov", "Dec", "Xyz", "nov"]), st.integers(0, 32),
                  st.sampled_from(["00:00:00", "23:59:59", "12:30:05", "24:00:00", "99:99:99"]),
                  st.sampled_from(["", ".1", ".123456", ".1234567890"])),
        st.builds(lambda d, frac, zone, sep: d.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + zone,
                  st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
                  st.sampled_from(["", ".1", ".123456", ".1234567", ".123456789"]),
                  st.sampled_from(["Z", "+00:00", "+0000", "-05:00", "+1400", "-2359", "+24:00"]),
                  st.sampled_from(["T", " "])),
        st.sampled_from(["2026-02-30T10:00:00Z", "2026-11-27T18:33:60+00:00", "1969-12-31T23:59:59Z",
                         "2200-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"]),
    ))
    host = draw(st.one_of(st.sampled_from(["cass1", "é", "h\u00a0x"]), st.just("h" * 70_000)))
    prog = draw(st.one_of(st.just(""), st.sampled_from(["sshd", "x y", "systemd-logind", "é"]),
                          st.just("p" * 200)))
    pid = draw(st.one_of(st.just(None), st.sampled_from(["1", "65", "2147483647", "2147483648", "²", "", "a b",
                                                         "9" * 11, "0"])))
    tag = "" if not prog else prog + (f"[{pid}]" if pid is not None else "") + draw(st.sampled_from([": ", ":", ""]))
    msg = draw(st.one_of(_any_text, st.just("m" * 100_000), st.just("a\rb\x00c")))
    sep = draw(st.sampled_from([" ", "  ", "\t"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return f"{bom}{pri}{stamp}{sep}{host} {tag}{msg}"


ANY_LINE = st.one_of(traditional_lines(), rfc5424_lines(), syslog_lines(), _any_text, st.text(max_size=300))


@PROPS
@given(line=ANY_LINE, now=st.sampled_from(NOWS), zone=st.sampled_from(ZONES))
def test_property_syslog_parses_as_before(line: str, now: datetime, zone: tzinfo) -> None:
    syslog_both(line, now, zone)


@PROPS
@given(lines=st.lists(st.one_of(traditional_lines(), st.sampled_from(["Nov 27 18:33:23 h p: x", "Nov 27 18:33:23 h"])),
                      max_size=20),
       now=st.sampled_from(NOWS), zone=st.sampled_from(ZONES))
def test_property_one_parser_for_many_lines_as_before(lines: list[str], now: datetime, zone: tzinfo) -> None:
    """One parser remembers the year of each timestamp text: lines that share one get what parsing alone gives."""
    parse = syslog_parser("s", now, zone)
    fallback = FALLBACK
    for i, line in enumerate(lines):
        ref = old.parse_syslog(line, source="s", position=str(i), fallback_ts=fallback, now=now, zone=zone)
        same(parse(line, str(i), fallback), ref)
        fallback = ref.ts if not ref.parse_error else fallback


@PROPS
@given(st.one_of(json_lines(), _any_text, st.text(max_size=300),
                 st.sampled_from(['{"ts": "2026-11-27T18:33:23.123456789Z", "msg": "x"}', '{"ts": 1.7e9}', "[]",
                                  '{"ts": NaN, "pid": true, "level": 3}', '\ufeff{"ts": "2026-11-27T18:33:23Z"}'])))
def test_property_json_lines_parse_as_before(line: str) -> None:
    json_both(line)


def test_huge_and_odd_lines_parse_as_before() -> None:
    for line in ["", "\ufeff", "<", "<13>", "<13>1 ", "\ud800", "Nov 27 18:33:23 " + "h" * 200_000,
                 "2026-11-27T18:33:23.123456+00:00 h " + "p" * 129 + "[1]: x",
                 "Nov 27 18:33:23 h p[" + "1" * 40 + "]: x",
                 "<13>1 2026-11-27T18:44:13Z h a - - [x a=\"" + "v" * 100_000 + "\"] m"]:
        syslog_both(line)
        json_both(line)


# --- the file reader ----------------------------------------------------------------------------------------

def read_reference(data: bytes, source: str, ident: FileIdentity, fmt: str, max_line: int, wall: datetime,
                   last_ts: datetime) -> list[Record]:
    """What the old reader made of a file: the old line split, each line decoded, the old row key and parser, the
    timestamp of the last good line for unparsed ones."""
    lines, _ = old.split_lines(data, len(data) + 1, max_line, flush=False)
    out = []
    fallback = last_ts
    for start, chunk in lines:
        line = chunk.decode("utf-8", "replace")
        pos = old.file_position(ident.file_id, start)
        if fmt == "syslog":
            rec = old.parse_syslog(line, source=source, position=pos, fallback_ts=fallback, now=wall, zone=UTC)
        elif fmt == "json":
            rec = old.parse_json_line(line, source=source, position=pos, fallback_ts=fallback)
        else:
            rec = old.parse_raw_line(line, source=source, position=pos, fallback_ts=fallback)
        if not rec.parse_error:
            fallback = rec.ts
        out.append(rec)
    return out


def read_new(path: Path, fmt: str, params: TailParams, wall: datetime, last_ts: datetime) -> tuple[FileIdentity,
                                                                                                   list[Record]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        st_ = os.fstat(fd)
        fp = fingerprint(fd, params.fingerprint_bytes)
    finally:
        os.close(fd)
    assert fp is not None
    ident = FileIdentity(st_.st_dev, st_.st_ino, fp, 0)
    state = FileState(str(path), ident.dev, ident.ino, fp, 0, 0, ts_us(last_ts), ())
    tailer = FileTailer(str(path), fmt, state=state, params=params,  # type: ignore[arg-type]
                        wall_clock=lambda: wall)
    return ident, read_all(tailer, len(path.read_bytes()) + 5)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.one_of(
           st.binary(max_size=300), traditional_lines().map(lambda s: s[:3000].encode("utf-8", "surrogatepass")),
           syslog_lines().map(lambda s: s.encode("utf-8", "replace")),
           rfc5424_lines().map(lambda s: s.encode("utf-8", "surrogatepass")),
           json_lines().map(lambda s: s.encode("utf-8", "replace")), st.sampled_from([b"\r", b"x\r", b"\xff\xfe"])),
           max_size=15),
       newline=st.sampled_from([b"\n", b"\r\n"]), fmt=st.sampled_from(["syslog", "json", "raw"]),
       batch_lines=st.sampled_from([1, 3, 500]), max_line=st.sampled_from([64, 128, 4096]),
       wall=st.sampled_from(NOWS))
def test_property_file_reader_reads_as_before(tmp_path_factory: pytest.TempPathFactory, parts: list[bytes],
                                              newline: bytes, fmt: str, batch_lines: int, max_line: int,
                                              wall: datetime) -> None:
    path = tmp_path_factory.mktemp("diff") / "log"
    data = b"\n" + newline.join(parts) + b"\n"  # (a first line, so that the file has its identity at once)
    path.write_bytes(data)
    last_ts = wall - timedelta(hours=1)
    params = TailParams(batch_lines=batch_lines, max_line_bytes=max_line, rotate_wait_s=0)
    ident, got = read_new(path, fmt, params, wall, last_ts)
    expected = read_reference(data, str(path), ident, fmt, max_line, wall, last_ts)
    assert len(got) == len(expected)
    for new, ref in zip(got, expected, strict=True):
        same(new, ref)
    os.unlink(path)


def test_file_position_is_the_old_row_key() -> None:
    for offset in (0, 1, 9, 10**15, 10**16 - 1, 10**16, 10**20, -1):
        assert file_position("f" * 20, offset) == old.file_position("f" * 20, offset)
