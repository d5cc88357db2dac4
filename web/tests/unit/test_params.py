"""The query-parameter parsers are total: any input is a value or a BadParameter naming the parameter."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iact_agents.storable import TS_MAX, TS_MIN
from iact_web.api.errors import BadParameter
from iact_web.api.params import (
    MAX_VALUE_LENGTH,
    Param,
    choice,
    day,
    day_range,
    form_query,
    instant,
    int_between,
    parse_query,
    service_name,
    text,
    window_days,
)
from iact_web.dora.views import range_params
from iact_web.logs.params import search_params

HOSTILE = st.one_of(
    st.text(max_size=300),
    st.sampled_from([
        "' OR 1=1 --", "1; DROP TABLE deployments", "../../etc/passwd", "%00", "\x00", "<script>alert(1)</script>",
        "9" * 40, "-1", "0", "1e9", "NaN", "2026-02-30", "0000-00-00", "9999-12-31", "2026-11-02T25:00:00Z",
        "2026-11-02T10:00:00", "2026-11-02T10:00:00+99:00", "\u202e", "\ud800", "30d", "ﾒ", " 5 ",
    ]),
)
PARSERS = [service_name, int_between(1, 500), window_days(3650), day, instant, choice("a", "b"),
           text(64, r"[a-z_]+", "name")]


@settings(max_examples=300, deadline=None)
@given(HOSTILE, st.sampled_from(PARSERS))
def test_every_parser_returns_or_raises_value_error(raw: str, parse: object) -> None:
    assert callable(parse)
    try:
        parse(raw)
    except ValueError as exc:
        assert str(exc)  # a message for people


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["service", "window", "from", "to", "page", "x", "set", ""])
                       | st.text(max_size=8), st.lists(HOSTILE, min_size=0, max_size=3), max_size=5))
def test_parse_query_raises_only_bad_parameter_naming_a_parameter(query: dict[str, list[str]]) -> None:
    params = [*range_params(), Param("page", "", int_between(1, 10))]
    try:
        values = parse_query(query, params)
        rng = day_range(values, today=date(2026, 11, 26), default_days=30, max_days=3660)
    except BadParameter as exc:
        assert exc.parameter and exc.status_code == 400
        named = {*query, *(repr(k[:64]) for k in query), "window", "from", "to"}
        assert exc.parameter in named, (exc.parameter, query)
    else:
        assert rng.first <= rng.last
        assert TS_MIN.date() <= rng.first and rng.last < TS_MAX.date()
        assert rng.days <= 3660 or rng.preset is not None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["host", "source", "from", "to", "page_size", "cursor", "zz"]),
                       st.lists(HOSTILE, min_size=1, max_size=2), max_size=6))
def test_log_search_parameters_are_total(query: dict[str, list[str]]) -> None:
    try:
        values = parse_query(query, search_params())
    except BadParameter as exc:
        assert exc.parameter
        return
    assert 1 <= values.get("page_size", 1) <= 200
    assert values["host"] and values["source"]


def test_names_the_parameter_and_the_reason() -> None:
    params = range_params()
    cases = {
        "window=abc": ("window", "whole number"),
        "window=0": ("window", "from 1"),
        "from=2026-13-01": ("from", "not a calendar date"),
        "from=2026-11-20&to=2026-11-01": ("to", "must not be before from"),
        "service=%27%20OR%201%3D1": ("service", "not a service name"),
        "service=a&service=b": ("service", "more than once"),
        "color=red": ("color", "unknown parameter"),
        "window=30&from=2026-11-01": ("window", "either window or from"),
    }
    for raw, (name, words) in cases.items():
        with pytest.raises(BadParameter) as caught:
            values = parse_query(parse_qs(raw, keep_blank_values=True), params)
            day_range(values, today=date(2026, 11, 26), default_days=30, max_days=3660)
        assert caught.value.parameter == name, raw
        assert words in caught.value.message, (raw, caught.value.message)


def test_values_longer_than_the_cap_are_refused() -> None:
    with pytest.raises(BadParameter, match="longer than"):
        parse_query({"service": ["a" * (MAX_VALUE_LENGTH + 1)]}, range_params())


def test_ranges() -> None:
    today = date(2026, 11, 26)
    r = day_range({}, today=today, default_days=30, max_days=100)
    assert (r.first, r.last, r.days, r.preset) == (date(2026, 10, 28), today, 30, 30)
    assert r.start == datetime(2026, 10, 28, tzinfo=UTC) and r.end == datetime(2026, 11, 27, tzinfo=UTC)
    r = day_range({"from": date(2026, 11, 1), "to": date(2026, 11, 1)}, today=today, default_days=30, max_days=100)
    assert r.days == 1 and r.preset is None and r.query() == {"from": "2026-11-01", "to": "2026-11-01"}
    with pytest.raises(BadParameter, match="at most 100"):
        day_range({"from": date(2026, 1, 1)}, today=today, default_days=30, max_days=100)
    assert instant("2026-11-02T10:15:00+01:00") == datetime(2026, 11, 2, 9, 15, tzinfo=UTC)
    assert service_name("Checkout") == "checkout"
    assert window_days(90)("30d") == 30


def test_form_query_drops_the_fields_a_person_left_empty() -> None:
    raw = {"from": [""], "to": ["2026-11-29"], "window": ["30"], "service": ["", ""], "x": ["", "y"]}
    assert form_query(raw) == {"to": ["2026-11-29"], "window": ["30"], "x": ["", "y"]}
