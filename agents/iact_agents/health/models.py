"""Check results and the Nagios status ladder shared by every part of the health agent."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def exit_code(self) -> int:
        """Nagios plugin exit code: 0 ok, 1 warning, 2 critical, 3 unknown."""
        return _EXIT_CODES[self]


_EXIT_CODES = {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2, Status.UNKNOWN: 3}
# Order of precedence when several results are folded into one, as the monitoring plugins do it:
# critical beats warning, warning beats unknown, unknown beats ok.
_RANK = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.CRITICAL: 3}


def worst(statuses: Iterable[Status]) -> Status:
    """The status that decides the overall result (``ok`` when there is none)."""
    return max(statuses, key=_RANK.__getitem__, default=Status.OK)


def overall_exit_code(results: Iterable[CheckResult]) -> int:
    return worst(r.status for r in results).exit_code


ALERT_KEY_MAX = 191  # alerts.alert_key is VARCHAR(191)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check against one host."""

    component: str
    check_name: str
    host: str
    status: Status
    summary: str
    latency_ms: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``component:check_name:host``, the alert de-duplication key (shortened with a hash if too long)."""
        key = f"{self.component}:{self.check_name}:{self.host}"
        if len(key) <= ALERT_KEY_MAX:
            return key
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return f"{key[: ALERT_KEY_MAX - 17]}~{digest}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "check": self.check_name,
            "host": self.host,
            "status": self.status.value,
            "summary": self.summary,
            "latency_ms": self.latency_ms,
            "detail": dict(self.detail),
        }
