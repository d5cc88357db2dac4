"""The log table's prepared upsert, built without a server (for tests of what the sink sends): the table as
roles/cassandra defines it (vars/main.yml), the statement of rows.write_cql, and the types a Cassandra
server announces for those columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from cassandra import cqltypes
from cassandra.protocol import ColumnMetadata
from cassandra.query import PreparedStatement
from iact_agents.collector.rows import BIND_ORDER, COLUMNS, PARTITION_KEY, write_cql

ROOT = Path(__file__).resolve().parents[4]

# What a Cassandra 5.0 server announces for the table's column types (protocol type codes -> driver classes).
SERVER_TYPES: dict[str, Any] = {
    "text": cqltypes.VarcharType,
    "date": cqltypes.SimpleDateType,
    "timestamp": cqltypes.DateType,
    "int": cqltypes.Int32Type,
    "boolean": cqltypes.BooleanType,
    "map<text, text>": cqltypes.MapType.apply_parameters([cqltypes.VarcharType, cqltypes.VarcharType]),
}


def prepared(types: dict[str, Any] | None = None, protocol_version: int = 5) -> PreparedStatement:
    doc = yaml.safe_load((ROOT / "roles/cassandra/vars/main.yml").read_text(encoding="utf-8"))
    column_types = {c["name"]: SERVER_TYPES[c["type"]] for c in doc["__cassandra_log_columns"]}
    column_types.update(types or {})
    assert doc["__cassandra_log_partition_key"] == list(PARTITION_KEY)
    names = [COLUMNS[i] for i in BIND_ORDER]
    meta = [ColumnMetadata("iact_logs", "infrastructure_logs", n, column_types[n]) for n in names]
    return PreparedStatement(meta, b"query-id", [names.index(c) for c in PARTITION_KEY],
                             write_cql("iact_logs", "infrastructure_logs"), "iact_logs", protocol_version, [], None)


