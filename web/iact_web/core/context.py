"""Template context shared by every page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from .. import __version__


def site(request: HttpRequest) -> dict[str, Any]:
    return {"iact_version": __version__, "poll_interval_s": settings.CONFIG.server.poll_interval_s}
