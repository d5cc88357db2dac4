"""The log search's parameters, shared by the page and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from ..api.errors import BadParameter
from ..api.params import Param, instant, int_between, text
from .service import Search

SOURCE_PATTERN = r"[^\s]{1,512}"


def search_params() -> list[Param]:
    cfg = settings.CONFIG.logs
    return [
        Param("host", "Host whose lines to read (as the collector names it).",
              text(255, r"[A-Za-z0-9_.:-]+", "host name"), required=True),
        Param("source", "Log source: a file path (/var/log/syslog) or a journal source.",
              text(512, SOURCE_PATTERN, "log source"), required=True),
        Param("from", "Start (RFC 3339 with offset, or YYYY-MM-DD); default one hour before `to`.", instant,
              {"type": "string", "format": "date-time"}),
        Param("to", "End, exclusive (default now).", instant, {"type": "string", "format": "date-time"}),
        Param("page_size", f"Lines per page (default {cfg.page_size_default}, at most {cfg.page_size_max}).",
              int_between(1, cfg.page_size_max), {"type": "integer", "minimum": 1, "maximum": cfg.page_size_max}),
        Param("cursor", "The `next` cursor of the previous page.", text(4096, r"[A-Za-z0-9_.:-]+", "cursor")),
    ]


def build_search(values: dict[str, Any]) -> Search:
    cfg = settings.CONFIG.logs
    end = values.get("to") or datetime.now(UTC)
    start = values.get("from") or end - timedelta(hours=1)
    if end <= start:
        raise BadParameter("to", f"must be after from ({start.isoformat()})")
    days = (end.date() - start.date()).days + 1
    if days > cfg.range_days_max:
        raise BadParameter("from", f"the range spans {days} days; at most {cfg.range_days_max}")
    return Search(values["host"], values["source"], start, end)
