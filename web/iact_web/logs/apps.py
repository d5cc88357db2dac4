from __future__ import annotations

from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "iact_web.logs"
    label = "iact_logs"
