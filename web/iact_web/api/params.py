"""Query parameters: total parsers and the declarations the OpenAPI schema is generated from.

Every endpoint and page declares its parameters as :class:`Param` objects. :func:`parse_query` accepts
exactly those (an unknown or repeated parameter is an error), and every parser either returns a value or
raises :class:`~.errors.BadParameter` naming the parameter: whatever the input (injection attempts, control
characters, huge numbers, malformed or reversed dates), the answer is a 400, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from iact_agents.dora.models import ServiceName
from iact_agents.storable import TS_MAX, TS_MIN, utc_in_range
from pydantic import TypeAdapter, ValidationError

from .errors import BadParameter

MAX_VALUE_LENGTH = 256
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^[0-9]{1,9}$")
_SERVICE = TypeAdapter(ServiceName)


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    parse: Callable[[str], Any]
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False

    def openapi(self) -> dict[str, Any]:
        return {"name": self.name, "in": "query", "required": self.required, "description": self.description,
                "schema": dict(self.schema)}


def _clean(raw: str) -> str:
    if len(raw) > MAX_VALUE_LENGTH:
        raise ValueError(f"longer than {MAX_VALUE_LENGTH} characters")
    if not raw.isprintable():
        raise ValueError("contains control characters")
    return raw.strip()


def form_query(query: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """A page's query without the fields a person left empty: an HTML form sends every input (``from=``),
    and an empty field means "not given", not a malformed value. The API keeps the strict reading."""
    return {name: list(values) for name, values in query.items() if any(v != "" for v in values)}


def parse_query(query: Mapping[str, Sequence[str]], params: Sequence[Param]) -> dict[str, Any]:
    """``{name: value}`` for the declared parameters present; BadParameter for anything else."""
    known = {p.name: p for p in params}
    out: dict[str, Any] = {}
    for name in query:
        if name not in known:
            shown = name if name and name.isprintable() and len(name) <= 64 else repr(name[:64])
            allowed = ", ".join(sorted(known)) or "none"
            raise BadParameter(shown, f"unknown parameter (allowed: {allowed})")
    for name, param in known.items():
        values = list(query.get(name, []))
        if not values:
            if param.required:
                raise BadParameter(name, "is required")
            continue
        if len(values) > 1:
            raise BadParameter(name, "given more than once")
        try:
            out[name] = param.parse(_clean(values[0]))
        except ValueError as exc:
            raise BadParameter(name, str(exc)) from None
    return out


# --- value parsers: each raises ValueError (with a message for people) or returns the value ------------

def service_name(raw: str) -> str:
    try:
        return str(_SERVICE.validate_python(raw))
    except ValidationError:
        raise ValueError("not a service name (lower-case letters, digits, '.', '_', '-'; 64 at most)") from None


def int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not _INT.fullmatch(raw):
            raise ValueError(f"must be a whole number from {low} to {high}")
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def window_days(high: int) -> Callable[[str], int]:
    whole = int_between(1, high)

    def parse(raw: str) -> int:
        return whole(raw[:-1] if raw.endswith("d") else raw)

    return parse


def day(raw: str) -> date:
    """A UTC calendar day ``YYYY-MM-DD`` inside the storable range (1970..2199)."""
    if not _DAY.fullmatch(raw):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw} is not a calendar date") from None
    if not TS_MIN.date() <= value < TS_MAX.date():
        raise ValueError(f"must lie between {TS_MIN.date()} and {TS_MAX.date() - timedelta(days=1)}")
    return value


def instant(raw: str) -> datetime:
    """An RFC 3339 time with its offset (``2026-11-02T10:15:00Z``), or a day (its 00:00 UTC)."""
    if _DAY.fullmatch(raw):
        return datetime.combine(day(raw), time(0), tzinfo=UTC)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ][0-9:.]{5,18}(Z|[+-]\d{2}:\d{2})", raw):
        raise ValueError("must be a date YYYY-MM-DD or a time like 2026-11-02T10:15:00Z")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw} is not a valid time") from None
    utc = utc_in_range(value)
    if utc is None:
        raise ValueError(f"must lie between {TS_MIN.date()} and {TS_MAX.date()}")
    return utc


def choice(*values: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return raw

    return parse


def text(max_length: int, pattern: str | None = None, what: str = "text") -> Callable[[str], str]:
    compiled = re.compile(pattern) if pattern else None

    def parse(raw: str) -> str:
        if not raw or len(raw) > max_length:
            raise ValueError(f"must be 1 to {max_length} characters")
        if compiled is not None and not compiled.fullmatch(raw):
            raise ValueError(f"is not a valid {what}")
        return raw

    return parse


# --- ranges -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DayRange:
    """Whole UTC days ``first`` .. ``last`` (both included): the window ``[first 00:00, last + 1 00:00)``."""

    first: date
    last: date
    preset: int | None = None

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=UTC)

    def query(self) -> dict[str, str]:
        """The parameters that name this range again (for links)."""
        if self.preset is not None:
            return {"window": str(self.preset), "to": self.last.isoformat()}
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def day_range(values: Mapping[str, Any], *, today: date, default_days: int, max_days: int) -> DayRange:
    """The range named by ``window`` (days ending with ``to``, default today) or by ``from``/``to``."""
    window: int | None = values.get("window")
    first: date | None = values.get("from")
    last: date = values.get("to") or today
    if window is not None and first is not None:
        raise BadParameter("window", "give either window or from, not both")
    if first is None:
        days = window if window is not None else default_days
        first = last - timedelta(days=days - 1)
        if first < TS_MIN.date():
            raise BadParameter("window", f"reaches before {TS_MIN.date()}")
        return DayRange(first, last, days)
    if first > last:
        raise BadParameter("to", f"must not be before from ({first.isoformat()})")
    span = (last - first).days + 1
    if span > max_days:
        raise BadParameter("from", f"the range is {span} days; at most {max_days}")
    return DayRange(first, last)
