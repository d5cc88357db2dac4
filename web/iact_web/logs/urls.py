from __future__ import annotations

from django.urls import path

from . import views

app_name = "logs"
urlpatterns = [path("", views.search_page, name="search")]
