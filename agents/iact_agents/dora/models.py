"""Event models at the ingest boundary and the JSON / JSON-lines parser.

The format is described in ``FORMAT.md`` next to this module. In short: one JSON object per event with a
``type`` of ``deployment``, ``change`` or ``incident``; every event carries a ``source`` (the system
that reported it) and a ``source_event_id`` that is unique per type and source; timestamps are ISO 8601
strings *with* a UTC offset and are normalised to UTC.

The parser is a pure function: it never raises on bad input. Every input line ends up in exactly one of
``accepted``, ``rejected`` (with line, field and reason) or ``duplicates`` (an identical copy of an event
already accepted from the same input), so that ``len(accepted) + len(rejected) + len(duplicates)`` equals
the number of non-blank lines read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

log = logging.getLogger(__name__)

# Longest identifier we accept: 191 characters fit a utf8mb4 unique index in MariaDB.
MAX_ID_LENGTH = 191


def _no_numeric_timestamp(value: Any) -> Any:
    # pydantic would read 1700000000 as seconds and 1700000000000 as milliseconds: refuse the guess.
    if isinstance(value, bool | int | float):
        raise ValueError("use an ISO 8601 string with a UTC offset (e.g. 2026-11-02T10:15:00Z), not a number")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Timestamp = Annotated[AwareDatetime, BeforeValidator(_no_numeric_timestamp), AfterValidator(_to_utc)]
"""A timezone-aware instant; naive times are rejected, aware ones converted to UTC."""

EventId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH)]


def _lower(value: Any) -> Any:
    # Before the pattern check, so that "Checkout" is accepted as "checkout".
    return value.strip().lower() if isinstance(value, str) else value


_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ServiceName = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=_NAME)]
Environment = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=_NAME)]
CommitSha = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=r"^[0-9a-f]{7,64}$")]
Version = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]

DeploymentStatus = Literal["success", "failed", "rolled_back"]
Severity = Literal["critical", "high", "medium", "low", "unknown"]

DEFAULT_SOURCE = "manual"
"""``source`` of events that do not name one (and that the ingest caller gives no default for)."""


class EventModel(BaseModel):
    """Base of the three event types: immutable, unknown fields are errors (a typo must not pass)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str  # each event class narrows it to its Literal tag
    source: ServiceName = DEFAULT_SOURCE
    source_event_id: EventId
    service: ServiceName

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of the event: ``(type, source, source_event_id)``."""
        return (self.type, self.source, self.source_event_id)


class Deployment(EventModel):
    """A deployment of ``service`` to ``environment``.

    ``status``: ``success`` (it reached the environment and stayed), ``rolled_back`` (it reached the
    environment and was rolled back: a failed change) or ``failed`` (the deployment itself did not
    complete; it never ran in the environment). ``deployed_at`` is when it finished (the time the
    metrics use), ``started_at`` optionally when it began. ``change_ids`` are ``source_event_id``
    values of the :class:`Change` events it shipped (conventionally the commit SHAs); ``commit_sha``
    optionally names the head commit deployed.
    """

    type: Literal["deployment"] = "deployment"
    environment: Environment
    deployed_at: Timestamp
    started_at: Timestamp | None = None
    status: DeploymentStatus
    version: Version | None = None
    commit_sha: CommitSha | None = None
    change_ids: tuple[EventId, ...] = ()


class Change(EventModel):
    """A change (commit) of ``service``.

    ``committed_at`` is the commit time of the commit that was merged (for a squash merge: the squash
    commit). ``authored_at`` is its author time if known. ``first_commit_at`` is the earliest commit
    time of the original commits for a squash or rebase merge, whose own timestamps would otherwise make
    the lead time look short. ``deployment_id`` optionally names the deployment that shipped it (the
    link may also come from that deployment's ``change_ids``).
    """

    type: Literal["change"] = "change"
    commit_sha: CommitSha
    committed_at: Timestamp
    authored_at: Timestamp | None = None
    first_commit_at: Timestamp | None = None
    deployment_id: EventId | None = None

    @property
    def lead_time_start(self) -> datetime:
        """When the work started: the earliest of ``first_commit_at``, ``authored_at``, ``committed_at``."""
        return min(t for t in (self.first_commit_at, self.authored_at, self.committed_at) if t is not None)


class Incident(EventModel):
    """An incident of ``service`` in ``environment``; ``deployment_id`` links it explicitly to its cause.

    A ``resolved_at`` before ``started_at`` is accepted here and reported by the quality checks (and
    left out of the recovery time), because it is a fact about the data that people must see and fix.
    """

    type: Literal["incident"] = "incident"
    environment: Environment = "production"
    started_at: Timestamp
    resolved_at: Timestamp | None = None
    deployment_id: EventId | None = None
    severity: Severity = "unknown"
    title: Title = ""


Event = Annotated[Deployment | Change | Incident, Field(discriminator="type")]
EventType = Literal["deployment", "change", "incident"]
_EVENT_ADAPTER: TypeAdapter[Deployment | Change | Incident] = TypeAdapter(Event)


@dataclass(frozen=True)
class FieldError:
    """One reason an event was refused: the dotted field path (``(event)`` for the whole event)."""

    field: str
    reason: str


@dataclass(frozen=True)
class Rejection:
    """An input line that did not become an event. ``line`` is 1-based; ``raw`` is the line as read,
    kept so the dead-letter store can re-process it after a fix."""

    line: int
    errors: tuple[FieldError, ...]
    raw: str
    event_type: str | None = None
    source_event_id: str | None = None
    source: str | None = None

    @property
    def field(self) -> str:
        return self.errors[0].field

    @property
    def reason(self) -> str:
        return self.errors[0].reason

    def describe(self) -> str:
        """One line for people, e.g. ``line 3: deployed_at: Input should have timezone info``."""
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"line {self.line}: {self.field}: {self.reason}{more}"


@dataclass(frozen=True)
class Duplicate:
    """A line identical to an event accepted earlier from the same input (counted once)."""

    line: int
    first_line: int
    event_type: str
    source_event_id: str
    source: str = DEFAULT_SOURCE


@dataclass
class ParseResult:
    """What became of every non-blank input line."""

    accepted: list[Deployment | Change | Incident] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return len(self.accepted) + len(self.rejected) + len(self.duplicates)

    def counts(self) -> dict[str, int]:
        return {
            "read": self.lines_read,
            "accepted": len(self.accepted),
            "duplicates": len(self.duplicates),
            "rejected": len(self.rejected),
        }


def _pydantic_errors(exc: ValidationError, event_type: str | None) -> tuple[FieldError, ...]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        # A discriminated union puts the tag first: ('deployment', 'deployed_at') -> 'deployed_at'.
        if loc and loc[0] == event_type:
            loc = loc[1:]
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            where = "type"
            reason = "must be one of 'deployment', 'change', 'incident'"
        else:
            where = ".".join(str(p) for p in loc) or "(event)"
            reason = err["msg"]
        out.append(FieldError(where, reason))
    return tuple(out)


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    return value.strip() if isinstance(value, str) else None


def parse_object(
    obj: Any, line: int, raw: str, default_source: str | None = None
) -> Deployment | Change | Incident | Rejection:
    """Validate one decoded JSON value; never raises. ``default_source`` fills a missing ``source``."""
    if not isinstance(obj, dict):
        return Rejection(line, (FieldError("(event)", "must be a JSON object"),), raw)
    if default_source is not None and "source" not in obj:
        obj = {**obj, "source": default_source}
    try:
        return _EVENT_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        etype = _text(obj, "type")
        return Rejection(
            line, _pydantic_errors(exc, etype), raw, etype, _text(obj, "source_event_id"), _text(obj, "source")
        )


def _accept(
    result: ParseResult,
    seen: dict[tuple[str, str, str], tuple[int, Deployment | Change | Incident]],
    event: Deployment | Change | Incident | Rejection,
    line: int,
    raw: str,
) -> None:
    if isinstance(event, Rejection):
        result.rejected.append(event)
        return
    first = seen.get(event.key)
    if first is None:
        seen[event.key] = (line, event)
        result.accepted.append(event)
    elif first[1] == event:
        result.duplicates.append(Duplicate(line, first[0], event.type, event.source_event_id, event.source))
    else:
        reason = (
            f"{event.type} {event.source_event_id!r} of source {event.source!r} already seen on line "
            f"{first[0]} with different content; a source event id must name one event"
        )
        result.rejected.append(
            Rejection(
                line, (FieldError("source_event_id", reason),), raw, event.type, event.source_event_id,
                event.source,
            )
        )


def parse_events(lines: Iterable[str], *, default_source: str | None = None) -> ParseResult:
    """Parse JSON-lines: one event object per line; blank lines are skipped (and not counted).

    ``default_source`` is the ``source`` of events that do not name one (else :data:`DEFAULT_SOURCE`).
    """
    result = ParseResult()
    seen: dict[tuple[str, str, str], tuple[int, Deployment | Change | Incident]] = {}
    for number, raw_line in enumerate(lines, start=1):
        raw = raw_line.rstrip("\r\n")
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            reason = f"not valid JSON: {exc.msg} at column {exc.colno}"
            result.rejected.append(Rejection(number, (FieldError("(event)", reason),), raw))
            continue
        _accept(result, seen, parse_object(obj, number, raw, default_source), number, raw)
    log.debug("parsed events: %s", result.counts())
    return result


def parse_document(text: str, *, default_source: str | None = None) -> ParseResult:
    """Parse either a JSON document (an array of events, or ``{"events": [...]}``) or JSON-lines.

    For a JSON document, ``line`` in rejections and duplicates is the 1-based position of the event in
    the array (a JSON document has no meaningful line per event).
    """
    stripped = text.lstrip()
    doc: Any = None
    if stripped.startswith(("[", "{")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None  # several objects, one per line: JSON-lines
    if isinstance(doc, list):
        items: Any = doc
    elif isinstance(doc, dict) and "events" in doc:
        items = doc["events"]
    else:
        return parse_events(text.splitlines(), default_source=default_source)
    result = ParseResult()
    if not isinstance(items, list):
        error = FieldError("events", "must be an array of events")
        result.rejected.append(Rejection(1, (error,), text[:200]))
        return result
    seen: dict[tuple[str, str, str], tuple[int, Deployment | Change | Incident]] = {}
    for position, item in enumerate(items, start=1):
        raw = json.dumps(item, sort_keys=True)
        _accept(result, seen, parse_object(item, position, raw, default_source), position, raw)
    return result
