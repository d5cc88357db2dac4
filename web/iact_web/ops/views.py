from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _page(request: HttpRequest, name: str) -> HttpResponse:
    return render(request, "iact_web/dora/dashboard.html", {"nav": name})


def health(request: HttpRequest) -> HttpResponse:
    return _page(request, "health")


def alerts(request: HttpRequest) -> HttpResponse:
    return _page(request, "alerts")


def jobs(request: HttpRequest) -> HttpResponse:
    return _page(request, "jobs")


def recovery(request: HttpRequest) -> HttpResponse:
    return _page(request, "recovery")


def quality(request: HttpRequest) -> HttpResponse:
    return _page(request, "quality")
