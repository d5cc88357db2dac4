"""DORA pages: the dashboard (four keys, per-service table, trends) and the events behind every number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from iact_agents.errors import AgentError

from ..api.errors import BadParameter
from ..api.params import DayRange, Param, choice, day, day_range, form_query, parse_query, service_name, window_days
from ..core.tables import Table, find
from .service import SET_KIND, SET_TITLES, UnknownService, compute, events_total, trend
from .tables import drill_url, events_table, services_table, trend_table


def range_params() -> list[Param]:
    cfg = settings.CONFIG.dora
    return [
        Param("service", "Service name (default: all services).", service_name),
        Param("window", "Window length in days, ending with `to` (default 30).", window_days(cfg.range_days_max),
              {"type": "integer", "minimum": 1, "maximum": cfg.range_days_max}),
        Param("from", "First day (YYYY-MM-DD, UTC) of a custom range; not with `window`.", day,
              {"type": "string", "format": "date"}),
        Param("to", "Last day (YYYY-MM-DD, UTC), included (default: today).", day,
              {"type": "string", "format": "date"}),
    ]


def parse_range(query: dict[str, list[str]], extra: list[Param]) -> tuple[dict[str, Any], DayRange]:
    values = parse_query(query, [*range_params(), *extra])
    today = datetime.now(UTC).date()
    default = 30 if 30 in settings.CONFIG.dora.window_presets else settings.CONFIG.dora.window_presets[0]
    return values, day_range(values, today=today, default_days=default, max_days=settings.CONFIG.dora.range_days_max)


def _failure(request: HttpRequest, template: str, context: dict[str, Any], exc: Exception) -> HttpResponse:
    if isinstance(exc, BadParameter):
        context.update(error=f"{exc.parameter}: {exc.message}", error_parameter=exc.parameter)
        return render(request, template, context, status=400)
    if isinstance(exc, UnknownService):
        context.update(error=f"service: unknown service {exc.args[0]!r}", error_parameter="service")
        return render(request, template, context, status=400)
    context.update(error=f"the DORA data cannot be read now: {exc}")
    return render(request, template, context, status=503)


def _export(request: HttpRequest, tables: list[Table], name: str | None, stem: str) -> HttpResponse | None:
    if name is None:
        return None
    table = find(tables, name)
    if table is None:
        raise BadParameter("export", f"no table {name!r} on this page (tables: {', '.join(t.name for t in tables)})")
    return table.csv_response(stem)


def _chart(rows: list[dict[str, Any]], window: int) -> dict[str, Any]:
    def hours(v: Any) -> float | None:
        return None if v is None else round(float(v) / 3600, 3)

    return {
        "window_days": window,
        "labels": [r["computed_on"].isoformat() for r in rows],
        "series": {
            "deployment_days_per_week": [r["deployment_days_per_week"] for r in rows],
            "lead_time_hours": [hours(r["lead_time_seconds"]) for r in rows],
            "change_failure_rate_pct": [None if r["change_failure_rate"] is None
                                        else round(100 * float(r["change_failure_rate"]), 2) for r in rows],
            "time_to_restore_hours": [hours(r["time_to_restore_seconds"]) for r in rows],
        },
    }


def dashboard(request: HttpRequest) -> HttpResponse:
    template = "iact_web/dora/dashboard.html"
    context: dict[str, Any] = {"nav": "dora", "presets": settings.CONFIG.dora.window_presets, "query": request.GET}
    try:
        values, rng = parse_range(form_query(dict(request.GET.lists())), [Param("export", "CSV of a table.", str)])
        result = compute(rng, values.get("service"))
        defs = result.definitions
        trend_window = rng.preset if rng.preset in defs.snapshot_windows else defs.snapshot_windows[0]
        trend_rows = trend(result.service, trend_window, rng.last - timedelta(days=settings.CONFIG.dora.trend_days),
                           rng.last)
        tables = [services_table(result, result.per_service()), trend_table(trend_rows, trend_window)]
        exported = _export(request, tables, values.get("export"), f"dora-{rng.first}-{rng.last}")
        if exported is not None:
            return exported
    except (BadParameter, UnknownService, AgentError) as exc:
        return _failure(request, template, context, exc)
    head = result.headline()
    context.update(
        result=result, range=rng, services=result.events.services, head=head, tables=tables,
        chart=_chart(trend_rows, trend_window), trend_window=trend_window,
        links={name: drill_url(result, name) for name in SET_TITLES},
        range_query=rng.query(), definitions=defs, events_total=events_total(),
    )
    return render(request, template, context)


def events(request: HttpRequest) -> HttpResponse:
    template = "iact_web/dora/events.html"
    context: dict[str, Any] = {"nav": "dora", "query": request.GET}
    try:
        values, rng = parse_range(form_query(dict(request.GET.lists())), [
            Param("set", "Which events.", choice(*SET_KIND), required=True),
            Param("export", "CSV of the table.", str),
        ])
        result = compute(rng, values.get("service"))
        table = events_table(result, values["set"])
        exported = _export(request, [table], values.get("export"), f"dora-{rng.first}-{rng.last}")
        if exported is not None:
            return exported
    except (BadParameter, UnknownService, AgentError) as exc:
        return _failure(request, template, context, exc)
    context.update(result=result, range=rng, table=table, total=len(table.rows), set_name=values["set"],
                   head=result.headline())
    return render(request, template, context)
