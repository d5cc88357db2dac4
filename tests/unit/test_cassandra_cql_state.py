"""The pure parts of roles/cassandra's CQL module: quoting, values, option drift, resource names.
Check mode and drift against a real cluster: tests/integration/cassandra/test_cql_state_module.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

MODULE = Path(__file__).resolve().parents[2] / "roles/cassandra/library/cassandra_cql_state.py"
_spec = importlib.util.spec_from_file_location("cassandra_cql_state", MODULE)
assert _spec is not None and _spec.loader is not None
cs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cs)


def test_values_and_identifiers_are_quoted_for_cql() -> None:
    assert cs.quote_ident('we"ird') == '"we""ird"'
    assert cs.quote_str("it's") == "'it''s'"
    assert cs.cql_value(True) == "true" and cs.cql_value(3600) == "3600"
    assert cs.cql_value({"class": "SizeTieredCompactionStrategy"}) == "{'class': 'SizeTieredCompactionStrategy'}"


@given(st.text())
def test_a_quoted_string_never_ends_early(value: str) -> None:
    quoted = cs.quote_str(value)
    assert quoted[0] == quoted[-1] == "'" and "'" not in quoted[1:-1].replace("''", "")


def test_an_equal_option_is_no_drift_whatever_the_class_package() -> None:
    have = {"default_time_to_live": 0, "compaction": {
        "class": "org.apache.cassandra.db.compaction.TimeWindowCompactionStrategy",
        "compaction_window_size": "1", "max_threshold": "32"}}
    want = {"default_time_to_live": 0, "compaction": {"class": "TimeWindowCompactionStrategy",
                                                      "compaction_window_size": 1}}
    assert cs.option_drift(have, want) == {}


def test_a_changed_scalar_or_map_key_is_drift() -> None:
    have = {"default_time_to_live": 100, "compaction": {"class": "x.TimeWindowCompactionStrategy",
                                                        "compaction_window_size": "1"}}
    want = {"default_time_to_live": 3600, "compaction": {"class": "TimeWindowCompactionStrategy",
                                                         "compaction_window_size": 7}}
    assert cs.option_drift(have, want) == want


def test_an_option_missing_on_the_server_is_drift() -> None:
    assert cs.option_drift({}, {"gc_grace_seconds": 3600}) == {"gc_grace_seconds": 3600}


def test_resources_map_between_cql_and_list_permissions() -> None:
    assert cs.State.cql_to_resource("KEYSPACE iact") == "<keyspace iact>"
    assert cs.State.resource_to_cql("<keyspace iact>") == "KEYSPACE iact"
    assert cs.State.resource_to_cql("<all keyspaces>") == "ALL KEYSPACES"
    assert cs.State.cql_to_resource("ALL KEYSPACES") == "<all keyspaces>"
