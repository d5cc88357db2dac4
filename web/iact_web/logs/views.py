"""The log search page: host, source and time range; one page of lines, newest first; CSV of the page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from iact_agents.errors import AgentError

from ..api.errors import BadParameter
from ..api.params import Param, form_query, parse_query, text
from ..core.tables import Column, Table
from ..ops.service import health_hosts
from .params import build_search, search_params
from .service import BadCursor, search

TEMPLATE = "iact_web/logs/search.html"


def lines_table(rows: list[dict[str, Any]]) -> Table:
    return Table("lines", "Lines, newest first", [
        Column("ts", "Time (UTC)", lambda r: r["ts"], "time"),
        Column("severity", "Severity", lambda r: r["severity"]),
        Column("program", "Program", lambda r: r["program"]),
        Column("pid", "PID", lambda r: r["pid"], "number"),
        Column("message", "Message", lambda r: r["message"]),
        Column("parse_error", "Unparsed", lambda r: r["parse_error"]),
        Column("position", "Position", lambda r: r["position"]),
    ], rows, empty="No lines in this range.")


def search_page(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"nav": "logs", "query": request.GET, "hosts": _hosts(),
                               "sources": settings.CONFIG.logs.suggested_sources,
                               "page_size_max": settings.CONFIG.logs.page_size_max}
    if not request.GET.get("host") and not request.GET.get("source"):
        return render(request, TEMPLATE, context)
    try:
        values = parse_query(form_query(dict(request.GET.lists())),
                             [*search_params(), Param("export", "CSV of the page.", text(16, r"lines", "table"))])
        query = build_search(values)
        page = search(query, values.get("page_size", settings.CONFIG.logs.page_size_default), values.get("cursor"))
    except BadParameter as exc:
        context.update(error=f"{exc.parameter}: {exc.message}", error_parameter=exc.parameter)
        return render(request, TEMPLATE, context, status=400)
    except BadCursor as exc:
        context.update(error=f"cursor: {exc}", error_parameter="cursor")
        return render(request, TEMPLATE, context, status=400)
    except AgentError as exc:
        context.update(error=str(exc))
        return render(request, TEMPLATE, context, status=503)
    table = lines_table(page.rows)
    if values.get("export"):
        return table.csv_response(f"logs-{query.host}")
    context.update(tables=[table], search=query, page=page)
    return render(request, TEMPLATE, context)


def _hosts() -> list[str]:
    try:
        return health_hosts()
    except Exception:  # suggestions only: the page works without them
        return []
