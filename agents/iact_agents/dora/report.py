"""The DORA report from the stored snapshots: a text table, JSON, or one self-contained HTML page.

The page is rendered with Jinja2 (autoescaped) from ``templates/report.html.j2`` and ``chart.html.j2``,
shipped in the package. It has no external reference at all (no script, stylesheet, font or image URL):
styles are inline and the trend charts are inline SVG whose geometry is computed here, so it renders offline
and can be mailed or archived. It carries no generation time, so the same snapshots always give the same
bytes (the Ansible role reports ``changed`` only when the numbers changed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from ..audit.store import HostAudit
from ..fsutil import replace_atomically
from .metrics import ALL_SERVICES

HEADLINE = (
    ("deployment_days_per_week", "deployment_frequency_class", "Deploy days/week"),
    ("lead_time_seconds", "lead_time_class", "Lead time (median)"),
    ("change_failure_rate", "change_failure_rate_class", "Change failure rate"),
    ("time_to_restore_seconds", "time_to_restore_class", "Time to restore (median)"),
)
TREND_SERIES = (
    ("deployment_days_per_week", "Deployment days per week", 1.0, ""),
    ("lead_time_seconds", "Median lead time (hours)", 1 / 3600, " h"),
    ("change_failure_rate", "Change failure rate (%)", 100.0, " %"),
    ("time_to_restore_seconds", "Median time to restore (hours)", 1 / 3600, " h"),
    ("quality_score", "Data quality score (0-100)", 1.0, ""),
)
CLASS_COLOURS = {"elite": "#1a7f37", "high": "#2f6fb3", "medium": "#b58100", "low": "#c0392b"}


@dataclass(frozen=True)
class ReportData:
    as_of: date
    requested_as_of: date
    rows: list[dict[str, Any]]
    """Snapshots of ``as_of``: every service and window."""
    history: list[dict[str, Any]]
    """Overall rows (``service`` = ``*``) of the history days, every window."""
    audits: list[HostAudit] = field(default_factory=list)
    """The last compliance and security audit of every host (``iact-agent audit``)."""
    audits_note: str = ""
    """Why the audits could not be read (shown instead of them), or empty."""

    @property
    def benchmark_years(self) -> list[int]:
        return sorted({int(r["benchmark_year"]) for r in self.rows})

    @property
    def quality_score(self) -> float | None:
        scores = [r["quality_score"] for r in self.rows
                  if r["service"] == ALL_SERVICES and r["quality_score"] is not None]
        return scores[0] if scores else None

    @property
    def windows(self) -> list[int]:
        return sorted({int(r["window_days"]) for r in self.rows})


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours = seconds / 3600
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def fmt_value(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column.endswith("_seconds"):
        return fmt_duration(float(value))
    if column == "change_failure_rate":
        return f"{float(value) * 100:.1f} %"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _service_label(service: str) -> str:
    return "(all services)" if service == ALL_SERVICES else service


def _sorted_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (int(r["window_days"]), r["service"] != ALL_SERVICES, r["service"]))


def header_line(data: ReportData) -> str:
    years = ", ".join(str(y) for y in data.benchmark_years) or "-"
    q = "-" if data.quality_score is None else f"{data.quality_score:.1f}/100"
    note = "" if data.as_of == data.requested_as_of else f" (latest snapshot on or before {data.requested_as_of})"
    return f"DORA metrics as of {data.as_of}{note}; benchmark year {years}; data quality score {q}"


def render_table(data: ReportData) -> str:
    cols = ["window", "service", "deploys", "days/wk", "class", "lead p50", "lead p90", "class", "CFR", "class",
            "restore", "class", "unlinked inc"]
    lines: list[list[str]] = []
    for r in _sorted_rows(data.rows):
        lines.append([
            f"{r['window_days']}d", _service_label(r["service"]), str(r["deployments_count"]),
            fmt_value("x", r["deployment_days_per_week"]), r["deployment_frequency_class"] or "-",
            fmt_value("lead_time_seconds", r["lead_time_seconds"]),
            fmt_value("lead_time_p90_seconds", r["lead_time_p90_seconds"]), r["lead_time_class"] or "-",
            fmt_value("change_failure_rate", r["change_failure_rate"]), r["change_failure_rate_class"] or "-",
            fmt_value("time_to_restore_seconds", r["time_to_restore_seconds"]), r["time_to_restore_class"] or "-",
            str(r["incidents_unlinked_count"]),
        ])
    widths = [max(len(c), *(len(line[i]) for line in lines)) if lines else len(c) for i, c in enumerate(cols)]
    out = [header_line(data), ""]
    out.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in lines)
    return "\n".join(out) + "\n" + render_audits_table(data)


AUDIT_COLUMNS = ("host", "last audit (UTC)", "outcome", "checks", "pass", "fail", "fail high+", "n/a", "error")


def _audit_cells(a: HostAudit) -> list[str]:
    return [a.host, a.finished_at.strftime("%Y-%m-%d %H:%M"), a.outcome, str(a.checks), str(a.passed), str(a.failed),
            str(a.failed_high), str(a.not_applicable), str(a.errors)]


def render_audits_table(data: ReportData) -> str:
    """The section of the last audit per host (``iact-agent audit``)."""
    out = ["", "Compliance and security audit (last run per host)"]
    if data.audits_note:
        return "\n".join([*out, data.audits_note]) + "\n"
    if not data.audits:
        return "\n".join([*out, "no audit recorded yet (iact-agent audit run)"]) + "\n"
    rows = [_audit_cells(a) for a in data.audits]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(AUDIT_COLUMNS)]
    out.append("  ".join(c.ljust(w) for c, w in zip(AUDIT_COLUMNS, widths, strict=True)).rstrip())
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    out.extend(f"  {a.host}: {a.problems_text()}" for a in data.audits if a.problems)
    return "\n".join(out) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def render_json(data: ReportData) -> str:
    doc = {
        "as_of": data.as_of.isoformat(),
        "requested_as_of": data.requested_as_of.isoformat(),
        "benchmark_years": data.benchmark_years,
        "quality_score": data.quality_score,
        "snapshots": [{k: _jsonable(v) for k, v in r.items() if k != "computed_at"} for r in _sorted_rows(data.rows)],
        "trend": [
            {"computed_on": r["computed_on"].isoformat(), "window_days": r["window_days"],
             **{name: r[name] for name, *_ in TREND_SERIES}}
            for r in data.history
        ],
        "audits": [a.as_dict() for a in data.audits],
        "audits_note": data.audits_note or None,
    }
    return json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"


# --- HTML ---------------------------------------------------------------------------------------------
# The markup lives in templates/report.html.j2 and templates/chart.html.j2 (Jinja2, autoescaped); this part
# computes what they show: formatted values, badge colours and the charts' geometry.

CHART_W, CHART_H, PAD_L, PAD_B, PAD_T, PAD_R = 520, 200, 48, 28, 14, 12
LINE_COLOURS = ("#2f6fb3", "#c0392b", "#1a7f37", "#8e44ad")
AUDIT_OUTCOME_COLOURS = {"passed": "#1a7f37", "incomplete": "#b58100", "failed": "#c0392b"}
REASON_OF = {"deployment_days_per_week": "deployment_frequency", "lead_time_seconds": "lead_time",
             "change_failure_rate": "change_failure_rate", "time_to_restore_seconds": "recovery_time"}
"""The key in a snapshot's ``reasons`` that explains a missing or odd value of each headline column."""


@dataclass(frozen=True)
class Tick:
    y: str
    label_y: str
    value: str


@dataclass(frozen=True)
class ChartLine:
    window: int
    colour: str
    points: str
    label: str
    label_x: int


@dataclass(frozen=True)
class Chart:
    """One trend chart as chart.html.j2 draws it; no lines means no data."""

    title: str
    ticks: tuple[Tick, ...] = ()
    first_day: str = ""
    last_day: str = ""
    lines: tuple[ChartLine, ...] = ()
    width: int = CHART_W
    height: int = CHART_H
    left: int = PAD_L
    top: int = PAD_T
    plot_width: int = CHART_W - PAD_L - PAD_R
    plot_height: int = CHART_H - PAD_T - PAD_B

    @property
    def right(self) -> int:
        return self.left + self.plot_width


def chart(title: str, series: dict[int, list[tuple[date, float]]], unit: str) -> Chart:
    """A line chart of one metric, one line per window; points without a value are gaps."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return Chart(title)
    days = sorted({d for d, _ in points})
    d0, d1 = days[0], days[-1]
    span = max((d1 - d0).days, 1)
    top = max(v for _, v in points)
    top = top * 1.1 if top > 0 else 1.0
    shape = Chart(title)
    iw, ih = shape.plot_width, shape.plot_height

    def x(d: date) -> float:
        return PAD_L + iw * (d - d0).days / span

    def y(v: float) -> float:
        return PAD_T + ih * (1 - v / top)

    ticks = tuple(Tick(f"{y(top * f):.1f}", f"{y(top * f) + 4:.1f}", f"{top * f:.3g}") for f in (0.0, 0.5, 1.0))
    lines = []
    for i, (window, pts) in enumerate(sorted(series.items())):
        last = sorted(pts)[-1] if pts else None
        lines.append(ChartLine(
            window, LINE_COLOURS[i % len(LINE_COLOURS)], " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in sorted(pts)),
            f"{window}-day window" + (f": {last[1]:.3g}{unit}" if last else ""), PAD_L + 8 + 170 * i))
    return replace(shape, ticks=ticks, first_day=d0.isoformat(), last_day=d1.isoformat(), lines=tuple(lines))


@dataclass(frozen=True)
class Metric:
    shown: str
    level: str | None
    colour: str
    why: str | None


@dataclass(frozen=True)
class ServiceRow:
    service: str
    deployments: str
    metrics: tuple[Metric, ...]
    lead_time_p90: str
    unlinked: str
    quality: str


@dataclass(frozen=True)
class WindowTable:
    days: int
    rows: tuple[ServiceRow, ...]


@dataclass(frozen=True)
class AuditRow:
    cells: list[str]
    outcome: str
    colour: str
    problems: str


def _metric(r: dict[str, Any], column: str, cls: str) -> Metric:
    value = r[column]
    shown = f"{float(value):.2f}" if column == "deployment_days_per_week" and value is not None \
        else fmt_value(column, value)
    level = r[cls]
    return Metric(shown, level, CLASS_COLOURS.get(level, "#777") if level else "",
                  r["reasons"].get(REASON_OF[column]) if r["reasons"] else None)


def _service_row(r: dict[str, Any]) -> ServiceRow:
    return ServiceRow(
        _service_label(r["service"]), str(r["deployments_count"]),
        tuple(_metric(r, column, cls) for column, cls, _ in HEADLINE),
        fmt_value("lead_time_p90_seconds", r["lead_time_p90_seconds"]), str(r["incidents_unlinked_count"]),
        "-" if r["quality_score"] is None else f'{r["quality_score"]:.1f}')


def _trend_charts(history: Sequence[dict[str, Any]]) -> list[Chart]:
    charts = []
    for column, title, scale, unit in TREND_SERIES:
        series: dict[int, list[tuple[date, float]]] = {}
        for r in history:
            if r[column] is not None:
                series.setdefault(int(r["window_days"]), []).append((r["computed_on"], float(r[column]) * scale))
        charts.append(chart(title, series, unit))
    return charts


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("iact_agents.dora", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def svg_chart(title: str, series: dict[int, list[tuple[date, float]]], unit: str) -> str:
    """The markup of one chart (the report draws five)."""
    return str(_templates().get_template("chart.html.j2").module.chart(chart(title, series, unit)))  # type: ignore[attr-defined]


def render_html(data: ReportData) -> str:
    """The self-contained page (templates/report.html.j2)."""
    return _templates().get_template("report.html.j2").render(
        as_of=data.as_of, requested_as_of=data.requested_as_of,
        years=", ".join(str(y) for y in data.benchmark_years) or "-",
        score="-" if data.quality_score is None else f"{data.quality_score:.1f} / 100",
        headline=[label for *_, label in HEADLINE],
        tables=[WindowTable(w, tuple(_service_row(r) for r in _sorted_rows(data.rows) if int(r["window_days"]) == w))
                for w in data.windows],
        charts=_trend_charts(data.history),
        audits_note=data.audits_note, audit_columns=AUDIT_COLUMNS,
        audits=[AuditRow(_audit_cells(a), a.outcome, AUDIT_OUTCOME_COLOURS.get(a.outcome, "#777"), a.problems_text())
                for a in data.audits],
    )


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically and durably (mode 0644, :func:`iact_agents.fsutil.replace_atomically`);
    False, and nothing written, when it is already there."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, data, 0o644)
    return True
