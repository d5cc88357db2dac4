"""The app's JSON log lines are what the collector parses without error (its own parser reads them)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from iact_agents.collector.records import parse_json_line
from iact_web.jsonlog import JsonFormatter


def test_the_collector_parses_every_field() -> None:
    record = logging.LogRecord("iact_web.access", logging.WARNING, __file__, 1, "GET %s %d", ("/x", 429), None)
    record.status = 429
    record.path = "/api/v1/live"
    line = JsonFormatter().format(record)
    fallback = datetime(2000, 1, 1, tzinfo=UTC)
    parsed = parse_json_line(line, source="/var/log/iact/web-app.json.log", position="0", fallback_ts=fallback)
    assert not parsed.parse_error
    assert parsed.ts != fallback and parsed.ts.tzinfo is not None
    assert parsed.message == "GET /x 429"
    assert parsed.severity == "warning" and parsed.program == "iact_web.access"
    assert parsed.fields["status"] == "429" and parsed.fields["path"] == "/api/v1/live"


def test_exceptions_and_odd_values_stay_one_json_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    record.weird = object()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = parse_json_line(line, source="s", position="1", fallback_ts=datetime(2000, 1, 1, tzinfo=UTC))
    assert not parsed.parse_error and "boom" in parsed.fields["exception"]
