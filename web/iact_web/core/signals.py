"""Audit receivers: logins, failed logins, logouts and every change made in the admin."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from . import audit

_ACTIONS = {1: "added", 2: "changed", 3: "deleted"}


@receiver(user_logged_in)
def _logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit.record("login", request=request, actor=str(user.get_username()))


@receiver(user_logged_out)
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit.record("logout", request=request, actor=str(user.get_username()) if user is not None else "")


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                  **kwargs: Any) -> None:
    # Django already replaced the password with asterisks; only the user name tried is kept.
    username = str(credentials.get("username", ""))[:150]
    audit.record("login_failed", request=request, actor="", detail={"username": username})


@receiver(post_save, sender=LogEntry)
def _admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    audit.record(
        "admin_change",
        actor=str(instance.user.get_username()),
        object_type=str(instance.content_type.model if instance.content_type else ""),
        object_id=None if instance.object_id is None else str(instance.object_id),
        detail={"action": _ACTIONS.get(instance.action_flag, str(instance.action_flag)),
                "object": instance.object_repr[:200], "change": instance.get_change_message()[:1000]},
    )
