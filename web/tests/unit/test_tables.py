"""One table definition: the page's cells and the CSV have the same rows and columns; formulas are defused."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from iact_web.core.tables import NONE_TEXT, Column, Table


def test_csv_holds_what_the_page_shows() -> None:
    rows = [{"name": "=cmd|' /C calc'!A0", "when": datetime(2026, 11, 2, 10, 0, tzinfo=UTC), "rate": 0.25},
            {"name": "plain", "when": None, "rate": None}]
    table = Table("t", "T", [Column("name", "Name", lambda r: r["name"]),
                             Column("when", "When", lambda r: r["when"], "time"),
                             Column("rate", "Rate", lambda r: r["rate"], "rate")], rows)
    cells = table.cells()
    parsed = list(csv.reader(io.StringIO(table.csv_text())))
    assert parsed[0] == ["name", "when", "rate"]
    assert len(parsed) - 1 == len(cells) == 2
    assert parsed[1] == ["'=cmd|' /C calc'!A0", "2026-11-02T10:00:00+00:00", "0.25"]
    assert parsed[2] == ["plain", "", ""]
    assert [c.text for c in cells[0]] == ["=cmd|' /C calc'!A0", "2026-11-02 10:00:00", "25.0 %"]
    assert cells[1][1].text == NONE_TEXT
    response = table.csv_response("ops")
    assert response["Content-Disposition"] == 'attachment; filename="ops-t.csv"'
