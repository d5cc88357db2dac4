"""Request middleware: the JSON access log, security headers (CSP), API-token identification and the
rate limiter. Every answer, the 429 included, leaves through :class:`RequestLogMiddleware`."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from . import audit, ratelimit
from .auth import identify_token
from .problems import problem_response

log = logging.getLogger("iact_web.access")
app_log = logging.getLogger(__name__)

Handler = Callable[[HttpRequest], HttpResponse]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class RequestLogMiddleware:
    """One JSON line per request in ``web-app.json.log``: method, path, status, duration, client, address."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        request.iact_request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-Id"] = request_id
        if settings.CONFIG.logging.access_log:
            log.info(
                "%s %s %s", request.method, request.path, response.status_code,
                extra={
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.path[:512],
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "actor": audit.actor_of(request),
                    "client_addr": audit.client_addr(request),
                    "user_agent": request.headers.get("User-Agent", "")[:256],
                },
            )
        return response


class SecurityHeadersMiddleware:
    """Content-Security-Policy without inline scripts or styles (chart data comes through ``json_script``),
    Permissions-Policy; Django's SecurityMiddleware adds nosniff, HSTS, Referrer-Policy and COOP."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CSP)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if not request.path.startswith(settings.STATIC_URL):
            response.setdefault("Cache-Control", "no-store")  # pages and answers are per user and live
        return response


class ApiClientMiddleware:
    """Identify the API client of an ``Authorization: Token <token>`` (or ``Bearer``) header.

    Sets ``request.api_client`` (an active :class:`~.models.ApiClient` or None) and
    ``request.api_token_error`` (why a presented token was refused, or None). The DRF authentication
    class reads them, so the token is looked up once per request, and the rate limiter counts the client."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        client, error = identify_token(request)
        request.api_client = client  # type: ignore[attr-defined]
        request.api_token_error = error  # type: ignore[attr-defined]
        return self.get_response(request)


def default_policies() -> tuple[ratelimit.Policy, ...]:
    cfg = settings.CONFIG.ratelimit
    return (ratelimit.Policy("burst", cfg.burst_limit, cfg.burst_window_s),
            ratelimit.Policy("sustained", cfg.sustained_limit, cfg.sustained_window_s))


def policies_for(request: HttpRequest) -> tuple[ratelimit.Policy, ...]:
    """The configured policies, with the limits of the request's API client where it has its own."""
    burst, sustained = default_policies()
    client = getattr(request, "api_client", None)
    if client is None:
        return burst, sustained
    return (ratelimit.Policy(burst.name, client.burst_limit or burst.limit, burst.window_s),
            ratelimit.Policy(sustained.name, client.sustained_limit or sustained.limit, sustained.window_s))


def limiter_key(request: HttpRequest) -> str:
    client = getattr(request, "api_client", None)
    if client is not None:
        return f"client:{client.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"addr:{audit.client_addr(request) or 'unknown'}"


class RateLimitMiddleware:
    """Count every request (static files are nginx's) and answer 429 past a limit; headers on every answer."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cfg = settings.CONFIG.ratelimit
        if not cfg.enabled or request.path.startswith(settings.STATIC_URL):
            return self.get_response(request)
        try:
            decision = ratelimit.count_request(limiter_key(request), policies_for(request),
                                               attempts=cfg.lock_retries)
        except DatabaseError as exc:
            app_log.error("rate limiter unavailable: %s", exc)
            return problem_response(503, "Service Unavailable", "the rate limiter cannot reach the database",
                                    headers={"Retry-After": "5"})
        headers = decision.headers()
        if decision.accepted:
            response = self.get_response(request)
        else:
            d = decision.deciding
            response = problem_response(
                429, "Too Many Requests",
                f"rate limit '{d.policy.name}' of {d.policy.limit} requests per {d.policy.window_s} s reached; "
                f"retry in {decision.retry_after_s} s",
                extra={"policy": d.policy.name, "limit": d.policy.limit, "window_s": d.policy.window_s,
                       "retry_after_s": decision.retry_after_s},
            )
        for name, value in headers.items():
            response[name] = value
        return response
