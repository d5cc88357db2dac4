"""The 0-100 data quality score.

    score = 100 · Σ_c w_c · r_c / Σ_c w_c

over the categories c that evaluated at least one item, where r_c = (items passed) / (items evaluated),
pooled over all checks of category c (a check over 1000 changes weighs more inside its category than
one over 3 incidents), and the weights are :data:`CATEGORY_WEIGHTS`:

=============  ======  ==============================================================================
category       weight  why
=============  ======  ==============================================================================
range          0.30    wrong orders of time (resolution before start, deployment before its commits)
                       change the DORA numbers directly
consistency    0.25    broken links misattribute failures and lead times
schema         0.20    rejected events are missing from every number
anomaly        0.15    an anomalous day may be real (an outage, a release train); it asks for a look
null           0.10    missing optional facts (version, resolution of an old incident) weaken reports
=============  ======  ==============================================================================

Categories with nothing evaluated are left out and the weights of the others renormalised, so an
empty category neither rewards nor punishes. With nothing evaluated at all there is no score
(``None`` with a reason), never 100. The score is rounded to one decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Category = Literal["schema", "null", "range", "consistency", "anomaly"]

CATEGORY_WEIGHTS: Mapping[Category, float] = {
    "range": 0.30,
    "consistency": 0.25,
    "schema": 0.20,
    "anomaly": 0.15,
    "null": 0.10,
}


@dataclass(frozen=True)
class Finding:
    """One failed item: which check, which event (or ``service/day`` for a series) and why."""

    check: str
    event_type: str
    source_event_id: str
    service: str | None
    message: str


@dataclass(frozen=True)
class CheckResult:
    """One check: ``evaluated`` items of ``dataset`` (the table they live in: ``deployments``,
    ``changes``, ``incidents``, or ``ingest`` for the schema check), ``failed`` of them, and why."""

    check: str
    category: Category
    description: str
    evaluated: int
    failed: int
    findings: tuple[Finding, ...] = ()
    dataset: str = ""

    @property
    def passed(self) -> int:
        return self.evaluated - self.failed

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.evaluated if self.evaluated else None


@dataclass(frozen=True)
class QualityScore:
    score: float | None
    category_rates: dict[Category, float]
    reason: str | None = None


def quality_score(
    results: Iterable[CheckResult], weights: Mapping[Category, float] = CATEGORY_WEIGHTS
) -> QualityScore:
    evaluated: dict[Category, int] = {}
    passed: dict[Category, int] = {}
    for res in results:
        evaluated[res.category] = evaluated.get(res.category, 0) + res.evaluated
        passed[res.category] = passed.get(res.category, 0) + res.passed
    rates: dict[Category, float] = {c: passed[c] / n for c, n in evaluated.items() if n > 0}
    total_weight = sum(weights[c] for c in rates)
    if not rates or total_weight <= 0:
        return QualityScore(None, rates, "no check evaluated any data")
    score = 100.0 * sum(weights[c] * r for c, r in rates.items()) / total_weight
    return QualityScore(round(score, 1), rates)
