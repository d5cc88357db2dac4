"""JSON-lines logging in the collector's format (``iact_agents.collector.records.parse_json_line``).

One object per line: ``ts`` (RFC 3339, UTC, microseconds), ``level``, ``message``, ``logger``, ``pid``,
then the record's extra keys (``logger.info("...", extra={"status": 200})``). The file lives under
``/var/log/iact/`` and ends in ``.json.log``, so the collector ships it to Cassandra; logrotate renames it
and :class:`logging.handlers.WatchedFileHandler` reopens the new file.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from .config import LoggingSettings

# Attributes every LogRecord has: everything else on a record came from ``extra=`` and is written out.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_MAX_FIELD = 4096


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    return text[:_MAX_FIELD]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "logger": record.name,
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = _plain(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)[-_MAX_FIELD:]
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)


def logging_config(settings: LoggingSettings, *, debug: bool) -> dict[str, Any]:
    """Django's LOGGING: JSON lines to the file (if any) and to stderr (gunicorn's journal)."""
    handlers: dict[str, Any] = {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json"},
    }
    if settings.file is not None:
        handlers["file"] = {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(settings.file),
            "formatter": "json",
            "encoding": "utf-8",
            "delay": True,
        }
    names = list(handlers)
    level = "DEBUG" if debug else settings.level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "iact_web.jsonlog.JsonFormatter"}},
        "handlers": handlers,
        "root": {"handlers": names, "level": "WARNING"},
        "loggers": {
            "iact_web": {"handlers": names, "level": level, "propagate": False},
            "iact_agents": {"handlers": names, "level": level, "propagate": False},
            # Django's request errors (500s) with their traceback, but only in the log, never to the client.
            "django.request": {"handlers": names, "level": "ERROR", "propagate": False},
            "django.security": {"handlers": names, "level": "WARNING", "propagate": False},
        },
    }
