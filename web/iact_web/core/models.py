"""API clients and the audit trail: unmanaged models over tables of migration 0014_web.sql.

``iact_app`` may INSERT and SELECT ``web_audit_log`` but never UPDATE or DELETE it: the trail is append-only
by grant, not by convention. API clients are revoked (``revoked_at``), never deleted, so the trail's
``client:<name>`` actors keep their meaning.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import models
from django.utils import timezone

TOKEN_BYTES = 32
TOKEN_PREFIX_LENGTH = 8


def hash_token(token: str) -> str:
    """SHA-256 hex of a token. Tokens are 256-bit random values, so a fast hash is enough: there is no
    dictionary to guess from, and the lookup by hash is a unique-index read."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class ApiClient(models.Model):
    MANAGED_BY = (("vault", "vault (iact-web sync_accounts)"), ("admin", "admin"))

    name = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True, default="")
    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, editable=False)
    managed_by = models.CharField(max_length=8, choices=MANAGED_BY, default="admin")
    burst_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per burst window; empty: the configured default.")
    sustained_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per sustained window; empty: the configured default.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        managed = False
        db_table = "web_api_clients"
        verbose_name = "API client"
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def set_token(self, token: str) -> None:
        self.token_sha256 = hash_token(token)
        self.token_prefix = token[:TOKEN_PREFIX_LENGTH]

    def has_token(self, token: str) -> bool:
        return secrets.compare_digest(self.token_sha256, hash_token(token))


class AuditEvent(models.Model):
    EVENTS = (
        ("login", "login"),
        ("login_failed", "failed login"),
        ("logout", "logout"),
        ("admin_change", "admin change"),
        ("alert_ack", "alert acknowledged"),
        ("token_use", "token used"),
        ("token_rejected", "token rejected"),
        ("account_sync", "accounts synchronised"),
    )

    at = models.DateTimeField(default=timezone.now)
    event = models.CharField(max_length=32, choices=EVENTS)
    actor = models.CharField(max_length=150, blank=True, default="",
                             help_text="user name, client:<name>, or empty for anonymous")
    client_addr = models.CharField(max_length=45, blank=True, null=True)
    object_type = models.CharField(max_length=64, blank=True, null=True)
    object_id = models.CharField(max_length=191, blank=True, null=True)
    detail = models.JSONField(blank=True, null=True)

    class Meta:
        managed = False
        db_table = "web_audit_log"
        ordering = ("-at", "-id")
        verbose_name = "audit event"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.event} {self.actor}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("the audit trail is append-only")
        super().save(*args, **kwargs)
