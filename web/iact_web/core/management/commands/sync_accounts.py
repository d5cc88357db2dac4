"""``iact-web sync_accounts --file F``: users and API clients from the vault file (format: core/accounts.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import audit
from ...accounts import AccountsError, read_accounts, sync


class Command(BaseCommand):
    help = "Create or update users and API clients from a 0600 JSON file; revoke clients no longer in it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, required=True, help="JSON file rendered from the vault (0600)")
        parser.add_argument("--scope", default="", metavar="PREFIX",
                            help="manage only user and client names starting with PREFIX (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            accounts = read_accounts(options["file"], options["scope"])
        except AccountsError as exc:
            raise CommandError(str(exc)) from None
        result = sync(accounts, options["scope"])
        for line in result.changes:
            self.stdout.write(f"  {line}")
        if result.changed:
            audit.record("account_sync", actor="iact-web sync_accounts", detail={"changes": result.changes[:200]})
            self.stdout.write(f"changed: {len(result.changes)} change(s)")
        else:
            self.stdout.write("unchanged")
