from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "iact_web.api"
    label = "iact_api"
