"""What one row of the log table is, and how its values reach the wire.

The table belongs to ``roles/cassandra`` (``__cassandra_log_columns`` in its ``vars/main.yml``): partition
key ``(host, source, day)``, clustering ``(ts DESC, position ASC)``. ``COLUMNS`` below is the one place that
names the columns. Rows are written with a prepared ``UPDATE ... SET ..., fields = fields + ?`` (an upsert
like INSERT, but appending to the map writes no collection tombstone, which an INSERT of a non-frozen map
would).

Two ways lead from a record to the bytes of its bound values, and they give the same bytes:

* the reference: :func:`row_values`, :func:`bound`, then the driver's ``PreparedStatement.bind`` (which looks
  up and calls a serializer per value, about 10 µs per row);
* :class:`RowEncoder`, the one the sink uses for every row: the same values serialized directly from the
  record, a few µs per row. It is used only when the prepared statement's columns have exactly the types it
  serializes (checked at connection), and a property test compares its bytes with the reference's for any
  record. The sink falls back to the reference for a record the encoder cannot serialize, so both see the
  same poison records.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Protocol

from cassandra import cqltypes
from cassandra.query import UNSET_VALUE

from ..storable import clean_text, utc_in_range
from .records import EPOCH, Record

# Column names of the log table, in insert order: change here only (and in row_values and RowEncoder) to
# follow a rename.
COLUMNS: tuple[str, ...] = (
    "host", "source", "day", "ts", "position", "facility", "severity", "program", "pid", "message", "raw",
    "parse_error", "fields", "ingested_at",
)

PARTITION_KEY: tuple[str, ...] = ("host", "source", "day")
PRIMARY_KEY: tuple[str, ...] = (*PARTITION_KEY, "ts", "position")
APPENDED: tuple[str, ...] = ("fields",)  # collections: appended to, so that no tombstone is written
PARTITION_INDEXES: tuple[int, ...] = tuple(COLUMNS.index(c) for c in PARTITION_KEY)
# Positions (in COLUMNS order) of the bound values of write_cql(): the SET values, then the WHERE values.
BIND_ORDER: tuple[int, ...] = (
    *(i for i, c in enumerate(COLUMNS) if c not in PRIMARY_KEY), *(COLUMNS.index(c) for c in PRIMARY_KEY)
)
PLAIN_TEXT_MAX = 64 << 10


def write_cql(keyspace: str, table: str) -> str:
    """The prepared upsert of one row; its bound values are ``row_values()`` taken in ``BIND_ORDER``."""
    sets = ", ".join(f"{c} = {c} + ?" if c in APPENDED else f"{c} = ?" for c in COLUMNS if c not in PRIMARY_KEY)
    where = " AND ".join(f"{c} = ?" for c in PRIMARY_KEY)
    # keyspace and table are checked CQL identifiers (config.py); values are bound, never formatted in.
    return f"UPDATE {keyspace}.{table} SET {sets} WHERE {where}"  # noqa: S608


def row_values(host: str, rec: Record, *, store_raw: bool, ingested_at: datetime) -> tuple[Any, ...]:
    """The values of one row, in ``COLUMNS`` order."""
    fields = rec.fields
    if rec.hostname is not None and rec.hostname != host:
        fields = {**fields, "hostname": rec.hostname}
    if rec.quarantine is not None:
        fields = {**fields, "quarantine": rec.quarantine}
    return (
        host, rec.source, rec.day, rec.ts, rec.position, rec.facility, rec.severity, rec.program, rec.pid,
        rec.message, rec.raw if store_raw or rec.parse_error else None, rec.parse_error, fields or None,
        ingested_at,
    )


def bound(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values as the driver gets them: unset (not null: nulls would write tombstones) for missing values,
    and text that encodes as UTF-8 (the parsers already give such text; this is the last line of defence)."""
    out: list[Any] = []
    for v in values:
        if v is None:
            out.append(UNSET_VALUE)
        elif isinstance(v, str):
            out.append(clean_text(v))
        elif isinstance(v, dict):
            out.append({clean_text(str(k)): clean_text(str(x)) for k, x in v.items()})
        else:
            out.append(v)
    return tuple(out)


def in_bind_order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(row[i] for i in BIND_ORDER)


class Line(Protocol):
    """What a row keeps of its record once encoded: enough to write it as a plain row or to quarantine it (a
    :class:`~.records.Record` is one, and so is an :class:`EncodedRow`)."""

    @property
    def source(self) -> str: ...

    @property
    def position(self) -> str: ...

    @property
    def ts(self) -> datetime: ...

    @property
    def raw(self) -> str: ...


def plain_row(host: str, rec: Line, reason: str, ingested_at: datetime) -> tuple[Any, ...]:
    """The row of a poison record: same row key, ASCII-escaped raw text, ``parse_error``, the reason in
    ``fields['quarantine']``, nothing else. Any Cassandra that accepts rows accepts this one."""
    ts = utc_in_range(rec.ts) if isinstance(rec.ts, datetime) else None
    ts = ts if ts is not None else ingested_at
    text = ascii(rec.raw)[1:-1][:PLAIN_TEXT_MAX]
    values = (
        host, rec.source, ts.date(), ts, rec.position, None, None, None, None, text, text, True,
        {"quarantine": ascii(reason)[1:-1][:1000]}, ingested_at,
    )
    return bound(values)


# --- the encoder ---------------------------------------------------------------------------------------

_INT32 = struct.Struct(">i").pack
_INT64 = struct.Struct(">q").pack
_UINT32 = struct.Struct(">I").pack
_TRUE, _FALSE = b"\x01", b"\x00"
_DATE_OFFSET = 2**31  # cqltypes.SimpleDateType.EPOCH_OFFSET_DAYS


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: as bound() does
        return clean_text(text).encode("utf-8")


def _ms(ts: datetime) -> tuple[bytes, int]:
    """(serialized timestamp, days since the epoch) of an aware instant; the milliseconds are computed with
    the driver's own formula (``DateType.serialize``: seconds * 1e3 + microseconds / 1e3, truncated), so that
    ``ts``, a clustering column, is the same as a row written through ``bind``."""
    d = ts - EPOCH  # TypeError for a naive datetime: the caller falls back to bind()
    return _INT64(int((d.days * 86400 + d.seconds) * 1e3 + d.microseconds / 1e3)), d.days


def _text_map(fields: dict[Any, Any]) -> bytes:
    """A ``map<text, text>`` value (protocol v3+: int32 count and lengths), entries in dict order."""
    out = [_INT32(len(fields))]
    add = out.append
    for k, v in fields.items():
        if type(k) is not str or type(v) is not str:
            break
        try:
            kb, vb = k.encode("utf-8"), v.encode("utf-8")
        except UnicodeEncodeError:
            break
        add(_INT32(len(kb)))
        add(kb)
        add(_INT32(len(vb)))
        add(vb)
    else:
        return b"".join(out)
    # Not plain text: cleaned as bound() does (two keys that clean to the same text become one entry).
    return _text_map({clean_text(str(k)): clean_text(str(v)) for k, v in fields.items()})


def routing_key(parts: tuple[bytes, ...]) -> bytes:
    """The routing key of a row whose serialized partition key values are ``parts``, as
    ``BoundStatement.routing_key`` builds it (a composite key: each part length-prefixed and 0-terminated)."""
    if len(parts) == 1:
        return parts[0]
    return b"".join(struct.pack(f">H{len(p)}sB", len(p), p, 0) for p in parts)


# The column types RowEncoder writes (driver classes: text may come back as varchar, a timestamp as DateType).
_TEXT = (cqltypes.UTF8Type, cqltypes.VarcharType)
_EXPECTED: dict[str, tuple[type, ...]] = {
    "host": _TEXT, "source": _TEXT, "day": (cqltypes.SimpleDateType,), "ts": (cqltypes.DateType,),
    "position": _TEXT, "facility": _TEXT, "severity": _TEXT, "program": _TEXT, "pid": (cqltypes.Int32Type,),
    "message": _TEXT, "raw": _TEXT, "parse_error": (cqltypes.BooleanType,), "fields": (cqltypes.MapType,),
    "ingested_at": (cqltypes.DateType,),
}


def _matches(name: str, col_type: Any) -> bool:
    if not isinstance(col_type, type) or not issubclass(col_type, _EXPECTED[name]):
        return False
    if name == "fields":
        subtypes = getattr(col_type, "subtypes", ())
        return len(subtypes) == 2 and all(issubclass(t, _TEXT) for t in subtypes)
    return True


_POSITION = BIND_ORDER.index(COLUMNS.index("position"))
_TS = BIND_ORDER.index(COLUMNS.index("ts"))
_CACHED = 4096
"""Distinct short texts (source, facility, severity, program) and days whose bytes an encoder reuses: rows in
flight share them instead of holding a copy each."""


class EncodedRow:
    """One record's bound values, serialized, in statement order; its partition and approximate size; and of
    the record only what a plain row or the quarantine needs (a :class:`Line`), not the parsed record itself:
    rows wait in memory until Cassandra acknowledges them, the record's message, fields and other values
    are already in ``values``, and a row that has to be sent again is sent as it is."""

    __slots__ = ("key", "raw", "size", "source", "values")

    def __init__(self, record: Record, values: tuple[Any, ...], key: tuple[bytes, ...], size: int) -> None:
        self.source = record.source  # (one string per source, shared)
        self.raw = record.raw
        self.values = values
        self.key = key
        self.size = size

    @property
    def position(self) -> str:
        return self.values[_POSITION].decode("utf-8")  # type: ignore[no-any-return]

    @property
    def ts(self) -> datetime:
        """The row's ``ts`` as written (milliseconds): a plain row of it gets the same row key."""
        return EPOCH + timedelta(milliseconds=int.from_bytes(self.values[_TS], "big", signed=True))


class RowEncoder:
    """Serializes records into the bound values of the prepared upsert, byte for byte what
    ``bound(row_values(...))`` bound by ``PreparedStatement.bind`` gives (property-tested), without the
    driver's per-value lookups."""

    def __init__(self, host: str, *, store_raw: bool, routing_indexes: tuple[int, ...]) -> None:
        self.host = host
        self.store_raw = store_raw
        self._host = _utf8(host)
        self._order: Callable[[tuple[Any, ...]], tuple[Any, ...]] = itemgetter(*BIND_ORDER)
        self._routing: Callable[[tuple[Any, ...]], tuple[bytes, ...]] = itemgetter(*routing_indexes)
        self._texts: dict[str, bytes] = {}
        self._days: dict[int, bytes] = {}

    def _text(self, text: str, enc: Callable[[str], bytes]) -> bytes:
        """The bytes of a short, often repeated text, the same object for every row (at most ``_CACHED``)."""
        b = enc(text)
        if len(self._texts) >= _CACHED:
            self._texts.clear()
        self._texts[text] = b
        return b

    def _day(self, days: int) -> bytes:
        b = _UINT32(days + _DATE_OFFSET)
        if len(self._days) >= _CACHED:
            self._days.clear()
        self._days[days] = b
        return b

    @classmethod
    def for_statement(cls, prepared: Any, host: str, *, store_raw: bool) -> RowEncoder | None:
        """An encoder for ``prepared`` (a driver ``PreparedStatement`` of :func:`write_cql`), or None when its
        bound columns are not exactly the ones and the types this encoder writes."""
        meta = list(prepared.column_metadata or ())
        names = [c.name for c in meta]
        if names != [COLUMNS[i] for i in BIND_ORDER] or not all(_matches(c.name, c.type) for c in meta):
            return None
        routing = tuple(prepared.routing_key_indexes or ())
        if [names[i] for i in routing] != list(PARTITION_KEY) or prepared.protocol_version < 4:
            return None
        return cls(host, store_raw=store_raw, routing_indexes=routing)

    def stamp(self, ingested_at: datetime) -> bytes:
        return _ms(ingested_at)[0]

    def encode(self, rec: Record, ingested: bytes) -> EncodedRow:
        """One record (``ingested``: the serialized ``ingested_at`` of the whole write). Raises for a value that
        does not fit its column (a pid outside int32, a naive timestamp...): the caller binds such a record
        with the driver instead, to find out."""
        try:
            return self._encode(rec, ingested, str.encode)  # text as it is (the parsers give clean text) ...
        except UnicodeEncodeError:
            return self._encode(rec, ingested, _utf8)  # ... or with lone surrogates replaced, as bound() does

    def _encode(self, rec: Record, ingested: bytes, enc: Callable[[str], bytes]) -> EncodedRow:
        ts, days = _ms(rec.ts)
        fields = rec.fields
        if rec.hostname is not None and rec.hostname != self.host:
            fields = {**fields, "hostname": rec.hostname}
        if rec.quarantine is not None:
            fields = {**fields, "quarantine": rec.quarantine}
        message = enc(rec.message)
        raw = enc(rec.raw) if self.store_raw or rec.parse_error else UNSET_VALUE
        fields_b = _text_map(fields) if fields else UNSET_VALUE
        position = enc(rec.position)
        texts = self._texts
        source = texts.get(rec.source) or self._text(rec.source, enc)
        facility, severity, program, pid = rec.facility, rec.severity, rec.program, rec.pid
        row = (
            self._host, source, self._days.get(days) or self._day(days), ts, position,
            UNSET_VALUE if facility is None else texts.get(facility) or self._text(facility, enc),
            UNSET_VALUE if severity is None else texts.get(severity) or self._text(severity, enc),
            UNSET_VALUE if program is None else texts.get(program) or self._text(program, enc),
            UNSET_VALUE if pid is None else _INT32(pid),
            message, raw, _TRUE if rec.parse_error else _FALSE, fields_b, ingested,
        )
        values = self._order(row)
        size = 96 + len(message) + len(position) + len(source) + (len(raw) if raw is not UNSET_VALUE else 0) \
            + (len(fields_b) if fields_b is not UNSET_VALUE else 0)
        return EncodedRow(rec, values, self._routing(values), size)


def encoded_from_bound(rec: Record, values: list[Any], routing_indexes: tuple[int, ...]) -> EncodedRow:
    """The same shape for values the driver's ``bind`` serialized (the reference path)."""
    key = tuple(values[i] for i in routing_indexes)
    size = 96 + sum(len(v) for v in values if isinstance(v, bytes))
    return EncodedRow(rec, tuple(values), key, size)

