"""Users and API clients from the vault: the file ``iact-web sync_accounts --file`` reads.

Format (JSON, mode 0600, rendered by the role from the vault; no value has a default)::

    {
      "users": [
        {"username": "admin", "password": "...", "email": "ops@example.org",
         "is_staff": true, "is_superuser": true}
      ],
      "clients": [
        {"name": "bench", "token": "...", "description": "benchmark client",
         "burst_limit": 100000, "sustained_limit": 1000000}
      ]
    }

Users of the file join the group ``vault-managed``; such a user who is no longer in the file is
deactivated (never deleted), and users created in the admin are left alone. Clients of the file are
``managed_by = vault``; such a client no longer in the file is revoked. A token is stored as its SHA-256
only. Passwords are checked with Django's validators (at least 12 characters, not common, not numeric).

``scope`` (``--scope PREFIX``) limits all of this to names starting with the prefix: every name in the file
must have it, and only vault-managed users and clients with it are deactivated or revoked. The role manages
everything (no scope); a second file (another team, or a test) can manage its own names beside it.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from iact_agents.storable import InvalidJson, loads
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from .models import ApiClient, hash_token

MANAGED_GROUP = "vault-managed"
TOKEN_MIN_LENGTH = 32


class AccountsError(Exception):
    """The file cannot be used; the message names the file and the field."""


Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@+-]{1,64}$")]


class UserEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    username: Name
    password: str = Field(min_length=12, max_length=4096)
    email: str = Field(default="", max_length=254)
    is_staff: bool = False
    is_superuser: bool = False


class ClientEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name
    token: str = Field(min_length=TOKEN_MIN_LENGTH, max_length=256)
    description: str = Field(default="", max_length=255)
    burst_limit: int | None = Field(default=None, ge=1)
    sustained_limit: int | None = Field(default=None, ge=1)

    @field_validator("token")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable() or " " in value:
            raise ValueError("a token is printable text without spaces")
        return value


class AccountsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    users: list[UserEntry] = Field(default_factory=list)
    clients: list[ClientEntry] = Field(default_factory=list)

    @field_validator("users")
    @classmethod
    def _unique_users(cls, value: list[UserEntry]) -> list[UserEntry]:
        names = [u.username for u in value]
        if len(names) != len(set(names)):
            raise ValueError("a user name appears twice")
        return value

    @field_validator("clients")
    @classmethod
    def _unique_clients(cls, value: list[ClientEntry]) -> list[ClientEntry]:
        if len({c.name for c in value}) != len(value):
            raise ValueError("a client name appears twice")
        if len({c.token for c in value}) != len(value):
            raise ValueError("two clients share a token")
        return value


def read_accounts(path: Path, scope: str = "") -> AccountsFile:
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AccountsError(f"{path}: not found") from None
    except (PermissionError, UnicodeDecodeError) as exc:
        raise AccountsError(f"{path}: cannot be read: {exc}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AccountsError(f"{path}: holds passwords and tokens: chmod 0600 it")
    try:
        data: Any = loads(text)
    except InvalidJson as exc:
        raise AccountsError(f"{path}: not valid JSON: {exc}") from None
    try:
        accounts = AccountsFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise AccountsError(f"{path}: {where}: {first['msg']}") from None
    outside = [n for n in [*(u.username for u in accounts.users), *(c.name for c in accounts.clients)]
               if not n.startswith(scope)]
    if outside:
        raise AccountsError(f"{path}: {outside[0]!r} is outside the scope {scope!r}")
    for user in accounts.users:
        try:
            validate_password(user.password, User(username=user.username, email=user.email))
        except DjangoValidationError as exc:
            raise AccountsError(f"{path}: users.{user.username}.password: {' '.join(exc.messages)}") from None
    return accounts


@dataclass
class SyncResult:
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _sync_user(entry: UserEntry, group: Group, result: SyncResult) -> None:
    user = User.objects.filter(username=entry.username).first()
    notes: list[str] = []
    if user is None:
        user = User(username=entry.username)
        notes.append("created")
    elif (user.email, user.is_staff, user.is_superuser, user.is_active) != (
            entry.email, entry.is_staff, entry.is_superuser, True):
        notes.append("flags or e-mail updated")
    password_ok = user.pk is not None and user.check_password(entry.password)
    if user.pk is not None and not password_ok:
        notes.append("password changed")
    if notes:
        user.email, user.is_staff, user.is_superuser, user.is_active = (
            entry.email, entry.is_staff, entry.is_superuser, True)
        if not password_ok:
            user.set_password(entry.password)
        user.save()
        result.changes.append(f"user {entry.username}: {', '.join(notes)}")
    if not user.groups.filter(pk=group.pk).exists():
        user.groups.add(group)
        if "created" not in notes:
            result.changes.append(f"user {entry.username}: now managed by the file")


def _sync_client(entry: ClientEntry, result: SyncResult) -> None:
    client = ApiClient.objects.filter(name=entry.name).first()
    notes: list[str] = []
    if client is None:
        client = ApiClient(name=entry.name)
        notes.append("created")
    else:
        have = (client.description, client.burst_limit, client.sustained_limit, client.managed_by, client.revoked_at)
        if have != (entry.description, entry.burst_limit, entry.sustained_limit, "vault", None):
            notes.append("settings updated")
        if client.token_sha256 != hash_token(entry.token):
            notes.append("token replaced")
    if notes:
        client.description = entry.description
        client.burst_limit, client.sustained_limit = entry.burst_limit, entry.sustained_limit
        client.managed_by, client.revoked_at = "vault", None
        client.set_token(entry.token)
        client.save()
        result.changes.append(f"client {entry.name}: {', '.join(notes)}")


def sync(accounts: AccountsFile, scope: str = "") -> SyncResult:
    """Make the database hold what the file says (for names starting with ``scope``), in one transaction."""
    result = SyncResult()
    with transaction.atomic():
        group, created = Group.objects.get_or_create(name=MANAGED_GROUP)
        if created:
            result.changes.append(f"group {MANAGED_GROUP}: created")
        for user in accounts.users:
            _sync_user(user, group, result)
        names = {u.username for u in accounts.users}
        for gone in User.objects.filter(groups=group, is_active=True, username__startswith=scope).exclude(
                username__in=names):
            gone.is_active = False
            gone.save(update_fields=["is_active"])
            result.changes.append(f"user {gone.username}: deactivated (no longer in the file)")
        for client in accounts.clients:
            _sync_client(client, result)
        keep = {c.name for c in accounts.clients}
        stale_clients = ApiClient.objects.filter(managed_by="vault", revoked_at__isnull=True, name__startswith=scope)
        for stale in stale_clients.exclude(name__in=keep):
            stale.revoked_at = timezone.now()
            stale.save(update_fields=["revoked_at"])
            result.changes.append(f"client {stale.name}: revoked (no longer in the file)")
    return result
