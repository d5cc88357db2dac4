"""Operations pages: health per host and check, alerts (acknowledge), job runs, backups and DR drills,
data quality, the fleet audit, remediation decisions. Every table exports as CSV (``?export=<table>``) from
the definition the page renders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from iact_agents.errors import AgentError

from ..api.errors import BadParameter
from ..api.params import Param, choice, form_query, int_between, parse_query, text
from ..core import audit
from ..core.tables import Table, find
from . import service
from .tables import (
    alerts_table,
    audits_table,
    drills_table,
    health_table,
    job_runs_table,
    last_jobs_table,
    quality_history_table,
    quality_table,
    recovery_point_table,
    remediations_table,
    resolved_alerts_table,
)

EXPORT = Param("export", "CSV of one table of the page.", text(64, r"[a-z_]+", "table name"))
HOST = Param("host", "Host name.", text(255, r"[A-Za-z0-9_.:-]+", "host name"))
JOB = Param("job", "Job name.", text(64, r"[a-z][a-z0-9_]*", "job name"))
STATUS = Param("status", "Run status.", choice("running", "success", "failure"))
PAGE = Param("page", "Page number.", int_between(1, 100_000), {"type": "integer", "minimum": 1})
OUTCOME = Param("outcome", "Remediation outcome.", choice(*service.REMEDIATION_OUTCOMES))
RUNS_PER_PAGE = 50


def _page(request: HttpRequest, template: str, nav: str, params: list[Param],
          build: Callable[[dict[str, Any]], tuple[list[Table], dict[str, Any]]]) -> HttpResponse:
    context: dict[str, Any] = {"nav": nav, "query": request.GET}
    try:
        values = parse_query(form_query(dict(request.GET.lists())), [*params, EXPORT])
        tables, extra = build(values)
        name = values.get("export")
        if name is not None:
            table = find(tables, name)
            if table is None:
                raise BadParameter("export", f"no table {name!r} on this page")
            return table.csv_response(nav)
    except BadParameter as exc:
        context.update(error=f"{exc.parameter}: {exc.message}", error_parameter=exc.parameter)
        return render(request, template, context, status=400)
    except DatabaseError as exc:
        context.update(error=f"the metrics store cannot be read now ({exc.args[0] if exc.args else 'error'})")
        return render(request, template, context, status=503)
    except AgentError as exc:  # read through the agents' own store code (the audit page)
        context.update(error=f"the metrics store cannot be read now ({exc})")
        return render(request, template, context, status=503)
    context.update(tables=tables, **extra)
    return render(request, template, context)


def health(request: HttpRequest) -> HttpResponse:
    def build(values: dict[str, Any]) -> tuple[list[Table], dict[str, Any]]:
        rows = service.latest_health(values.get("host"))
        counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "warning", "critical", "unknown")}
        return [health_table(rows)], {"counts": counts, "hosts": service.health_hosts(), "host": values.get("host")}

    return _page(request, "iact_web/ops/health.html", "health", [HOST], build)


def alerts(request: HttpRequest) -> HttpResponse:
    def build(values: dict[str, Any]) -> tuple[list[Table], dict[str, Any]]:
        open_rows = service.open_alerts()
        table = alerts_table(open_rows)
        return [table, resolved_alerts_table(service.recent_resolved_alerts())], {
            "open_rows": list(zip(open_rows, table.cells(), strict=True))}

    return _page(request, "iact_web/ops/alerts.html", "alerts", [], build)


@require_POST
def acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    note = request.POST.get("note", "")
    if len(note) > 512 or not note.isprintable():
        messages.error(request, "The note must be printable text of at most 512 characters.")
        return redirect("ops:alerts")
    try:
        service.acknowledge(alert_id, audit.actor_of(request), note.strip(), request=request)
    except service.AckRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Alert {alert_id} acknowledged: the health agent sends no more reminders for it.")
    return redirect("ops:alerts")


def jobs(request: HttpRequest) -> HttpResponse:
    def build(values: dict[str, Any]) -> tuple[list[Table], dict[str, Any]]:
        page = values.get("page", 1)
        runs = service.job_runs(values.get("job"), values.get("host"), values.get("status"),
                                limit=RUNS_PER_PAGE + 1, offset=(page - 1) * RUNS_PER_PAGE)
        more = len(runs) > RUNS_PER_PAGE
        return [last_jobs_table(service.last_job_runs()), job_runs_table(runs[:RUNS_PER_PAGE])], {
            "page": page, "more": more}

    return _page(request, "iact_web/ops/jobs.html", "jobs", [JOB, HOST, STATUS, PAGE], build)


def recovery(request: HttpRequest) -> HttpResponse:
    def build(values: dict[str, Any]) -> tuple[list[Table], dict[str, Any]]:
        return [recovery_point_table(service.recovery_point()), drills_table(service.drills()),
                job_runs_table(service.backups(), "Backup runs", "backups")], {}

    return _page(request, "iact_web/ops/recovery.html", "recovery", [], build)


def quality(request: HttpRequest) -> HttpResponse:
    def build(values: dict[str, Any]) -> tuple[list[Table], dict[str, Any]]:
        score, checks = service.latest_quality()
        return [quality_table(checks), quality_history_table(service.quality_history())], {"score": score}

    return _page(request, "iact_web/ops/quality.html", "quality", [], build)


def audit_page(request: HttpRequest) -> HttpResponse:
    def build(values: dict[str, Any]) -> tuple[list[Table], dict[str, Any]]:
        audits = service.latest_audits()
        counts = {o: sum(1 for a in audits if a.outcome == o) for o in ("passed", "failed", "incomplete")}
        return [audits_table(audits)], {"counts": counts}

    return _page(request, "iact_web/ops/audit.html", "audit", [], build)


def remediations(request: HttpRequest) -> HttpResponse:
    def build(values: dict[str, Any]) -> tuple[list[Table], dict[str, Any]]:
        page = values.get("page", 1)
        rows = service.remediations(values.get("host"), values.get("outcome"), limit=RUNS_PER_PAGE + 1,
                                    offset=(page - 1) * RUNS_PER_PAGE)
        return [remediations_table(rows[:RUNS_PER_PAGE])], {
            "page": page, "more": len(rows) > RUNS_PER_PAGE, "outcomes": service.REMEDIATION_OUTCOMES}

    return _page(request, "iact_web/ops/remediations.html", "remediations", [HOST, OUTCOME, PAGE], build)
