"""What every store accepts: the one place that says which instants and texts can be written.

Parsers are total (no input raises); what they produce must also be *storable*, or a single line blocks
its source at the sink. Cassandra and MariaDB both take any instant Python can hold, but Python cannot
hold every instant a line can name (``0001-01-01T00:00:00+01:00`` overflows on its way to UTC, and
year 9999 with a negative offset too), and a log timestamp outside 1970..2200 is a broken clock or a
zero value (Go's ``0001-01-01T00:00:00Z``), not an event. Both agents treat such a timestamp as
unparsed: the collector keeps the line as a ``parse_error`` row, DORA ingest dead-letters the event.

Text must be valid UTF-8 for both stores' drivers. Python strings decoded from JSON may hold lone
surrogates (``"\\udcff"``, what Python apps write for undecodable file names); they are replaced by
U+FFFD, the same character undecodable bytes become when a file line is read.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

TS_MIN = datetime(1970, 1, 1, tzinfo=UTC)
"""Earliest storable instant (inclusive)."""
TS_MAX = datetime(2200, 1, 1, tzinfo=UTC)
"""First instant past the storable range (exclusive)."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def utc_in_range(value: datetime) -> datetime | None:
    """``value`` (timezone-aware) as UTC if it lies in ``[TS_MIN, TS_MAX)``; None otherwise, never raising."""
    if value.tzinfo is None or value.utcoffset() is None:
        return None
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return utc if TS_MIN <= utc < TS_MAX else None


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def is_clean_text(text: str) -> bool:
    return text.isascii() or _SURROGATE.search(text) is None


def utf8_prefix(text: str, max_bytes: int) -> str:
    """:func:`clean_text` of ``text``, cut to the longest prefix whose UTF-8 encoding fits ``max_bytes``
    (never half a character): a bounded sample of a value too large to keep whole."""
    head = clean_text(text[:max(max_bytes, 0)])  # a character is at least one byte
    data = head.encode("utf-8")
    return head if len(data) <= max_bytes else data[:max_bytes].decode("utf-8", "ignore")


class InvalidJson(ValueError):
    """Not a JSON document this project reads: syntax, nesting too deep, or a non-finite number."""


def _no_constants(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON number")


def loads(text: str | bytes, *, non_finite: bool = False) -> Any:
    """``json.loads`` that raises only :class:`InvalidJson` (a ValueError): also for nesting deeper than
    the interpreter's recursion limit (RecursionError) and for ``NaN``/``Infinity``, which JSON does not
    have. Strings keep lone surrogates; pass them through :func:`clean_text` before storing.

    ``non_finite=True`` reads ``NaN``/``Infinity`` as floats instead, for a caller that judges the values
    one by one (the events of a DORA JSON document: one bad event must not reject its neighbours; a log
    line written by Python's json module, whose other fields are still worth keeping)."""
    try:
        return json.loads(text) if non_finite else json.loads(text, parse_constant=_no_constants)
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson("nested too deeply") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise InvalidJson(str(exc)) from None


def dumps_compact(value: Any) -> str:
    """Compact, key-sorted JSON text of a value that :func:`loads` returned (never raises for those)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    except (RecursionError, ValueError, TypeError):
        return json.dumps(repr(value)[:4096], ensure_ascii=False)
