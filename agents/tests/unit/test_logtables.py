"""host -> table of the per-host log tables (iact_agents/logtables.py)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iact_agents import logtables
from iact_agents.logtables import COMMENT_PREFIX, LogTables, Tables, host_of, tables_from_rows

SHARED = ("infrastructure_logs", "Infrastructure log lines (iact-ops) written before the per-host tables")


def test_host_of_reads_the_role_s_comment() -> None:
    assert host_of(COMMENT_PREFIX + "cass1") == "cass1"
    assert host_of(COMMENT_PREFIX + "Web-1.example.com") == "Web-1.example.com"


def test_host_of_refuses_what_the_role_never_writes() -> None:
    for comment in (None, 42, "", SHARED[1], COMMENT_PREFIX, COMMENT_PREFIX + " cass1", COMMENT_PREFIX + "a\nb",
                    "iact-ops log lines of hostcass1", "x" + COMMENT_PREFIX + "cass1"):
        assert host_of(comment) is None, comment


def test_tables_from_rows_maps_hosts_and_keeps_every_usable_name() -> None:
    tables = tables_from_rows([
        SHARED,
        ("infrastructure_logs_cass1", COMMENT_PREFIX + "cass1"),
        ("infrastructure_logs_web_1_example_com_fded5436", COMMENT_PREFIX + "Web-1.Example.com"),
        ('bad"name', COMMENT_PREFIX + "evil"),  # never used in a query
        ("x" * 49, COMMENT_PREFIX + "long"),
        (None, COMMENT_PREFIX + "none"),
    ])
    assert tables.by_host == {"cass1": "infrastructure_logs_cass1",
                              "Web-1.Example.com": "infrastructure_logs_web_1_example_com_fded5436"}
    assert tables.names == {"infrastructure_logs", "infrastructure_logs_cass1",
                            "infrastructure_logs_web_1_example_com_fded5436"}


def test_two_tables_naming_one_host_give_the_first_name() -> None:
    rows = [("logs_b", COMMENT_PREFIX + "h"), ("logs_a", COMMENT_PREFIX + "h")]
    assert tables_from_rows(rows).by_host == {"h": "logs_a"}
    assert tables_from_rows(list(reversed(rows))).by_host == {"h": "logs_a"}


NAMES = st.one_of(st.none(), st.integers(), st.text(max_size=60), st.from_regex(r"[a-z_]{1,50}", fullmatch=True))
COMMENTS = st.one_of(st.none(), st.text(max_size=80), st.text(max_size=30).map(COMMENT_PREFIX.__add__))


@given(st.lists(st.tuples(NAMES, COMMENTS)))
def test_tables_from_rows_is_total(rows: list[tuple[object, object]]) -> None:
    tables = tables_from_rows(rows)
    assert set(tables.by_host.values()) <= tables.names
    for host, name in tables.by_host.items():
        assert logtables._TABLE_NAME.fullmatch(name)
        assert (name, COMMENT_PREFIX + host) in rows


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Schema:
    """What system_schema.tables answers, changed by the test; counts the reads."""

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows
        self.reads = 0

    def __call__(self) -> Tables:
        self.reads += 1
        return tables_from_rows(self.rows)


def test_kept_for_max_age_then_read_again() -> None:
    schema, clock = Schema([SHARED, ("logs_a", COMMENT_PREFIX + "a")]), Clock()
    tables = LogTables(schema, max_age_s=60, miss_interval_s=5, clock=clock)
    assert tables.table("a") == "logs_a" and tables.exists("infrastructure_logs")
    assert schema.reads == 1
    schema.rows = [("logs_a2", COMMENT_PREFIX + "a")]
    clock.now += 59
    assert tables.table("a") == "logs_a" and tables.exists("infrastructure_logs")
    assert schema.reads == 1
    clock.now += 1
    assert tables.table("a") == "logs_a2" and not tables.exists("infrastructure_logs")
    assert schema.reads == 2


def test_a_miss_reads_again_at_most_every_miss_interval() -> None:
    schema, clock = Schema([("logs_a", COMMENT_PREFIX + "a")]), Clock()
    tables = LogTables(schema, max_age_s=60, miss_interval_s=5, clock=clock)
    assert tables.table("b") is None
    assert schema.reads == 1
    schema.rows.append(("logs_b", COMMENT_PREFIX + "b"))  # a collector registered since
    clock.now += 4
    assert tables.table("b") is None  # too soon after the last read
    assert tables.table("a") == "logs_a"
    assert schema.reads == 1
    clock.now += 1
    assert tables.table("b") == "logs_b"
    assert schema.reads == 2
    for _ in range(10):  # known now: no more reads
        assert tables.table("b") == "logs_b"
    assert schema.reads == 2


def test_a_failed_read_is_not_kept() -> None:
    clock = Clock()
    calls = []

    def fetch() -> Tables:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("node down")
        return tables_from_rows([("logs_a", COMMENT_PREFIX + "a")])

    tables = LogTables(fetch, clock=clock)
    with pytest.raises(ConnectionError):
        tables.table("a")
    assert tables.table("a") == "logs_a"
    assert len(calls) == 2


def test_threads_share_one_read() -> None:
    schema, clock = Schema([("logs_a", COMMENT_PREFIX + "a")]), Clock()
    tables = LogTables(schema, clock=clock)
    found: list[str | None] = []
    threads = [threading.Thread(target=lambda: found.append(tables.table("a"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == ["logs_a"] * 8
    assert schema.reads == 1
