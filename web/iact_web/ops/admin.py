"""Admin: acknowledgements (read-only; they are made on the alerts page or through the API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AlertAcknowledgement

if TYPE_CHECKING:  # generic in the type stubs only
    _AlertAcknowledgementAdmin = admin.ModelAdmin[AlertAcknowledgement]
else:
    _AlertAcknowledgementAdmin = admin.ModelAdmin


@admin.register(AlertAcknowledgement)
class AlertAcknowledgementAdmin(_AlertAcknowledgementAdmin):
    list_display = ("acknowledged_at", "alert_key", "severity", "acknowledged_by", "note")
    search_fields = ("alert_key", "acknowledged_by")
    list_filter = ("severity",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
