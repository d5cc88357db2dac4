"""Per-client API tokens: ``Authorization: Token <token>`` (or ``Bearer <token>``).

A token is looked up by its SHA-256 among the clients that are not revoked; the token itself is never
stored. Revoking a client (``revoked_at``, by the admin or by ``iact-web sync_accounts`` when the client is
no longer in the vault file) stops its token at the next request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from . import audit
from .models import ApiClient, hash_token

SCHEMES = ("token", "bearer")
TOKEN_MAX_LENGTH = 256


class ClientPrincipal:
    """``request.user`` of a token request: an authenticated principal that is not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.username = f"client:{client.name}"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


def _presented_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in SCHEMES:
        return None
    return value.strip()


def identify_token(request: HttpRequest) -> tuple[ApiClient | None, str | None]:
    """``(client, None)``, ``(None, reason)`` for a refused token, or ``(None, None)`` without one."""
    token = _presented_token(request)
    if token is None:
        return None, None
    if not token or len(token) > TOKEN_MAX_LENGTH or not token.isprintable():
        reason = "malformed token"
    else:
        try:
            client = ApiClient.objects.filter(token_sha256=hash_token(token), revoked_at__isnull=True).first()
        except DatabaseError:
            return None, "token check unavailable"
        if client is not None:
            _note_use(request, client)
            return client, None
        reason = "unknown or revoked token"
    audit.record("token_rejected", request=request, actor="", detail={"reason": reason,
                                                                      "prefix": (token or "")[:8]})
    return None, reason


def _note_use(request: HttpRequest, client: ApiClient) -> None:
    """Move ``last_used_at`` and write a ``token_use`` audit event at most once per interval: the
    conditional UPDATE decides atomically which request (on any worker) writes it."""
    interval = settings.CONFIG.audit.token_use_interval_s
    now = timezone.now()
    due = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - timedelta(seconds=interval))
    updated = ApiClient.objects.filter(due, pk=client.pk).update(last_used_at=now)
    if updated:
        audit.record("token_use", request=request, actor=f"client:{client.name}", object_type="api_client",
                     object_id=str(client.pk))


class ApiTokenAuthentication(BaseAuthentication):
    """DRF authentication over :class:`~.middleware.ApiClientMiddleware`'s result."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = request._request
        error = getattr(raw, "api_token_error", None)
        if error is not None:
            raise AuthenticationFailed(f"invalid token: {error}")
        client = getattr(raw, "api_client", None)
        if client is None:
            return None
        return ClientPrincipal(client), client

    def authenticate_header(self, request: Request) -> str:
        return 'Token realm="api"'
