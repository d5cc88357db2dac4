"""Login, CSRF failure and the error pages: JSON problem bodies under /api/, HTML elsewhere; never a trace."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .problems import problem_response

_TITLES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}


def _error(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return problem_response(status, _TITLES[status], detail)
    return render(request, "iact_web/error.html", {"status": status, "title": _TITLES[status], "detail": detail},
                  status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400, "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403, "You are not allowed to do this.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 404, f"Nothing at {request.path[:200]}.")


def server_error(request: HttpRequest) -> HttpResponse:
    request_id = getattr(request, "iact_request_id", None)
    detail = "Unexpected error; it is logged" + (f" as request {request_id}." if request_id else ".")
    try:
        return _error(request, 500, detail)
    except Exception:  # the error page itself failed: still no trace for the client
        return HttpResponse(detail, status=500, content_type="text/plain; charset=utf-8")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return _error(request, 403, "The form expired or came from elsewhere (CSRF check failed); reload and retry.")
