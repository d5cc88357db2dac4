"""The audit trail (``web_audit_log``): logins, failed logins, logouts, admin changes, alert
acknowledgements, token use and rejected tokens, account synchronisation. Append-only by grant."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest

from .models import AuditEvent

log = logging.getLogger(__name__)


def client_addr(request: HttpRequest | None) -> str | None:
    """The caller's address: ``X-Real-IP`` from the local nginx when ``behind_proxy``, else the peer."""
    if request is None:
        return None
    raw = request.META.get("HTTP_X_REAL_IP") if settings.CONFIG.server.behind_proxy else None
    raw = raw or request.META.get("REMOTE_ADDR")
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None


def actor_of(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    client = getattr(request, "api_client", None)
    if client is not None:
        return f"client:{client.name}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return str(user.get_username())[:150]
    return ""


def record(event: str, *, request: HttpRequest | None = None, actor: str | None = None,
           object_type: str | None = None, object_id: str | None = None,
           detail: dict[str, Any] | None = None, strict: bool = False) -> None:
    """Append one event. ``strict``: a failure to write raises (the caller's transaction must fail with
    it, e.g. an acknowledgement); otherwise it is logged and the request goes on."""
    try:
        AuditEvent.objects.create(
            event=event,
            actor=(actor if actor is not None else actor_of(request))[:150],
            client_addr=client_addr(request),
            object_type=object_type,
            object_id=None if object_id is None else str(object_id)[:191],
            detail=detail,
        )
    except DatabaseError as exc:
        if strict:
            raise
        log.error("audit event %s could not be written: %s", event, exc)
