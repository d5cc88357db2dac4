from __future__ import annotations

from django.apps import AppConfig


class DoraConfig(AppConfig):
    name = "iact_web.dora"
    label = "iact_dora"
