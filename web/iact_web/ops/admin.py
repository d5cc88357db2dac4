"""Admin: acknowledgements (read-only; they are made on the alerts page or through the API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from ..core.admin import ReadOnly
from .models import AlertAcknowledgement

if TYPE_CHECKING:  # generic in the type stubs only
    _AlertAcknowledgementAdmin = admin.ModelAdmin[AlertAcknowledgement]
else:
    _AlertAcknowledgementAdmin = admin.ModelAdmin


@admin.register(AlertAcknowledgement)
class AlertAcknowledgementAdmin(ReadOnly, _AlertAcknowledgementAdmin):
    list_display = ("acknowledged_at", "alert_key", "severity", "acknowledged_by", "note")
    search_fields = ("alert_key", "acknowledged_by")
    list_filter = ("severity",)
