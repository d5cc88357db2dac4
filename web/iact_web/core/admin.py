"""Admin: users (deactivate, never delete), API clients (a new token is shown once; revoke, never delete),
and the audit trail (read-only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import ApiClient, AuditEvent, new_token

if TYPE_CHECKING:  # generic in the type stubs only
    _UserAdmin = UserAdmin[User]
    _ApiClientAdmin = admin.ModelAdmin[ApiClient]
    _AuditEventAdmin = admin.ModelAdmin[AuditEvent]
else:
    _UserAdmin = UserAdmin
    _ApiClientAdmin = admin.ModelAdmin
    _AuditEventAdmin = admin.ModelAdmin


class IactUserAdmin(_UserAdmin):
    """Users are deactivated, never deleted: the audit trail keeps naming them."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.unregister(User)
admin.site.register(User, IactUserAdmin)


@admin.register(ApiClient)
class ApiClientAdmin(_ApiClientAdmin):
    list_display = ("name", "token_prefix", "managed_by", "burst_limit", "sustained_limit", "created_at",
                    "last_used_at", "revoked_at")
    list_filter = ("managed_by",)
    search_fields = ("name", "token_prefix")
    readonly_fields = ("token_prefix", "managed_by", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "description", "burst_limit", "sustained_limit", *readonly_fields)
    actions = ("revoke", "new_tokens")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiClient, form: Any, change: bool) -> None:
        if not change:
            token = new_token()
            obj.set_token(token)
            obj.managed_by = "admin"
            messages.warning(request, f"Token of {obj.name} (shown once, store it now): {token}")
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke the selected clients (their tokens stop working)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        for client in queryset.filter(revoked_at__isnull=True):
            client.revoked_at = timezone.now()
            client.save(update_fields=["revoked_at"])
            self.log_change(request, client, "revoked")
        messages.success(request, "Revoked.")

    @admin.action(description="Issue new tokens to the selected admin-made clients (shown once)")
    def new_tokens(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        for client in queryset.filter(managed_by="admin"):
            token = new_token()
            client.set_token(token)
            client.revoked_at = None
            client.save(update_fields=["token_sha256", "token_prefix", "revoked_at"])
            self.log_change(request, client, "new token issued")
            messages.warning(request, f"New token of {client.name} (shown once): {token}")


class ReadOnly:
    """Admin mixin for records made elsewhere (the audit trail, acknowledgements): list and view only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnly, _AuditEventAdmin):
    list_display = ("at", "event", "actor", "client_addr", "object_type", "object_id")
    list_filter = ("event",)
    search_fields = ("actor", "object_id")
    date_hierarchy = "at"
