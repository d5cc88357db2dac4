"""API versions and their deprecation (README.md, "API versions and deprecation", is the written policy).

A version listed under ``[api.versions.<v>]`` with ``deprecated_at`` answers, on every response:

- ``Deprecation: @<epoch seconds>`` (RFC 9745: a structured-field date; the date may be in the future);
- ``Sunset: <HTTP-date>`` (RFC 8594) when ``sunset_at`` is set, 6 to 12 months after ``deprecated_at``
  (checked when the configuration loads);
- ``Link: </api/<successor>/...>; rel="successor-version"`` (the same path in the next version when it has
  it, else the successor's root) and ``Link: <...>; rel="deprecation"`` (the policy).

From ``sunset_at`` on, every request of that version is answered ``410 Gone`` with a JSON problem body and
the same headers, so a client learns where to go.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from ..config import API_VERSIONS, ApiVersionSettings
from ..core.problems import problem_response

VERSION_PATH = re.compile(r"^/api/(?P<version>v\d+)(?P<rest>/.*)?$")
POLICY_URL = "/api/versions"


def successor_of(version: str) -> str | None:
    index = API_VERSIONS.index(version)
    return API_VERSIONS[index + 1] if index + 1 < len(API_VERSIONS) else None


def successor_path(version: str, rest: str) -> str | None:
    successor = successor_of(version)
    if successor is None:
        return None
    candidate = f"/api/{successor}{rest or '/'}"
    try:
        resolve(candidate)
    except Resolver404:
        return f"/api/{successor}/"
    return candidate


def deprecation_headers(version: str, rest: str, cfg: ApiVersionSettings) -> dict[str, str]:
    if cfg.deprecated_at is None:
        return {}
    out = {"Deprecation": f"@{int(cfg.deprecated_at.timestamp())}"}
    if cfg.sunset_at is not None:
        out["Sunset"] = format_datetime(cfg.sunset_at.astimezone(UTC), usegmt=True)
    links = [f'<{POLICY_URL}>; rel="deprecation"; type="application/json"']
    target = successor_path(version, rest)
    if target is not None:
        links.insert(0, f'<{target}>; rel="successor-version"')
    out["Link"] = ", ".join(links)
    return out


def version_status(version: str, now: datetime | None = None) -> dict[str, str | None]:
    """What ``/api/versions`` says of one version."""
    cfg = settings.CONFIG.api.versions.get(version, ApiVersionSettings())
    moment = now or datetime.now(UTC)
    if cfg.sunset_at is not None and moment >= cfg.sunset_at:
        state = "sunset"
    elif cfg.deprecated_at is not None and moment >= cfg.deprecated_at:
        state = "deprecated"
    elif cfg.deprecated_at is not None:
        state = "deprecation announced"
    else:
        state = "current" if version == API_VERSIONS[-1] else "supported"
    return {
        "version": version,
        "status": state,
        "deprecated_at": cfg.deprecated_at.isoformat() if cfg.deprecated_at else None,
        "sunset_at": cfg.sunset_at.isoformat() if cfg.sunset_at else None,
        "successor": successor_of(version),
    }


class ApiVersionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = VERSION_PATH.match(request.path)
        if found is None or found["version"] not in API_VERSIONS:
            return self.get_response(request)
        version, rest = found["version"], found["rest"] or "/"
        cfg = settings.CONFIG.api.versions.get(version)
        if cfg is None or cfg.deprecated_at is None:
            return self.get_response(request)
        headers = deprecation_headers(version, rest, cfg)
        if cfg.sunset_at is not None and datetime.now(UTC) >= cfg.sunset_at:
            successor = successor_of(version)
            response: HttpResponse = problem_response(
                410, "Gone",
                f"API {version} was sunset on {cfg.sunset_at.date().isoformat()}"
                + (f"; use /api/{successor}/" if successor else ""),
                extra={"version": version, "successor": successor},
            )
        else:
            response = self.get_response(request)
        for name, value in headers.items():
            response[name] = value
        return response
