"""Anomaly detection on daily series with robust statistics (median and MAD).

For a series x₁..xₙ with median m and median absolute deviation MAD = median(|xᵢ - m|), the
*modified z-score* of Iglewicz and Hoaglin (1993) is

    Mᵢ = 0.6745 · (xᵢ - m) / MAD

(0.6745 is the 0.75 quantile of the standard normal, so that MAD/0.6745 estimates sigma for normal
data).
A point is an anomaly when ``|Mᵢ| > 3.5``, the threshold they recommend. Unlike a mean/standard
deviation z-score, one huge day cannot inflate the spread enough to hide itself.

Our series are daily *counts*. When most days have the same count (a service that deploys twice a
month: mostly zeros), MAD is 0 or tiny and every deployment day would look extreme. So the spread
estimate MAD/0.6745 is floored at ``MIN_SIGMA`` = 1 event per day:

    Mᵢ = (xᵢ - m) / max(MAD / 0.6745, 1)

which is the textbook score whenever MAD ≥ 0.6745, and otherwise flags a day only if it is more than
3.5 events away from the median day (a day with 5 deployments in a month of zeros, not a day with 1).
A constant series has no anomalies. Series shorter than ``min_points`` (default 7 days) are not judged.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

MODIFIED_Z_THRESHOLD = 3.5
MAD_CONSISTENCY = 0.6745
MIN_SIGMA = 1.0
MIN_POINTS = 7


@dataclass(frozen=True)
class AnomalyPoint:
    day: date
    value: float
    score: float


@dataclass(frozen=True)
class AnomalyResult:
    evaluated: int
    anomalies: tuple[AnomalyPoint, ...]
    median: float | None
    mad: float | None
    skipped_reason: str | None = None


def modified_z_scores(values: Sequence[float], min_sigma: float = MIN_SIGMA) -> list[float]:
    """Modified z-score of every value, with the spread estimate floored at ``min_sigma``."""
    if not values:
        return []
    med = statistics.median(values)
    mad = statistics.median([abs(v - med) for v in values])
    sigma = max(mad / MAD_CONSISTENCY, min_sigma)
    return [(v - med) / sigma for v in values]


def detect_anomalies(
    series: Sequence[tuple[date, float]],
    threshold: float = MODIFIED_Z_THRESHOLD,
    min_points: int = MIN_POINTS,
    min_sigma: float = MIN_SIGMA,
) -> AnomalyResult:
    """Days whose modified z-score exceeds ``threshold`` in absolute value."""
    values = [v for _, v in series]
    if len(values) < min_points:
        return AnomalyResult(0, (), None, None, f"fewer than {min_points} days in the series")
    med = statistics.median(values)
    mad = statistics.median([abs(v - med) for v in values])
    scores = modified_z_scores(values, min_sigma)
    points = tuple(
        AnomalyPoint(day, value, score)
        for (day, value), score in zip(series, scores, strict=True)
        if abs(score) > threshold
    )
    return AnomalyResult(len(values), points, med, mad)


def daily_series(
    instants: Iterable[datetime], first_day: date, end_day: date, tz: tzinfo = UTC
) -> list[tuple[date, float]]:
    """Count of instants per calendar day (in ``tz``) for ``first_day`` up to, not including,
    ``end_day``; days without events are 0, and instants outside the range are ignored."""
    counts = Counter(t.astimezone(tz).date() for t in instants)
    days = (end_day - first_day).days
    return [(d, float(counts.get(d, 0))) for d in (first_day + timedelta(days=i) for i in range(days))]
