"""Unmanaged models over the health agent's ``alerts`` (migration 0002) and this app's
``alert_acknowledgements`` (migration 0014): the admin lists them; only ``alerts.status`` is ever written."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Alert(models.Model):
    alert_key = models.CharField(max_length=191)
    component = models.CharField(max_length=64)
    host = models.CharField(max_length=255, null=True, blank=True)
    severity = models.CharField(max_length=16)
    status = models.CharField(max_length=16)
    summary = models.CharField(max_length=512)
    detail = models.JSONField(null=True, blank=True)
    occurrences = models.PositiveIntegerField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "alerts"
        ordering = ("-last_seen_at",)

    def __str__(self) -> str:
        return f"{self.alert_key} ({self.status})"


class AlertAcknowledgement(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="acknowledgements")
    alert_key = models.CharField(max_length=191)
    severity = models.CharField(max_length=16)
    acknowledged_by = models.CharField(max_length=150)
    acknowledged_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=512, blank=True, default="")

    class Meta:
        managed = False
        db_table = "alert_acknowledgements"
        ordering = ("-acknowledged_at", "-id")

    def __str__(self) -> str:
        return f"{self.alert_key} acknowledged by {self.acknowledged_by}"
