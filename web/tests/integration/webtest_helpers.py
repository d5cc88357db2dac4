"""Helpers shared by the web integration tests (a module of its own: every suite has a conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.test import Client
from iact_web.core.models import ApiClient, new_token


@dataclass
class Token:
    client: ApiClient
    token: str

    def http(self) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Token {self.token}")


def make_token(name: str, **limits: int | None) -> Token:
    token = new_token()
    client = ApiClient(name=name, managed_by="admin", **limits)
    client.set_token(token)
    client.save()
    return Token(client, token)


@dataclass
class Principal:
    user: User
    password: str
