"""rows.RowEncoder against the driver's own binding: for any record, the bytes it sends are the bytes
``PreparedStatement.bind`` would send for ``bound(row_values(...))``, and its routing key is the bound
statement's. The prepared statement is built here, without a server, from the table as roles/cassandra
defines it (vars/main.yml) and the statement of rows.write_cql, with the types a Cassandra server announces
for those columns (upsert.py). (Against a real server: agents/tests/integration/collector, which also checks that the
encoder is the one in use.)"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cassandra import cqltypes
from cassandra.query import BatchStatement, BatchType, PreparedStatement
from hypothesis import given, settings
from hypothesis import strategies as st
from iact_agents.collector.records import Record
from iact_agents.collector.rows import (
    BIND_ORDER,
    COLUMNS,
    RowEncoder,
    bound,
    in_bind_order,
    plain_row,
    routing_key,
    row_values,
)
from upsert import prepared

NOW = datetime(2026, 11, 29, 12, 0, 0, 654321, tzinfo=UTC)

PREPARED = prepared()

texts = st.text(max_size=40)  # includes lone surrogates: both paths must clean them the same way
aware = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-11))]))
records = st.builds(
    Record,
    source=texts, position=texts, ts=aware, message=texts, raw=texts, parse_error=st.booleans(),
    facility=st.none() | texts, severity=st.none() | texts, program=st.none() | texts,
    pid=st.none() | st.integers(min_value=-(2**31), max_value=2**31 - 1), hostname=st.none() | texts,
    fields=st.dictionaries(texts, texts, max_size=5), quarantine=st.none() | texts,
)


def reference(rec: Record, host: str, store_raw: bool, stmt: PreparedStatement = PREPARED) -> Any:
    return stmt.bind(in_bind_order(bound(row_values(host, rec, store_raw=store_raw, ingested_at=NOW))))


@settings(max_examples=400, deadline=None)
@given(rec=records, host=st.sampled_from(["cass1", "h\udcff"]), store_raw=st.booleans())
def test_encoder_sends_the_bytes_the_driver_binds(rec: Record, host: str, store_raw: bool) -> None:
    encoder = RowEncoder.for_statement(PREPARED, host, store_raw=store_raw)
    assert encoder is not None
    ref = reference(rec, host, store_raw)
    row = encoder.encode(rec, encoder.stamp(NOW))
    assert list(row.values) == ref.values
    assert routing_key(row.key) == ref.routing_key
    assert row.source is rec.source and row.raw is rec.raw and row.size > 0
    # What a row keeps of its record (it does not keep the record) gives the record's own plain row.
    plain = [PREPARED.bind(in_bind_order(plain_row(host, x, "why", NOW))).values for x in (row, rec)]
    assert plain[0] == plain[1]


@settings(max_examples=150, deadline=None)
@given(recs=st.lists(records, max_size=12), store_raw=st.booleans())
def test_one_encoder_over_many_records_still_sends_the_drivers_bytes(recs: list[Record], store_raw: bool) -> None:
    """The encoder reuses the bytes of texts and days it has seen: never another record's value."""
    encoder = RowEncoder.for_statement(PREPARED, "cass1", store_raw=store_raw)
    assert encoder is not None
    stamp = encoder.stamp(NOW)
    for rec in recs + recs[::-1]:
        assert list(encoder.encode(rec, stamp).values) == reference(rec, "cass1", store_raw).values


@settings(max_examples=200, deadline=None)
@given(ts=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)))
def test_timestamps_keep_the_drivers_milliseconds(ts: datetime) -> None:
    """ts is a clustering column: a row written before and after this encoder must have the same key."""
    rec = Record(source="s", position="p", ts=ts, message="m", raw="m")
    encoder = RowEncoder.for_statement(PREPARED, "h", store_raw=False)
    assert encoder is not None
    values = encoder.encode(rec, encoder.stamp(NOW)).values
    assert list(values) == reference(rec, "h", False).values
    assert values[BIND_ORDER.index(COLUMNS.index("ts"))] == cqltypes.DateType.serialize(ts, 5)


@pytest.mark.parametrize("rec", [
    Record(source="s", position="p", ts=NOW, message="m", raw="m", pid=2**31),  # not an int32
    Record(source="s", position="p", ts=NOW.replace(tzinfo=None), message="m", raw="m"),  # naive
])
def test_a_value_the_encoder_cannot_serialize_raises(rec: Record) -> None:
    """... so the sink binds that record with the driver, which decides (the pid: refused; the naive instant:
    taken as UTC), and both paths treat poison records alike."""
    encoder = RowEncoder.for_statement(PREPARED, "h", store_raw=False)
    assert encoder is not None
    with pytest.raises((TypeError, ValueError, OverflowError, struct.error)):
        encoder.encode(rec, encoder.stamp(NOW))


def test_two_keys_that_clean_to_the_same_text_become_one_entry_as_in_bound() -> None:
    fields = {chr(0xD800): "a", chr(0xDFFF): "b"}
    rec = Record(source="s", position="p", ts=NOW, message="m", raw="m", fields=fields)
    encoder = RowEncoder.for_statement(PREPARED, "h", store_raw=False)
    assert encoder is not None
    assert list(encoder.encode(rec, encoder.stamp(NOW)).values) == reference(rec, "h", False).values


@pytest.mark.parametrize("change", [
    {"pid": cqltypes.LongType},  # pid bigint
    {"fields": cqltypes.MapType.apply_parameters([cqltypes.VarcharType, cqltypes.Int32Type])},
    {"day": cqltypes.DateType},
])
def test_no_encoder_for_other_column_types(change: dict[str, Any]) -> None:
    """The sink then binds every row with the driver (and logs that it does)."""
    assert RowEncoder.for_statement(prepared(change), "h", store_raw=False) is None
    assert RowEncoder.for_statement(prepared(protocol_version=3), "h", store_raw=False) is None


def test_a_batch_of_encoded_rows_is_the_batch_of_bound_statements() -> None:
    """What the sink hands the driver (sink._statement) equals BatchStatement.add() of bound statements."""
    from iact_agents.collector.sink import CassandraSink, _Connection  # noqa: PLC0415

    recs = [Record(source="/var/log/syslog", position=f"f:{i}", ts=NOW, message=f"m{i}", raw="r", pid=i)
            for i in range(3)]
    encoder = RowEncoder.for_statement(PREPARED, "h", store_raw=False)
    assert encoder is not None
    conn = _Connection(cluster=None, session=None, insert=PREPARED, encoder=encoder)
    ours = CassandraSink._statement(conn, [encoder.encode(r, encoder.stamp(NOW)) for r in recs])
    theirs = BatchStatement(batch_type=BatchType.UNLOGGED)
    for r in recs:
        theirs.add(reference(r, "h", False))
    assert [(p, q, list(v)) for p, q, v in ours._statements_and_parameters] == \
        [(p, q, list(v)) for p, q, v in theirs._statements_and_parameters]
    assert (ours.routing_key, ours.keyspace, ours.batch_type) == (theirs.routing_key, theirs.keyspace,
                                                                  theirs.batch_type)
