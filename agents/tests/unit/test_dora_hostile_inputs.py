"""Issue 12, DORA half, without a database: every input that once crashed ingest or compute, and the
functions that turn events and rejections into rows and server errors into exit codes.

The same inputs run end to end against MariaDB in agents/tests/integration/dora/test_dora_hostile.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

import pymysql
import pytest
from iact_agents import storable
from iact_agents.dora.metrics import Window, compute_metrics
from iact_agents.dora.models import (
    MAX_LINE_BYTES,
    RAW_PREFIX_BYTES,
    Deployment,
    Incident,
    parse_document,
    parse_events,
)
from iact_agents.dora.snapshot import snapshot_rows
from iact_agents.dora.store import (
    SkippedRow,
    StoreRefused,
    dead_letter_row,
    event_from_row,
    event_row,
    failure,
    is_unreachable,
)
from iact_agents.errors import ServiceUnavailable


def dep(sid: str = "d-1", **over: Any) -> str:
    return json.dumps({"type": "deployment", "source_event_id": sid, "service": "checkout",
                       "environment": "production", "deployed_at": "2026-11-02T10:15:00Z", "status": "success",
                       **over})


def inc(sid: str = "i-1", **over: Any) -> str:
    return json.dumps({"type": "incident", "source_event_id": sid, "service": "checkout",
                       "started_at": "2026-11-02T11:00:00Z", **over})


# --- timestamps -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("deployed_at", "0001-01-01T00:30:00+01:00"),  # overflowed on its way to UTC: exit 1, file lost
    ("deployed_at", "0001-01-01T00:00:00Z"),  # Go's zero time: stored, then every compute failed
    ("deployed_at", "9999-12-31T23:59:59-05:00"),  # overflows the other way
    ("deployed_at", "1969-12-31T23:59:59Z"),
    ("started_at", "2200-01-01T00:00:00Z"),
])
def test_timestamps_outside_the_storable_range_are_rejected_with_field(field: str, value: str) -> None:
    result = parse_events([dep("ok"), dep("bad", **{field: value}), dep("ok2")])
    assert [e.source_event_id for e in result.accepted] == ["ok", "ok2"]
    (rej,) = result.rejected
    assert (rej.line, rej.field, rej.source_event_id) == (2, field, "bad")
    assert "outside the storable range 1970-01-01 .. 2200-01-01 UTC" in rej.reason


def test_edges_of_the_range_are_accepted_in_utc() -> None:
    result = parse_events([inc("a", started_at="1970-01-01T01:00:00+01:00"),
                           inc("b", started_at="2199-12-31T23:59:59.999999Z")])
    assert [e.started_at for e in result.accepted if isinstance(e, Incident)] == [
        datetime(1970, 1, 1, tzinfo=UTC), datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]


# --- JSON that the decoder cannot take ------------------------------------------------------------------

def test_deep_nesting_is_a_rejection_not_a_crash() -> None:
    deep = "[" * 60_000 + "]" * 60_000
    for result in (parse_events([dep("a"), deep, dep("b")]),
                   parse_document(f"{dep('a')}\n{deep}\n{dep('b')}\n"),
                   parse_document(deep)):
        assert all(r.reason == "not valid JSON: nested too deeply" for r in result.rejected)
        assert len(result.rejected) == 1
    obj = '{"events": [' + "[" * 60_000 + "]" * 60_000 + "]}"
    assert parse_document(obj).rejected[0].reason == "not valid JSON: nested too deeply"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejections(token: str) -> None:
    text = dep().replace('"status"', f'"version": {token}, "status"')
    (rej,) = parse_events([text]).rejected
    assert (rej.field, rej.reason) == ("(event)", f"not valid JSON: {token} is not a JSON number")


def test_nan_in_a_json_document_rejects_only_its_event() -> None:
    # Found by test_dora_properties: storable.loads refusing NaN for the whole document made one bad
    # event a rejection of the whole array.
    doc = json.dumps([json.loads(dep("a")), {**json.loads(dep("b")), "version": float("nan")}])
    result = parse_document(doc)
    assert [e.source_event_id for e in result.accepted] == ["a"]
    assert [(r.line, r.field) for r in result.rejected] == [(2, "version")]


def test_bom_before_the_first_line_is_ignored() -> None:
    text = "\ufeff" + dep("a") + "\n" + dep("b") + "\n"
    for data in (text, text.encode("utf-8")):
        result = parse_document(data)
        assert [e.source_event_id for e in result.accepted] == ["a", "b"]
        assert result.rejected == []
    wrapped = "\ufeff" + json.dumps({"events": [json.loads(dep("a"))]})
    assert len(parse_document(wrapped).accepted) == 1


def test_line_separators_inside_strings_do_not_split_a_line() -> None:
    # str.splitlines() split on U+2028 (legal unescaped in a JSON string) and broke the line in two.
    result = parse_document(inc(title="first\u2028second").replace("\\u2028", "\u2028"))
    assert [e.title for e in result.accepted if isinstance(e, Incident)] == ["first\u2028second"]


# --- text that is not UTF-8 -----------------------------------------------------------------------------

def test_invalid_utf8_is_one_rejected_line() -> None:
    data = dep("a").encode() + b"\n" + b'{"type": "\xff\xfe"}\r\n' + dep("b").encode()
    result = parse_document(data)
    assert [e.source_event_id for e in result.accepted] == ["a", "b"]
    (rej,) = result.rejected
    assert (rej.line, rej.field) == (2, "(event)")
    assert rej.reason.startswith("not valid UTF-8 (invalid start byte at byte 11")
    assert rej.raw == '{"type": "\ufffd\ufffd"}'
    assert rej.raw_sha256 == hashlib.sha256(b'{"type": "\xff\xfe"}').hexdigest()


def test_lone_surrogates_are_replaced_in_text_and_refused_in_ids() -> None:
    result = parse_events([inc("t", title="disk \udcff full", deployment_id="d"),
                           inc("id-\udcff"),
                           dep("links", change_ids=["ok", "bad\ud800"]),
                           dep("key").replace('"status"', '"\\udcff": 1, "status"')])
    (title,) = result.accepted
    assert isinstance(title, Incident) and title.title == "disk \ufffd full"
    fields = [(r.line, r.field) for r in result.rejected]
    assert fields == [(2, "source_event_id"), (3, "change_ids.1"), (4, "(event)")]
    assert "lone surrogate" in result.rejected[0].reason
    for rej in result.rejected:
        for value in dead_letter_row(rej, "in\udcff.jsonl", None):
            assert not isinstance(value, str) or storable.is_clean_text(value)
    assert dead_letter_row(result.rejected[0], "f", None)[4] == "id-\ufffd"


# --- size -----------------------------------------------------------------------------------------------

def test_a_line_over_the_maximum_is_rejected_unparsed_with_a_bounded_prefix() -> None:
    big = inc("big", title="é" * 10_000_000)  # 20 MB, valid JSON, and a valid event but for its length
    data = f"{dep('a')}\n{big}\n{dep('naive', deployed_at='2026-11-02T10:15:00')}\n{dep('b')}\n".encode()
    result = parse_document(data)
    assert [e.source_event_id for e in result.accepted] == ["a", "b"]
    too_long, naive = result.rejected
    assert (too_long.line, too_long.field, naive.line, naive.field) == (2, "(event)", 3, "deployed_at")
    assert too_long.reason == (f"line is {len(big.encode())} bytes, longer than the maximum of {MAX_LINE_BYTES} "
                               f"bytes (kept its first {RAW_PREFIX_BYTES})")
    assert len(too_long.raw.encode()) <= RAW_PREFIX_BYTES and big.startswith(too_long.raw)
    assert too_long.raw_sha256 == hashlib.sha256(big.encode()).hexdigest()
    assert len(parse_document(big[: MAX_LINE_BYTES - 100] + '"}').rejected) == 1  # under the limit: parsed
    # A JSON document's events are held to the same maximum.
    doc = parse_document(json.dumps([json.loads(dep("a")), {"title": "x" * MAX_LINE_BYTES}]))
    assert doc.rejected[0].reason.startswith("event is ")


# --- identifiers ----------------------------------------------------------------------------------------

def test_ids_are_compared_exactly() -> None:
    ids = ["Deploy-A", "deploy-a", "café", "cafe\u0301", "cafe", "zw\u200bid", "zwid"]
    result = parse_events([dep(sid, status="success" if n % 2 else "failed") for n, sid in enumerate(ids)])
    assert [e.source_event_id for e in result.accepted] == ids
    assert result.rejected == [] and result.duplicates == []


def test_dead_letter_type_and_source_are_written_as_events_write_them() -> None:
    # They resolve the dead letter when the corrected event arrives, compared exactly by the database.
    (rej,) = parse_events([dep("X-1", type="Deployment", source="GitHub")]).rejected
    assert (rej.event_type, rej.source, rej.source_event_id) == ("deployment", "github", "X-1")


# --- rows -----------------------------------------------------------------------------------------------

def test_event_rows_are_naive_utc() -> None:
    (event,) = parse_events([dep(deployed_at="2026-11-02T11:15:00+01:00")]).accepted
    table, row = event_row(event)
    assert (table, row["finished_at"], row["source_event_id"]) == ("deployments", datetime(2026, 11, 2, 10, 15),
                                                                    "d-1")


def test_a_stored_row_out_of_range_or_broken_is_skipped_not_raised() -> None:
    base = {"source": "s", "source_event_id": "go-zero", "service": "checkout", "environment": "production",
            "severity": "unknown", "title": "", "resolved_at": None, "deployment_id": None}
    zero = event_from_row("incidents", 7, {**base, "started_at": datetime(1, 1, 1, tzinfo=UTC)})
    assert isinstance(zero, SkippedRow)
    assert (zero.event_type, zero.row_id, zero.source_event_id) == ("incident", 7, "go-zero")
    assert zero.reason.startswith("started_at: ") and "storable range" in zero.reason
    # What the driver returns for a zero date (a string) and a hand-written upper-case status.
    assert isinstance(event_from_row("incidents", 8, {**base, "started_at": "0000-00-00 00:00:00"}), SkippedRow)
    bad = event_from_row("deployments", 9, {"source": "s", "source_event_id": "x", "service": "a",
                                            "environment": "production", "status": "FAILED",
                                            "deployed_at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert isinstance(bad, SkippedRow) and bad.reason.startswith("status: ")
    good = event_from_row("incidents", 10, {**base, "started_at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert isinstance(good, Incident)


def test_compute_over_the_events_that_remain_does_not_raise() -> None:
    # The old failure: started_at - attribution window overflowed for Go's zero time. Only in-range
    # events reach compute now; the edges of the range are the worst case.
    low = Deployment(source_event_id="d", service="a", environment="production", status="success",
                     deployed_at=storable.TS_MIN)
    edge = Incident(source_event_id="i", service="a", started_at=storable.TS_MIN,
                    resolved_at=datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC))
    compute_metrics([low], [], [edge], Window(storable.TS_MIN, storable.TS_MAX))
    assert snapshot_rows([low], [], [edge], computed_on=date(1970, 1, 1), window_days=(1, 90))


# --- what the server said -------------------------------------------------------------------------------

@pytest.mark.parametrize(("exc", "kind", "per_row"), [
    (pymysql.err.OperationalError(1153, "Got a packet bigger than 'max_allowed_packet' bytes"), StoreRefused, True),
    (pymysql.err.DataError(1406, "Data too long for column 'title' at row 1"), StoreRefused, True),
    (pymysql.err.IntegrityError(1062, "Duplicate entry"), StoreRefused, True),
    (pymysql.err.OperationalError(4025, "CONSTRAINT `ck_deployments_status` failed"), StoreRefused, True),
    (pymysql.err.OperationalError(1142, "INSERT command denied to user"), StoreRefused, False),
    (pymysql.err.ProgrammingError(1146, "Table 'iact.deployments' doesn't exist"), StoreRefused, False),
    (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), StoreRefused, True),
    (pymysql.err.OperationalError(2003, "Can't connect"), ServiceUnavailable, None),
    (pymysql.err.OperationalError(2013, "Lost connection"), ServiceUnavailable, None),
    (pymysql.err.OperationalError(1927, "Connection was killed"), ServiceUnavailable, None),
    (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), ServiceUnavailable, None),
    (pymysql.err.InterfaceError(0, ""), ServiceUnavailable, None),
])
def test_refused_is_not_unreachable(exc: BaseException, kind: type[Exception], per_row: bool | None) -> None:
    got = failure(exc, "ingest of f.jsonl", 5)
    assert type(got) is kind
    if isinstance(got, StoreRefused):
        assert (got.exit_code, got.per_row) == (4, per_row)
        assert "unreachable" not in str(got)
        assert not is_unreachable(exc)
    else:
        assert got.exit_code == 3 and "MySQL unreachable or busy" in str(got)
    if isinstance(exc, pymysql.err.MySQLError):
        assert f"({exc.args[0]}) {exc.args[1]}" in str(got)
