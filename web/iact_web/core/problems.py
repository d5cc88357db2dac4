"""JSON problem bodies (RFC 9457, ``application/problem+json``) for every error the app answers itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import JsonResponse

PROBLEM_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str, *, parameter: str | None = None,
            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if parameter is not None:
        body["parameter"] = parameter
    if extra:
        body.update(extra)
    return body


def problem_response(status: int, title: str, detail: str, *, parameter: str | None = None,
                     extra: Mapping[str, Any] | None = None,
                     headers: Mapping[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(problem(status, title, detail, parameter=parameter, extra=extra), status=status,
                            content_type=PROBLEM_TYPE, json_dumps_params={"ensure_ascii": False})
    for name, value in (headers or {}).items():
        response[name] = value
    return response
