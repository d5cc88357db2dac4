"""Tables: one definition renders the HTML table of a page and its CSV export (``?export=<table>``).

A :class:`Table` is columns (a header, a function of the row, a kind that decides the formatting) over
rows. The page shows :meth:`Table.cells`; the CSV is :meth:`Table.csv_response` of the very same object, so
the export holds exactly what the page shows (with full precision). CSV cells that a spreadsheet would run
as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) are prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpResponse

Kind = Literal["text", "time", "number", "hours", "rate", "link", "status"]
NONE_TEXT = "\N{EN DASH}"
"""What a table shows for a missing value (the CSV leaves the cell empty)."""
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    value: Callable[[Any], Any]
    kind: Kind = "text"
    link: Callable[[Any], str | None] | None = None
    """A URL for the cell (the drill-down of a number)."""


def _display(value: Any, kind: Kind) -> str:
    number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    if value is None:
        text = NONE_TEXT
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif number and kind == "hours":
        text = f"{float(value):.2f} h"
    elif number and kind == "rate":
        text = f"{100 * float(value):.1f} %"
    elif isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    else:
        text = str(value)
    return text


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


@dataclass(frozen=True)
class Cell:
    text: str
    kind: Kind
    href: str | None = None


@dataclass
class Table:
    name: str
    title: str
    columns: Sequence[Column]
    rows: Sequence[Any]
    empty: str = "Nothing to show."
    note: str = ""
    totals: dict[str, Any] = field(default_factory=dict)

    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def cells(self) -> list[list[Cell]]:
        out = []
        for row in self.rows:
            line = []
            for col in self.columns:
                value = col.value(row)
                line.append(Cell(_display(value, col.kind), col.kind, col.link(row) if col.link else None))
            out.append(line)
        return out

    def records(self) -> list[dict[str, Any]]:
        return [{c.key: c.value(row) for c in self.columns} for row in self.rows]

    def csv_text(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow([c.key for c in self.columns])
        for row in self.rows:
            writer.writerow([_csv(c.value(row)) for c in self.columns])
        return buf.getvalue()

    def csv_response(self, stem: str = "") -> HttpResponse:
        name = _SAFE_NAME.sub("-", f"{stem}-{self.name}".strip("-").lower()) or "table"
        response = HttpResponse(self.csv_text(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response


def find(tables: Sequence[Table], name: str) -> Table | None:
    return next((t for t in tables if t.name == name), None)
