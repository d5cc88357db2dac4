"""The storable-value rules shared by the collector and DORA ingest (iact_agents/storable.py)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iact_agents import storable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00+01:00", None),  # the UTC conversion overflows
        ("9999-12-31T23:59:59-05:00", None),  # so does this one, the other way
        ("0001-01-01T00:00:00+00:00", None),  # Go's zero time: in Python's range, not in the store's
        ("1969-12-31T23:59:59+00:00", None),
        ("2200-01-01T00:00:00+00:00", None),
        ("1970-01-01T00:00:00+00:00", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2199-12-31T23:59:59+00:00", datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2026-11-29T10:00:00+01:00", datetime(2026, 11, 29, 9, tzinfo=UTC)),
    ],
)
def test_utc_in_range(text: str, expected: datetime | None) -> None:
    assert storable.utc_in_range(datetime.fromisoformat(text)) == expected


def test_naive_is_not_in_range() -> None:
    assert storable.utc_in_range(datetime(2026, 1, 1)) is None


@given(st.datetimes(timezones=st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                                               max_value=timedelta(hours=23, minutes=59)))))
def test_utc_in_range_is_total(value: datetime) -> None:
    out = storable.utc_in_range(value)
    assert out is None or (out.tzinfo is UTC and storable.TS_MIN <= out < storable.TS_MAX)


def test_clean_text_replaces_lone_surrogates_only() -> None:
    text = json.loads('"a\\udcffb \\ud83d\\ude00"')  # a lone surrogate, then a valid pair (one emoji)
    cleaned = storable.clean_text(text)
    assert cleaned == "a\ufffdb \U0001f600"
    cleaned.encode("utf-8")


@given(st.text())
def test_clean_text_always_encodes(text: str) -> None:
    out = storable.clean_text(text)
    out.encode("utf-8")
    assert storable.is_clean_text(out)
    assert len(out) == len(text)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"ts": -Infinity}', "[" * 60_000 + "]" * 60_000, "{", ""])
def test_loads_raises_only_invalid_json(text: str) -> None:
    with pytest.raises(storable.InvalidJson):
        storable.loads(text)


def test_loads_reads_json() -> None:
    assert storable.loads('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}


@given(st.text(max_size=200))
def test_loads_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(storable.InvalidJson):
        storable.loads(text)
