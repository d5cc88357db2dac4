"""Errors of the API as JSON problem bodies (RFC 9457): always a 4xx naming the parameter for bad input,
never a stack trace. Unexpected exceptions are logged (with their traceback, in the log only) and answered
500 with a request id."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from ..core.problems import PROBLEM_TYPE, problem

log = logging.getLogger(__name__)


class BadParameter(exceptions.APIException):
    """A query or body parameter that cannot be used: 400, naming it."""

    status_code = 400
    default_code = "bad_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class Conflict(exceptions.APIException):
    status_code = 409
    default_code = "conflict"


_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 415: "Unsupported Media Type",
           429: "Too Many Requests", 503: "Service Unavailable"}


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(_detail_text(d) for d in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_detail_text(v)}" for k, v in detail.items())
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # handler500 (iact_web.core.views.server_error) answers it; the traceback goes to the log
    status = exc.status_code
    parameter = None
    if isinstance(exc, BadParameter):
        detail, parameter = exc.message, exc.parameter
    elif isinstance(exc, exceptions.ParseError):
        detail, parameter = f"the body is not valid JSON: {_detail_text(exc.detail)}", "body"
    elif isinstance(exc, exceptions.ValidationError):
        detail = _detail_text(exc.detail)
        if isinstance(exc.detail, dict) and exc.detail:
            parameter = str(next(iter(exc.detail)))
    else:
        detail = _detail_text(exc.detail)
    response = Response(problem(status, _TITLES.get(status, "Error"), detail, parameter=parameter), status=status,
                        content_type=PROBLEM_TYPE)
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait is not None:
        response["Retry-After"] = str(int(wait))
    return response
