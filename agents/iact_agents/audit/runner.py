"""One audit run: every check of the catalogue against this host's facts, each result on its own.

A check never stops the run: not applicable when its scope is not on this host, ``error`` with the reason when a
fact it needs could not be gathered or its judge broke (logged with the traceback at debug level).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from .. import __version__
from ..errors import ConfigError
from . import cassandra, mariadb, software, system, web
from .config import Waiver
from .facts import Facts, FactUnavailable
from .model import Check, Outcome, Result, Status, error, not_applicable

log = logging.getLogger(__name__)

CATALOGUE: tuple[Check, ...] = (*software.CHECKS, *web.RNF002_CHECKS, software.SCHEDULER_CHECK, *system.CHECKS,
                                *mariadb.CHECKS, *cassandra.CHECKS, *web.CHECKS)
"""Every check, in report order: the eight RNF-002 checks in the order of the requirement, then the security
baseline by component."""

EXIT_OK, EXIT_FAILED, EXIT_UNDECIDED = 0, 1, 3


def catalogue(only: Sequence[str] = ()) -> list[Check]:
    """The checks whose id is in ``only`` or starts with one of them followed by a dot (all when empty)."""
    if not only:
        return list(CATALOGUE)
    return [c for c in CATALOGUE if any(c.id == o or c.id.startswith(o.rstrip(".") + ".") for o in only)]


@dataclass
class AuditRun:
    host: str
    started_at: datetime
    finished_at: datetime
    results: list[Result]
    version: str = __version__
    problems: list[str] = field(default_factory=list)
    """Why the run could not be recorded or its report written (shown on stderr, not a check result)."""

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.status.value for r in self.results)
        return {s.value: c.get(s.value, 0) for s in Status}

    @property
    def failed_high(self) -> list[Result]:
        return [r for r in self.results if r.fails_the_audit]

    @property
    def outcome(self) -> str:
        """``failed`` (a check of severity high or above failed), ``incomplete`` (no such failure, but some
        check could not be judged) or ``passed``."""
        if self.failed_high:
            return "failed"
        if any(r.status is Status.ERROR for r in self.results):
            return "incomplete"
        return "passed"

    @property
    def exit_code(self) -> int:
        return {"failed": EXIT_FAILED, "incomplete": EXIT_UNDECIDED}.get(self.outcome, EXIT_OK)

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(), "version": self.version, "outcome": self.outcome,
                "exit_code": self.exit_code, "counts": self.counts, "results": [r.as_dict() for r in self.results]}


def judge(check: Check, facts: Facts) -> Outcome:
    reason = facts.scope_reason(check.scope)
    if reason is not None:
        return not_applicable(reason)
    try:
        return check.judge(facts)
    except FactUnavailable as exc:
        return error(str(exc))
    except Exception as exc:
        log.debug("check %s broke", check.id, exc_info=True)
        return error(f"the check broke: {type(exc).__name__}: {exc}")


def check_waivers(waivers: Sequence[Waiver]) -> None:
    """Raise :class:`ConfigError` naming the waivers whose check is not in the catalogue (a typo would waive
    nothing and hide nothing, but the waiver would look as if it did)."""
    known = {c.id for c in CATALOGUE}
    unknown = sorted({w.check for w in waivers} - known)
    if unknown:
        raise ConfigError(f"waivers: no such check: {', '.join(unknown)} (see `iact-agent audit list`)")


def waived(result: Result, waivers: Sequence[Waiver], today: date) -> Result:
    """The result with its waiver applied: a failure waived until ``today`` or later keeps status ``fail`` and its
    evidence but no longer fails the audit; an expired waiver is ignored and named in the findings."""
    if result.status is not Status.FAIL:
        return result
    mine = [w for w in waivers if w.check == result.id]
    current = max((w for w in mine if w.until >= today), key=lambda w: w.until, default=None)
    if current is not None:
        return replace(result, waiver=f"waived until {current.until.isoformat()}: {current.reason}")
    expired = [f"waiver expired on {w.until.isoformat()}: {w.reason}" for w in mine]
    return replace(result, findings=result.findings + tuple(expired)) if expired else result


def run_audit(facts: Facts, checks: Sequence[Check] | None = None) -> AuditRun:
    started = datetime.now(UTC)
    waivers = facts.cfg.waivers
    results = [waived(Result.of(c, judge(c, facts)), waivers, started.date())
               for c in (CATALOGUE if checks is None else checks)]
    return AuditRun(facts.cfg.host, started, datetime.now(UTC), results)
