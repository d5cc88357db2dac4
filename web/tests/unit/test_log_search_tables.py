"""Which tables a log search reads, and cursors that name the table (iact_web/logs/service.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from iact_agents.logtables import COMMENT_PREFIX, LogTables, tables_from_rows
from iact_web.logs.service import BadCursor, Search, host_tables, make_cursor, read_cursor

SHARED = "infrastructure_logs"
SEARCH = Search("cass1", "/var/log/syslog", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC))


def tables(*rows: tuple[str, str]) -> LogTables:
    return LogTables(lambda: tables_from_rows(rows))


def test_own_table_first_then_the_shared_one_while_it_exists() -> None:
    both = tables((SHARED, "old lines"), ("infrastructure_logs_cass1", COMMENT_PREFIX + "cass1"))
    assert host_tables(both, "cass1", SHARED) == ["infrastructure_logs_cass1", SHARED]
    assert host_tables(both, "mysql1", SHARED) == [SHARED]  # a host not upgraded yet
    dropped = tables(("infrastructure_logs_cass1", COMMENT_PREFIX + "cass1"))
    assert host_tables(dropped, "cass1", SHARED) == ["infrastructure_logs_cass1"]
    assert host_tables(dropped, "mysql1", SHARED) == []


def test_another_host_s_table_is_never_read() -> None:
    # a table named like cass1's but made for another host: cass1's rows are not read from it
    found = tables(("infrastructure_logs_cass1", COMMENT_PREFIX + "evil"))
    assert host_tables(found, "cass1", SHARED) == []


def test_cursor_names_day_and_table() -> None:
    token = make_cursor(SEARCH, date(2026, 1, 2), "infrastructure_logs_cass1", b"\x01\x02")
    assert read_cursor(SEARCH, token) == (date(2026, 1, 2), "infrastructure_logs_cass1", b"\x01\x02")
    other = Search("cass2", SEARCH.source, SEARCH.start, SEARCH.end)
    with pytest.raises(BadCursor):
        read_cursor(other, token)
    with pytest.raises(BadCursor):
        read_cursor(SEARCH, token[:-3] + "abc")
