from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..config import API_VERSIONS
from .versions import version_status


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for nginx and the health agent: the process answers and MySQL is reachable."""
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return JsonResponse({"status": "ok", "mysql": "ok"})
    except DatabaseError:
        return JsonResponse({"status": "error", "mysql": "unreachable"}, status=503)


def docs(request: HttpRequest) -> HttpResponse:
    return render(request, "iact_web/dora/dashboard.html", {"nav": "api"})


class Versions(APIView):
    permission_classes = ()
    authentication_classes = ()

    def get(self, request: Request) -> Response:
        return Response({"versions": [version_status(v) for v in API_VERSIONS]})


class Live(APIView):
    def get(self, request: Request, version: str) -> Response:
        return Response({"version": version})
