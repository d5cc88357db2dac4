from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "iact_web.ops"
    label = "iact_ops"
