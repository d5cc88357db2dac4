from __future__ import annotations

from django.urls import path

from . import views

app_name = "dora"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("events/", views.events, name="events"),
]
