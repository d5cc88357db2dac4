"""Property-based tests (hypothesis) of DORA ingest and compute: hostile input never raises, and what comes
out fits the store's schema (timestamps within 1970..2200 UTC, UTF-8 text, bounded sizes).

The column sizes below are those of migrations 0001/0011 (the integration tests write to the real tables).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iact_agents import storable
from iact_agents.dora.metrics import Window, compute_metrics
from iact_agents.dora.models import (
    MAX_LINE_BYTES,
    Change,
    Deployment,
    Incident,
    ParseResult,
    parse_document,
    parse_events,
    read_line,
)
from iact_agents.dora.snapshot import snapshot_rows
from iact_agents.dora.store import dead_letter_row, event_row
from iact_agents.quality.checks import run_checks

# Characters of each column (VARCHAR counts characters).
COLUMNS: dict[str, dict[str, int]] = {
    "deployments": {"source": 64, "source_event_id": 191, "service": 128, "environment": 64, "version": 128,
                    "commit_sha": 64, "status": 16},
    "changes": {"source": 64, "source_event_id": 191, "service": 128, "commit_sha": 64, "deployment_ref": 191},
    "incidents": {"source": 64, "source_event_id": 191, "service": 128, "environment": 64, "severity": 16,
                  "title": 255, "deployment_ref": 191},
}
DEAD_LETTER = (("source", 64), ("payload", None), ("payload_sha256", 64), ("event_type", 16),
               ("source_event_id", 191), ("field", 191), ("input_name", 255), ("reason", 1024))
SETTINGS = settings(max_examples=1000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Any code point, lone surrogates included (what a JSON "\udcff" escape decodes to).
any_char = st.characters(exclude_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=30),
    st.sampled_from(["Deploy-A", "deploy-a", "café", "cafe\u0301", "zw\u200bid", "\ufeff", "\udcff", " x ", "",
                     "\u2028", "\x00", "İ", "\u212a"]),
)
offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
instants = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                        timezones=st.builds(timezone, offsets))
timestamps = st.one_of(
    instants.map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-05:00",
                     "1970-01-01T00:00:00Z", "2199-12-31T23:59:59.999999Z", "2200-01-01T00:00:00Z",
                     "2026-11-02T10:15:00", "2026-02-30T00:00:00Z", "yesterday"]),
    st.integers(), st.floats(), hostile_text,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,  # floats: NaN and Infinity too
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["source", "source_event_id", "service", "environment", "deployed_at", "started_at", "status", "version",
          "commit_sha", "change_ids", "committed_at", "authored_at", "first_commit_at", "deployment_id",
          "resolved_at", "severity", "title"]


@st.composite
def event_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Objects shaped like events, most fields plausible, any of them hostile."""
    obj: dict[str, Any] = {"type": draw(st.sampled_from(["deployment", "change", "incident", "Deployment", "x"]))}
    obj["source_event_id"] = draw(st.one_of(st.sampled_from(["d-1", "D-1", "i-1"]), hostile_text))
    obj["service"] = draw(st.sampled_from(["checkout", "Checkout", "bad name"]) | hostile_text)
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=8)):
        if name.endswith("_at"):
            obj[name] = draw(timestamps)
        elif name == "change_ids":
            obj[name] = draw(st.lists(hostile_text, max_size=3))
        elif name == "status":
            obj[name] = draw(st.sampled_from(["success", "failed", "rolled_back", "Success"]))
        elif name == "environment":
            obj[name] = draw(st.sampled_from(["production", "staging"]) | hostile_text)
        else:
            obj[name] = draw(st.one_of(hostile_text, json_values))
    if draw(st.booleans()):
        obj[draw(hostile_text)] = draw(json_values)
    return obj


@st.composite
def lines(draw: st.DrawFn) -> str | bytes:
    """One input line: a serialized event-shaped object (escaped or raw, maybe broken), or junk."""
    obj = draw(event_objects())
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()))  # raw: lone surrogates end up in the line
    kind = draw(st.sampled_from(["as is", "bom", "cut", "deep", "bytes", "junk"]))
    if kind == "bom":
        return "\ufeff" + text
    if kind == "cut":
        return text[: draw(st.integers(0, len(text)))]
    if kind == "deep":
        depth = draw(st.sampled_from([10, 900, 1100, 60_000]))
        return "[" * depth + "]" * depth
    if kind == "bytes":
        return draw(st.binary(max_size=60))
    if kind == "junk":
        return draw(st.text(any_char, max_size=60))
    return text


def _blank(item: str | bytes) -> bool:
    data = item if isinstance(item, bytes) else item.encode("utf-8", "surrogatepass")
    data = data.rstrip(b"\r\n").removeprefix(b"\xef\xbb\xbf")
    return len(data) <= MAX_LINE_BYTES and not data.decode("utf-8", "replace").strip()


def _fits_utc_range(value: object) -> bool:
    return isinstance(value, datetime) and value.tzinfo is None and \
        storable.TS_MIN <= value.replace(tzinfo=UTC) < storable.TS_MAX


def assert_fits_the_store(result: ParseResult) -> None:
    keys = [e.key for e in result.accepted]
    assert len(keys) == len(set(keys)), "an event identity accepted twice"
    for event in result.accepted:
        table, row = event_row(event)
        for column, value in row.items():
            if column.endswith("_at"):
                assert value is None or _fits_utc_range(value), (column, value)
            elif value is not None:
                assert isinstance(value, str) and storable.is_clean_text(value), (column, value)
                assert len(value) <= COLUMNS[table][column], (column, value)
        for ref in getattr(event, "change_ids", ()):
            assert storable.is_clean_text(ref) and 1 <= len(ref) <= 191
    for rej in result.rejected:
        row = dead_letter_row(rej, "input.jsonl", None)
        for (column, limit), value in zip(DEAD_LETTER, row, strict=True):
            if value is None:
                assert column in ("event_type", "source_event_id")
                continue
            assert isinstance(value, str) and storable.is_clean_text(value), (column, value)
            if limit is not None:
                assert len(value) <= limit, (column, value)
        assert len(rej.raw.encode("utf-8")) <= MAX_LINE_BYTES
        assert re.fullmatch(r"[0-9a-f]{64}", row[2])
        assert rej.field and rej.reason


@SETTINGS
@given(st.lists(lines(), max_size=6), st.sampled_from([None, "github", "GitHub"]))
def test_event_lines_never_raise_and_fit_the_store(items: list[str | bytes], default_source: str | None) -> None:
    result = parse_events(items, default_source=default_source)
    assert result.lines_read == sum(1 for i in items if not _blank(i))
    assert_fits_the_store(result)


@SETTINGS
@given(st.lists(event_objects(), max_size=5), st.sampled_from(["array", "events", "lines"]), st.booleans())
def test_documents_never_raise_and_fit_the_store(objs: list[dict[str, Any]], form: str, bom: bool) -> None:
    if form == "array":
        text = json.dumps(objs)
    elif form == "events":
        text = json.dumps({"events": objs})
    else:
        text = "\n".join(json.dumps(o) for o in objs)
    result = parse_document(("\ufeff" if bom else "") + text)
    assert result.lines_read == len(objs)
    assert_fits_the_store(result)


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_never_raise(data: bytes) -> None:
    assert_fits_the_store(parse_document(data))
    for line in data.split(b"\n"):
        read_line(line, 1)


def test_the_line_limit_holds_for_long_lines() -> None:
    # Too slow for hypothesis to generate: one line each side of the limit, and far over it.
    for size in (MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1, 3 * MAX_LINE_BYTES):
        line = b'{"a": "' + b"\xc3\xa9" * ((size - 9) // 2) + b'"}'
        result = parse_events([line + b"\n"])
        assert result.lines_read == 1
        assert_fits_the_store(result)
        assert ("longer than the maximum" in result.rejected[0].reason) == (len(line) > MAX_LINE_BYTES)


# --- compute over whatever valid events remain ----------------------------------------------------------

in_range = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31, 23, 59, 59),
                        timezones=st.just(UTC))
ids = st.sampled_from(["a", "A", "b", "é", "e\u0301", "c\u200b"])
services = st.sampled_from(["checkout", "search"])


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[list[Deployment], list[Change], list[Incident]]:
    deps = [Deployment(source_event_id=draw(ids), service=draw(services), environment="production",
                       status=draw(st.sampled_from(["success", "failed", "rolled_back"])), deployed_at=draw(in_range),
                       started_at=draw(st.none() | in_range), change_ids=tuple(draw(st.lists(ids, max_size=2))))
            for _ in range(draw(st.integers(0, 4)))]
    chs = [Change(source_event_id=draw(ids), service=draw(services), commit_sha="abcdef0",
                  committed_at=draw(in_range), first_commit_at=draw(st.none() | in_range),
                  deployment_id=draw(st.none() | ids))
           for _ in range(draw(st.integers(0, 4)))]
    incs = [Incident(source_event_id=draw(ids), service=draw(services), started_at=draw(in_range),
                     resolved_at=draw(st.none() | in_range), deployment_id=draw(st.none() | ids))
            for _ in range(draw(st.integers(0, 4)))]
    return deps, chs, incs


@SETTINGS
@given(valid_events(), st.dates(min_value=date(1970, 1, 1), max_value=date(2199, 12, 30)))
def test_compute_and_quality_never_raise_on_valid_events(
    events: tuple[list[Deployment], list[Change], list[Incident]], day: date
) -> None:
    deps, chs, incs = events
    rows = snapshot_rows(deps, chs, incs, computed_on=day, window_days=(1, 30))
    for row in rows:
        for column in ("lead_time_seconds", "lead_time_p90_seconds", "time_to_restore_seconds"):
            assert row[column] is None or 0 <= row[column] < 2**63  # BIGINT UNSIGNED
        for column in ("deployment_frequency", "change_failure_rate", "deployment_days_per_week"):
            assert row[column] is None or math.isfinite(row[column])
    end = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
    compute_metrics(deps, chs, incs, Window(storable.TS_MIN, storable.TS_MAX))
    report = run_checks(deps, chs, incs, as_of=end)
    assert report.score.score is None or 0 <= report.score.score <= 100
