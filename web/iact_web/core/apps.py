from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "iact_web.core"
    label = "iact_core"
    verbose_name = "Accounts and audit"

    def ready(self) -> None:
        from . import signals  # noqa: F401, PLC0415  (connects the audit receivers once the apps are loaded)
