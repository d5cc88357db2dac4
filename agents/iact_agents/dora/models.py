"""Event models at the ingest boundary and the JSON / JSON-lines parser.

The format is described in ``FORMAT.md`` next to this module. In short: one JSON object per event with a
``type`` of ``deployment``, ``change`` or ``incident``; every event carries a ``source`` (the system
that reported it) and a ``source_event_id`` that is unique per type and source; timestamps are ISO 8601
strings *with* a UTC offset and are normalised to UTC.

The parser is a pure function and total: no input raises. Every input line ends up in exactly one of
``accepted``, ``rejected`` (with line, field and reason) or ``duplicates`` (an identical copy of an event
already accepted from the same input), so that ``len(accepted) + len(rejected) + len(duplicates)`` equals
the number of non-blank lines read. What it produces fits the store (:mod:`iact_agents.storable`):
timestamps within 1970..2200 UTC, text that encodes as UTF-8 (a lone surrogate in free text becomes
U+FFFD; in an identifier it is a rejection, because two ids must not become one), bounded sizes (a line
longer than :data:`MAX_LINE_BYTES` is rejected unparsed and keeps only its first
:data:`RAW_PREFIX_BYTES`).

Identifiers are compared exactly, code point by code point, as Python's ``==`` does and as the
database's binary collation does (migration 0013): ``Deploy-A``, ``deploy-a`` and ``deploy\u200b-a``
are three events.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
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

from .. import storable

log = logging.getLogger(__name__)

# Longest identifier we accept: 191 characters fit a utf8mb4 unique index in MariaDB.
MAX_ID_LENGTH = 191
MAX_LINE_BYTES = 1_048_576
"""Longest input line (of a JSON document: longest event, re-serialized) that is parsed, in bytes; a
longer one is rejected unparsed. Well below the server's ``max_allowed_packet`` (16 MiB by default)."""
RAW_PREFIX_BYTES = 4096
"""What a dead letter keeps of a line longer than :data:`MAX_LINE_BYTES`: its first bytes."""
_BOM = b"\xef\xbb\xbf"
_RANGE = f"{storable.TS_MIN:%Y-%m-%d} .. {storable.TS_MAX:%Y-%m-%d} UTC"


def _no_numeric_timestamp(value: Any) -> Any:
    # pydantic would read 1700000000 as seconds and 1700000000000 as milliseconds: refuse the guess.
    if isinstance(value, bool | int | float):
        raise ValueError("use an ISO 8601 string with a UTC offset (e.g. 2026-11-02T10:15:00Z), not a number")
    return value


def _storable_utc(value: datetime) -> datetime:
    utc = storable.utc_in_range(value)
    if utc is None:
        raise ValueError(f"outside the storable range {_RANGE} (a broken clock or a zero value, not an event)")
    return utc


Timestamp = Annotated[AwareDatetime, BeforeValidator(_no_numeric_timestamp), AfterValidator(_storable_utc)]
"""A timezone-aware instant in the storable range; naive times are rejected, aware ones converted to UTC."""


def _exact_text(value: Any) -> Any:
    if isinstance(value, str) and not storable.is_clean_text(value):
        raise ValueError("contains a lone surrogate (not text UTF-8 can carry); an id must name one event exactly")
    return value


def _storable_text(value: Any) -> Any:
    return storable.clean_text(value) if isinstance(value, str) else value


EventId = Annotated[
    str, BeforeValidator(_exact_text), StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH)
]


def _lower(value: Any) -> Any:
    # Before the pattern check, so that "Checkout" is accepted as "checkout".
    return value.strip().lower() if isinstance(value, str) else value


_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ServiceName = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=_NAME)]
Environment = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=_NAME)]
CommitSha = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=r"^[0-9a-f]{7,64}$")]
Version = Annotated[
    str, BeforeValidator(_storable_text), StringConstraints(strip_whitespace=True, min_length=1, max_length=128)
]
Title = Annotated[str, BeforeValidator(_storable_text), StringConstraints(strip_whitespace=True, max_length=255)]

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
    """One reason an event was refused: the dotted field path (``(event)`` for the whole event, ``(store)``
    for a value the database refused). Both are storable text (lone surrogates replaced)."""

    field: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", storable.clean_text(self.field))
        object.__setattr__(self, "reason", storable.clean_text(self.reason))


@dataclass(frozen=True)
class Rejection:
    """An input line that did not become an event. ``line`` is 1-based; ``raw`` is the line as read,
    kept so the dead-letter store can re-process it after a fix: storable text of at most
    :data:`MAX_LINE_BYTES` (a longer line keeps its first :data:`RAW_PREFIX_BYTES`). ``raw_sha256``
    identifies the whole line as read (the same bad line ingested twice is one dead letter)."""

    line: int
    errors: tuple[FieldError, ...]
    raw: str
    event_type: str | None = None
    source_event_id: str | None = None
    source: str | None = None
    raw_sha256: str = ""

    def __post_init__(self) -> None:
        if not self.raw_sha256:
            whole = self.raw.encode("utf-8", "surrogatepass")
            object.__setattr__(self, "raw_sha256", hashlib.sha256(whole).hexdigest())
        object.__setattr__(self, "raw", storable.utf8_prefix(self.raw, MAX_LINE_BYTES))
        for name in ("event_type", "source_event_id", "source"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, storable.clean_text(value))

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
    """What became of every non-blank input line. ``lines[i]`` is the input line (or array position) of
    ``accepted[i]``, for the dead letter of an event the store refuses; empty when not known."""

    accepted: list[Deployment | Change | Incident] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return len(self.accepted) + len(self.rejected) + len(self.duplicates)

    def line_of(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else 0

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
        # The dead letter is resolved by a later valid event of the same type, source and id, compared
        # exactly: type and source are lower-cased as a valid event's are, the id is kept as sent.
        etype, source = _text(obj, "type"), _text(obj, "source")
        return Rejection(
            line, _pydantic_errors(exc, etype), raw, etype and etype.lower(), _text(obj, "source_event_id"),
            source and source.lower(),
        )


def parse_json(text: str, line: int, default_source: str | None = None) -> Deployment | Change | Incident | Rejection:
    """One event from the JSON text of one line (or one dead letter); never raises."""
    try:
        obj = storable.loads(text)
    except storable.InvalidJson as exc:
        return Rejection(line, (FieldError("(event)", f"not valid JSON: {exc}"),), text)
    return parse_object(obj, line, text, default_source)


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
        result.lines.append(line)
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


def _too_long(line: int, size: int, head: str, sha256: str, what: str = "line") -> Rejection:
    reason = (f"{what} is {size} bytes, longer than the maximum of {MAX_LINE_BYTES} bytes "
              f"(kept its first {RAW_PREFIX_BYTES})")
    return Rejection(line, (FieldError("(event)", reason),), storable.utf8_prefix(head, RAW_PREFIX_BYTES),
                     raw_sha256=sha256)


def read_line(item: str | bytes, line: int) -> str | Rejection | None:
    """The text of one input line (end of line and a leading byte order mark removed), a rejection if
    it is longer than :data:`MAX_LINE_BYTES` or not UTF-8, or None if it is blank. Never raises."""
    data = item if isinstance(item, bytes) else item.encode("utf-8", "surrogatepass")
    data = data.rstrip(b"\r\n")
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    if len(data) > MAX_LINE_BYTES:
        head = data[:RAW_PREFIX_BYTES].decode("utf-8", "replace")
        return _too_long(line, len(data), head, hashlib.sha256(data).hexdigest())
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not valid UTF-8 ({exc.reason} at byte {exc.start + 1})"
        return Rejection(line, (FieldError("(event)", reason),), data.decode("utf-8", "replace"),
                         raw_sha256=hashlib.sha256(data).hexdigest())
    return text if text.strip() else None


def parse_events(lines: Iterable[str | bytes], *, default_source: str | None = None) -> ParseResult:
    """Parse JSON-lines: one event object per line; blank lines are skipped (and not counted).

    Lines are text or UTF-8 bytes (the end of line may be included). ``default_source`` is the
    ``source`` of events that do not name one (else :data:`DEFAULT_SOURCE`).
    """
    result = ParseResult()
    seen: dict[tuple[str, str, str], tuple[int, Deployment | Change | Incident]] = {}
    for number, item in enumerate(lines, start=1):
        text = read_line(item, number)
        if text is None:
            continue
        if isinstance(text, Rejection):
            result.rejected.append(text)
            continue
        _accept(result, seen, parse_json(text, number, default_source), number, text)
    log.debug("parsed events: %s", result.counts())
    return result


def _document(data: bytes) -> Any:
    """The decoded JSON document in ``data``, or None when it is not one (then it is JSON-lines)."""
    if data.lstrip()[:1] not in (b"[", b"{"):
        return None
    try:  # NaN and Infinity are judged event by event (as values no field takes), not for the whole file
        return storable.loads(data.decode("utf-8"), non_finite=True)
    except (UnicodeDecodeError, storable.InvalidJson):
        return None  # several objects, one per line, or broken: JSON-lines, judged line by line


def _serialized(item: Any) -> str | None:
    try:
        return json.dumps(item, sort_keys=True)
    except (RecursionError, ValueError, TypeError):
        return None


def parse_document(data: str | bytes, *, default_source: str | None = None) -> ParseResult:
    """Parse either a JSON document (an array of events, or ``{"events": [...]}``) or JSON-lines, from
    text or UTF-8 bytes (a leading byte order mark is ignored). Never raises.

    For a JSON document, ``line`` in rejections and duplicates is the 1-based position of the event in
    the array (a JSON document has no meaningful line per event), and each event is held to
    :data:`MAX_LINE_BYTES` as re-serialized.
    """
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    doc = _document(raw)
    if isinstance(doc, list):
        items: Any = doc
    elif isinstance(doc, dict) and "events" in doc:
        items = doc["events"]
    else:
        return parse_events(raw.split(b"\n"), default_source=default_source)
    result = ParseResult()
    if not isinstance(items, list):
        error = FieldError("events", "must be an array of events")
        result.rejected.append(Rejection(1, (error,), storable.utf8_prefix(raw.decode("utf-8", "replace"),
                                                                           RAW_PREFIX_BYTES)))
        return result
    seen: dict[tuple[str, str, str], tuple[int, Deployment | Change | Incident]] = {}
    for position, item in enumerate(items, start=1):
        text = _serialized(item)
        if text is None:
            note = f"(event {position} of a JSON document, nested too deeply to write out again)"
            result.rejected.append(Rejection(position, (FieldError("(event)", "nested too deeply"),), note))
            continue
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_LINE_BYTES:
            sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            result.rejected.append(_too_long(position, size, text[:RAW_PREFIX_BYTES], sha, "event"))
            continue
        _accept(result, seen, parse_object(item, position, text, default_source), position, text)
    return result
