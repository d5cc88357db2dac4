"""What a check is and what it says: severities, statuses, outcomes and results.

A check is data: an id, a title, the reference it implements (a CIS Apache Cassandra benchmark item, a
dev-sec mysql-baseline control, or the project's own rule), a severity, the part of the host it applies to
(:class:`Scope`) and a ``judge`` that looks at the host's :class:`~.facts.Facts` and returns an
:class:`Outcome`. The judges only read; see ``facts.py`` for why they cannot write.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import storable

if TYPE_CHECKING:
    from .facts import Facts

EVIDENCE_MAX = 2000
"""Bytes of evidence kept per result (``audit_results.evidence`` is TEXT; the report stays readable)."""
FINDING_MAX = 300
FINDINGS_MAX = 50


class Severity(enum.StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_RANK = {s: i for i, s in enumerate(Severity)}

FAILING_SEVERITY = Severity.HIGH
"""A failed check of this severity or above makes the audit fail (exit code 1, health alert)."""


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"


class Scope(enum.StrEnum):
    """Which hosts a check applies to; elsewhere it is "not applicable" with the reason."""

    HOST = "host"
    MYSQL = "mysql"
    CASSANDRA = "cassandra"
    WEB = "web"


def _clip(text: str, limit: int) -> str:
    one_line = " ".join(storable.clean_text(text).split())
    return one_line if len(one_line.encode("utf-8")) <= limit else storable.utf8_prefix(one_line, limit - 3) + "..."


@dataclass(frozen=True)
class Outcome:
    """What a judge saw: a status, one line of evidence and, for a failure, the offending items."""

    status: Status
    evidence: str
    findings: tuple[str, ...] = ()

    def clipped(self) -> Outcome:
        findings = tuple(_clip(f, FINDING_MAX) for f in self.findings[:FINDINGS_MAX])
        if len(self.findings) > FINDINGS_MAX:
            findings += (f"... and {len(self.findings) - FINDINGS_MAX} more",)
        return Outcome(self.status, _clip(self.evidence, EVIDENCE_MAX), findings)


def passed(evidence: str) -> Outcome:
    return Outcome(Status.PASS, evidence)


def failed(evidence: str, findings: Iterable[str] = ()) -> Outcome:
    return Outcome(Status.FAIL, evidence, tuple(findings))


def not_applicable(reason: str) -> Outcome:
    return Outcome(Status.NOT_APPLICABLE, reason)


def error(reason: str) -> Outcome:
    return Outcome(Status.ERROR, reason)


def verdict(findings: Sequence[str], ok: str, bad: str) -> Outcome:
    """Pass with ``ok`` when there is no finding; fail with ``bad`` and the findings otherwise."""
    return failed(bad, findings) if findings else passed(ok)


@dataclass(frozen=True)
class Check:
    """One check, as data. ``judge`` reads the host's facts and never changes anything."""

    id: str
    title: str
    reference: str
    severity: Severity
    scope: Scope
    judge: Callable[[Facts], Outcome] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Result:
    id: str
    title: str
    reference: str
    severity: Severity
    status: Status
    evidence: str
    findings: tuple[str, ...] = ()
    waiver: str = ""
    """Why this failure does not fail the audit for now (a waiver of the configuration), or empty."""

    @classmethod
    def of(cls, check: Check, outcome: Outcome) -> Result:
        o = outcome.clipped()
        return cls(check.id, check.title, check.reference, check.severity, o.status, o.evidence, o.findings)

    @property
    def fails_the_audit(self) -> bool:
        return self.status is Status.FAIL and self.severity.at_least(FAILING_SEVERITY) and not self.waiver

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "reference": self.reference, "severity": self.severity.value,
                "status": self.status.value, "evidence": self.evidence, "findings": list(self.findings),
                "waiver": self.waiver}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Result:
        """A result read back from a JSON report (raises ``KeyError``/``ValueError``/``TypeError`` on another
        shape; :func:`~.report.read_report` turns those into one error naming the file)."""
        findings = raw.get("findings") or []
        if not isinstance(findings, list):
            raise TypeError("findings is not a list")
        return cls(str(raw["id"]), str(raw["title"]), str(raw["reference"]), Severity(raw["severity"]),
                   Status(raw["status"]), str(raw["evidence"]), tuple(str(f) for f in findings),
                   str(raw.get("waiver") or ""))
