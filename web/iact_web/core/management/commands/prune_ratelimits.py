"""``iact-web prune_ratelimits``: delete rate-limit counters whose windows no longer weigh anything (cron job,
through ``iact-agent job run``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...middleware import default_policies
from ...ratelimit import prune


class Command(BaseCommand):
    help = "Delete rate-limit counters of windows that ended more than one window ago."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = prune(default_policies())
        self.stdout.write(f"changed: deleted {deleted} counter(s)" if deleted else "unchanged")
