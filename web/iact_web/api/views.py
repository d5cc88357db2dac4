"""The API endpoints (``/api/v1/...`` and ``/api/v2/...``). Thin: parameters and serializers are declared,
the data comes from the same service functions as the pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.schemas.openapi import SchemaGenerator
from rest_framework.views import APIView

from ..config import API_VERSIONS
from ..core import audit
from ..dora import service as dora
from ..dora.service import SET_KIND, UnknownService
from ..dora.views import parse_range, range_params
from ..logs.params import build_search, search_params
from ..logs.service import BadCursor
from ..logs.service import search as log_search
from ..ops import service as ops
from . import serializers as out
from .base import Endpoint
from .errors import BadParameter, Conflict
from .params import DayRange, Param, choice, text
from .versions import version_status

HOST = Param("host", "Host name.", text(255, r"[A-Za-z0-9_.:-]+", "host name"))


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for nginx and the health agent (no login): the process answers and MySQL is reachable."""
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return JsonResponse({"status": "ok", "mysql": "ok"})
    except DatabaseError:
        return JsonResponse({"status": "error", "mysql": "unreachable"}, status=503)


def docs(request: HttpRequest) -> HttpResponse:
    """The API's page for people: versions, policy, endpoints, links to the schemas."""
    return render(request, "iact_web/api.html", {
        "nav": "api", "versions": [version_status(v) for v in API_VERSIONS],
        "ratelimit": settings.CONFIG.ratelimit,
    })


class Versions(APIView):
    """Every API version with its state and dates (the deprecation policy's machine-readable side)."""

    permission_classes = ()
    authentication_classes = ()
    versioning_class = None  # not under a version's path
    schema = None  # not part of a version's document

    def get(self, request: Request) -> Response:
        return Response({"versions": [version_status(v) for v in API_VERSIONS],
                         "policy": "web/README.md, section 'API versions and deprecation'"})


class OpenApi(APIView):
    """The OpenAPI 3 document of one API version, generated from the endpoints' declarations."""

    schema = None

    def get(self, request: Request, version: str) -> Response:
        generator = SchemaGenerator(title="IACT API", version=version,
                                    description=f"IACT metrics and operations API, {version}.")
        schema = generator.get_schema(request=None, public=True)
        assert schema is not None
        schema["paths"] = {p: v for p, v in schema["paths"].items() if p.startswith(f"/api/{version}/")}
        schema["components"]["securitySchemes"] = {
            "token": {"type": "apiKey", "in": "header", "name": "Authorization",
                      "description": "`Token <token>` (or `Bearer <token>`) of an API client"},
            "session": {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME},
        }
        schema["security"] = [{"token": []}, {"session": []}]
        return Response(schema)


# --- DORA -------------------------------------------------------------------------------------------------

def _compute(values: dict[str, Any], rng: DayRange) -> dora.DoraResult:
    try:
        return dora.compute(rng, values.get("service"))
    except UnknownService as exc:
        raise BadParameter("service", f"unknown service {exc.args[0]!r}") from None


def _range(rng: DayRange) -> dict[str, Any]:
    return {"first_day": rng.first, "last_day": rng.last, "days": rng.days, "start": rng.start, "end": rng.end}


class DoraMetrics(Endpoint):
    """The four DORA keys of one service (or all) over a window, with their benchmark levels.

    v1 is flat with durations in hours; v2 gives each key as an object with its value (durations in
    seconds), unit, level, the number of events it was computed from and the URL listing those events."""

    tag = "dora"
    operation_ids: ClassVar[dict[str, str]] = {"get": "getDoraMetrics"}

    def declared_params(self) -> list[Param]:
        return range_params()

    def serializer_for(self, version: str) -> Any:
        return out.DoraMetricsV2() if version == "v2" else out.DoraMetricsV1()

    def get(self, request: Request, version: str) -> Response:
        values, rng = parse_range(dict(request.query_params.lists()), [])
        result = _compute(values, rng)
        head = result.headline()
        if version == "v2":
            return Response(out.DoraMetricsV2(self._v2(result, head)).data)
        df, lt, cfr, rt = (head["deployment_frequency"], head["lead_time"], head["change_failure_rate"],
                           head["recovery_time"])
        return Response(out.DoraMetricsV1({
            "service": result.service_key, "window": _range(rng), "benchmark_year": result.benchmark_year,
            "deployments": df["deployments"], "deployments_per_day": df["deployments_per_day"],
            "deployment_days_per_week": df["deployment_days_per_week"], "deployment_frequency_class": df["class"],
            "changes": lt["changes"], "lead_time_median_hours": lt["median_hours"],
            "lead_time_p90_hours": lt["p90_hours"], "lead_time_class": lt["class"],
            "failed_changes": cfr["failed"], "change_failure_rate": cfr["rate"],
            "change_failure_rate_class": cfr["class"], "incidents": rt["incidents"],
            "time_to_restore_median_hours": rt["median_hours"], "time_to_restore_class": rt["class"],
        }).data)

    def _v2(self, result: dora.DoraResult, head: dict[str, Any]) -> dict[str, Any]:
        def events(kind: str, set_name: str) -> str:
            query = {"set": set_name, **result.range.query()}
            if result.service:
                query["service"] = result.service
            return f"{reverse(f'api:{kind}', kwargs={'version': 'v2'})}?{urlencode(query)}"

        def seconds(hours: float | None) -> float | None:
            return None if hours is None else round(hours * 3600, 3)

        df, lt, cfr, rt = (head["deployment_frequency"], head["lead_time"], head["change_failure_rate"],
                           head["recovery_time"])
        return {
            "service": result.service, "window": _range(result.range), "benchmark_year": result.benchmark_year,
            "deployment_frequency": {"value": df["deployment_days_per_week"], "unit": "deployment_days_per_week",
                                     "level": df["class"], "count": df["deployments"],
                                     "events": events("deployments", "deployments"), "reason": df["reason"]},
            "lead_time": {"value": seconds(lt["median_hours"]), "unit": "seconds", "level": lt["class"],
                          "count": lt["changes"], "events": events("changes", "changes"), "reason": lt["reason"]},
            "change_failure_rate": {"value": cfr["rate"], "unit": "ratio", "level": cfr["class"],
                                    "count": cfr["failed"], "events": events("deployments", "failed_deployments"),
                                    "reason": cfr["reason"]},
            "failed_deployment_recovery_time": {
                "value": seconds(rt["median_hours"]), "unit": "seconds", "level": rt["class"],
                "count": rt["incidents"], "events": events("incidents", "incidents"), "reason": rt["reason"]},
        }


class _Events(Endpoint):
    """Base of the three event lists: every event of the kind in the range, or with ``set`` the events
    behind one DORA number (their count equals it)."""

    tag = "dora"
    paged = True
    kind: ClassVar[str] = ""

    def declared_params(self) -> list[Param]:
        sets = [name for name, kind in SET_KIND.items() if kind == self.kind]
        return [*range_params(), Param(
            "set", f"Only the events behind one number: {', '.join(sets)} (default: every {self.kind} in the "
            "range).", choice(*sets), {"type": "string", "enum": sets})]

    def get(self, request: Request, version: str) -> Response:
        values, rng = parse_range(dict(request.query_params.lists()), [
            p for p in self.all_params() if p.name not in {q.name for q in range_params()}])
        result = _compute(values, rng)
        set_name = values.get("set")
        if set_name is not None:
            items = dora.events_of(result, result.members(set_name), self.kind)
        else:
            items = self.in_range(result, rng)
        return Response(self.paginate(request, values, sorted(items, key=self.order, reverse=True)))

    def in_range(self, result: dora.DoraResult, rng: DayRange) -> list[Any]:
        raise NotImplementedError

    @staticmethod
    def order(event: Any) -> Any:
        raise NotImplementedError


def _mine(result: dora.DoraResult, event: Any) -> bool:
    return result.service is None or event.service == result.service


class Deployments(_Events):
    """Deployments (any environment and status) finished in the range, or one drill-down set."""

    kind = "deployment"
    operation_ids: ClassVar[dict[str, str]] = {"get": "listDeployments"}
    response_serializer = out.Deployment()

    def in_range(self, result: dora.DoraResult, rng: DayRange) -> list[Any]:
        return [d for d in result.events.deployments.values()
                if _mine(result, d) and rng.start <= d.deployed_at < rng.end]

    @staticmethod
    def order(event: Any) -> Any:
        return event.deployed_at


class Changes(_Events):
    """Changes committed in the range, or one drill-down set."""

    kind = "change"
    operation_ids: ClassVar[dict[str, str]] = {"get": "listChanges"}
    response_serializer = out.Change()

    def in_range(self, result: dora.DoraResult, rng: DayRange) -> list[Any]:
        return [c for c in result.events.changes.values()
                if _mine(result, c) and rng.start <= c.committed_at < rng.end]

    @staticmethod
    def order(event: Any) -> Any:
        return event.committed_at


class Incidents(_Events):
    """Incidents (any environment) started in the range, or one drill-down set."""

    kind = "incident"
    operation_ids: ClassVar[dict[str, str]] = {"get": "listIncidents"}
    response_serializer = out.Incident()

    def in_range(self, result: dora.DoraResult, rng: DayRange) -> list[Any]:
        return [i for i in result.events.incidents.values()
                if _mine(result, i) and rng.start <= i.started_at < rng.end]

    @staticmethod
    def order(event: Any) -> Any:
        return event.started_at


# --- operations -------------------------------------------------------------------------------------------

class Health(Endpoint):
    """The newest result of every check of every host (of one host with ``host``)."""

    tag = "operations"
    paged = True
    params = (HOST,)
    operation_ids: ClassVar[dict[str, str]] = {"get": "listHealth"}
    response_serializer = out.HealthCheck()

    def get(self, request: Request, version: str) -> Response:
        values = self.query(request)
        return Response(self.paginate(request, values, ops.latest_health(values.get("host"))))


class Alerts(Endpoint):
    """Alerts: open and acknowledged ones (default), resolved ones of the last 7 days, or both."""

    tag = "operations"
    paged = True
    params = (Param("status", "open (open and acknowledged; default), resolved, or all.",
                    choice("open", "resolved", "all"), {"type": "string", "enum": ["open", "resolved", "all"]}),)
    operation_ids: ClassVar[dict[str, str]] = {"get": "listAlerts"}
    response_serializer = out.Alert()

    def get(self, request: Request, version: str) -> Response:
        values = self.query(request)
        status = values.get("status", "open")
        rows: list[dict[str, Any]] = []
        if status in ("open", "all"):
            rows += ops.open_alerts()
        if status in ("resolved", "all"):
            rows += ops.recent_resolved_alerts(limit=10_000)
        return Response(self.paginate(request, values, rows))


class AlertAcknowledge(Endpoint):
    """Acknowledge an open alert (recorded with who, when and the note; the health agent then sends no
    reminders for it). 409 if it is already acknowledged or resolved."""

    tag = "operations"
    operation_ids: ClassVar[dict[str, str]] = {"post": "acknowledgeAlert"}
    request_serializer = out.AcknowledgeIn()
    response_serializer = out.Acknowledgement()

    def post(self, request: Request, version: str, alert_id: int) -> Response:
        body = out.AcknowledgeIn(data=request.data if isinstance(request.data, dict) else {"note": None})
        if not isinstance(request.data, dict):
            raise BadParameter("body", "must be a JSON object, e.g. {\"note\": \"on it\"}")
        body.is_valid(raise_exception=True)
        try:
            ack = ops.acknowledge(alert_id, audit.actor_of(request._request), body.validated_data["note"],
                                  request=request._request)
        except ops.AckRefused as exc:
            if exc.status == 404:
                raise BadParameter("alert_id", str(exc)) from None
            raise Conflict(str(exc)) from None
        return Response(out.Acknowledgement(ack).data, status=201)


class JobRuns(Endpoint):
    """Runs of the scheduled jobs (newest first), filtered by job, host and status."""

    tag = "operations"
    paged = True
    params = (
        Param("job", "Job name (e.g. backup, health, dora).", text(64, r"[a-z][a-z0-9_]*", "job name")),
        HOST,
        Param("status", "running, success or failure.", choice("running", "success", "failure"),
              {"type": "string", "enum": ["running", "success", "failure"]}),
    )
    operation_ids: ClassVar[dict[str, str]] = {"get": "listJobRuns"}
    response_serializer = out.JobRun()

    def get(self, request: Request, version: str) -> Response:
        values = self.query(request)
        limit, offset = self.page_bounds(values)
        job, host, status = values.get("job"), values.get("host"), values.get("status")
        rows = ops.job_runs(job, host, status, limit=limit, offset=offset)
        total = ops.count_job_runs(job, host, status)
        return Response(self.paginate(request, values, rows, total=total, already_sliced=True))


class Drills(Endpoint):
    """DR drills (newest first) with their measured RPO and RTO."""

    tag = "operations"
    paged = True
    operation_ids: ClassVar[dict[str, str]] = {"get": "listDrills"}
    response_serializer = out.Drill()

    def get(self, request: Request, version: str) -> Response:
        values = self.query(request)
        limit, offset = self.page_bounds(values)
        return Response(self.paginate(request, values, ops.drills(limit, offset), total=ops.count_drills(),
                                      already_sliced=True))


class Quality(Endpoint):
    """The newest data-quality run: score (0-100) and every check."""

    tag = "operations"
    operation_ids: ClassVar[dict[str, str]] = {"get": "getQuality"}

    def get(self, request: Request, version: str) -> Response:
        self.query(request)
        score, checks = ops.latest_quality()
        return Response({
            "score": None if score is None else score["observed_value"],
            "status": None if score is None else score["status"],
            "checked_at": None if score is None else score["checked_at"],
            "checks": out.QualityCheck(checks, many=True).data,
        })


class Live(Endpoint):
    """What the open pages poll: counts that change (open alerts, failing checks, failed jobs)."""

    tag = "pages"
    operation_ids: ClassVar[dict[str, str]] = {"get": "getLive"}

    def get(self, request: Request, version: str) -> Response:
        self.query(request)
        alerts = ops.open_alerts()
        health = ops.latest_health()
        since = datetime.now(UTC) - timedelta(hours=24)
        failed_jobs = [r for r in ops.last_job_runs() if r["status"] == "failure" and r["started_at"] >= since]
        return Response({
            "updated_at": datetime.now(UTC).strftime("%H:%M:%S UTC"),
            "open_alerts": sum(1 for a in alerts if a["status"] == "open"),
            "acknowledged_alerts": sum(1 for a in alerts if a["status"] == "acknowledged"),
            "critical_alerts": sum(1 for a in alerts if a["severity"] == "critical"),
            "health_problems": sum(1 for h in health if h["status"] in ("warning", "critical")),
            "failed_jobs_24h": len(failed_jobs),
            "dora_events": dora.events_total(),
        })


class Logs(Endpoint):
    """Log lines of one host and source in a time range, newest first, read by partition key
    (host, source, day) through the read-only reader role; page on with the `next` URL."""

    tag = "logs"
    operation_ids: ClassVar[dict[str, str]] = {"get": "searchLogs"}
    response_serializer = out.LogPage()

    def declared_params(self) -> list[Param]:
        return search_params()

    def get(self, request: Request, version: str) -> Response:
        values = self.query(request)
        query = build_search(values)
        size = values.get("page_size", settings.CONFIG.logs.page_size_default)
        try:
            page = log_search(query, size, values.get("cursor"))
        except BadCursor as exc:
            raise BadParameter("cursor", str(exc)) from None
        next_url = None
        if page.next_cursor is not None:
            params = {k: v[-1] for k, v in request.query_params.lists()} | {"cursor": page.next_cursor}
            next_url = f"{request.path}?{urlencode(params)}"
        return Response(out.LogPage({"page_size": size, "next": next_url, "results": page.rows}).data)


def endpoints() -> Sequence[tuple[str, type[Endpoint], str]]:
    """``(path after /api/<version>/, view, url name)`` of every versioned endpoint."""
    return (
        ("dora/metrics", DoraMetrics, "dora-metrics"),
        ("deployments", Deployments, "deployments"),
        ("changes", Changes, "changes"),
        ("incidents", Incidents, "incidents"),
        ("health", Health, "health"),
        ("alerts", Alerts, "alerts"),
        ("alerts/<int:alert_id>/acknowledge", AlertAcknowledge, "alert-acknowledge"),
        ("jobs", JobRuns, "jobs"),
        ("drills", Drills, "drills"),
        ("quality", Quality, "quality"),
        ("logs", Logs, "logs"),
        ("live", Live, "live"),
    )
