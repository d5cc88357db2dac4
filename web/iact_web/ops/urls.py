from __future__ import annotations

from django.urls import path

from . import views

app_name = "ops"
urlpatterns = [
    path("health/", views.health, name="health"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:alert_id>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("jobs/", views.jobs, name="jobs"),
    path("recovery/", views.recovery, name="recovery"),
    path("quality/", views.quality, name="quality"),
    path("audit/", views.audit_page, name="audit"),
    path("remediations/", views.remediations, name="remediations"),
]
