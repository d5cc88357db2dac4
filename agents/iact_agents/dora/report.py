"""The DORA report from the stored snapshots: a text table, JSON, or one self-contained HTML page.

The page has no external reference at all (no script, stylesheet, font or image URL): styles are inline
and the trend charts are inline SVG drawn here, so it renders offline and can be mailed or archived. It
carries no generation time, so the same snapshots always give the same bytes (the Ansible role reports
``changed`` only when the numbers changed).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

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


def _audit_problems(a: HostAudit) -> str:
    return ", ".join(f"{check} ({severity}{', error' if status == 'error' else ''})"
                     for check, severity, status in a.problems)


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
    out.extend(f"  {a.host}: {_audit_problems(a)}" for a in data.audits if a.problems)
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

CHART_W, CHART_H, PAD_L, PAD_B, PAD_T, PAD_R = 520, 200, 48, 28, 14, 12
LINE_COLOURS = ("#2f6fb3", "#c0392b", "#1a7f37", "#8e44ad")


def svg_chart(title: str, series: dict[int, list[tuple[date, float]]], unit: str) -> str:
    """A line chart of one metric, one line per window; points without a value are gaps."""
    points = [p for pts in series.values() for p in pts]
    esc = html.escape
    if not points:
        return (f'<figure class="chart"><figcaption>{esc(title)}</figcaption>'
                f'<svg width="{CHART_W}" height="60" role="img">'
                f'<text x="10" y="30">no data</text></svg></figure>')
    days = sorted({d for d, _ in points})
    d0, d1 = days[0], days[-1]
    span = max((d1 - d0).days, 1)
    top = max(v for _, v in points)
    top = top * 1.1 if top > 0 else 1.0
    iw, ih = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def x(d: date) -> float:
        return PAD_L + iw * (d - d0).days / span

    def y(v: float) -> float:
        return PAD_T + ih * (1 - v / top)

    parts = [f'<svg width="{CHART_W}" height="{CHART_H}" '
             f'viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="{esc(title)}">',
             f'<rect x="{PAD_L}" y="{PAD_T}" width="{iw}" height="{ih}" fill="#fafafa" stroke="#ccc"/>']
    for frac in (0.0, 0.5, 1.0):
        val = top * frac
        parts.append(f'<line x1="{PAD_L}" x2="{PAD_L + iw}" y1="{y(val):.1f}" y2="{y(val):.1f}" stroke="#e3e3e3"/>'
                     f'<text x="{PAD_L - 4}" y="{y(val) + 4:.1f}" text-anchor="end" font-size="10">{val:.3g}</text>')
    parts.append(f'<text x="{PAD_L}" y="{CHART_H - 8}" font-size="10">{d0.isoformat()}</text>'
                 f'<text x="{PAD_L + iw}" y="{CHART_H - 8}" font-size="10" text-anchor="end">{d1.isoformat()}</text>')
    for i, (window, pts) in enumerate(sorted(series.items())):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in sorted(pts))
        if coords:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}">'
                         f'<title>{window}-day window</title></polyline>')
        last = sorted(pts)[-1] if pts else None
        label = f"{window}-day window" + (f": {last[1]:.3g}{unit}" if last else "")
        parts.append(f'<text x="{PAD_L + 8 + 170 * i}" y="{PAD_T + 12}" font-size="11" fill="{colour}">'
                     f'{esc(label)}</text>')
    parts.append("</svg>")
    return f'<figure class="chart"><figcaption>{esc(title)}</figcaption>{"".join(parts)}</figure>'


def _badge(level: str | None) -> str:
    if level is None:
        return '<span class="cls none">-</span>'
    return f'<span class="cls" style="background:{CLASS_COLOURS.get(level, "#777")}">{html.escape(level)}</span>'


STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} .meta{color:#555;margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.cls{color:#fff;border-radius:3px;padding:0 5px;margin-left:4px;font-size:11px} .cls.none{color:#999}
.quality{font-size:15px;padding:6px 10px;background:#eef4fb;border:1px solid #cfe0f3;display:inline-block}
.charts{display:flex;flex-wrap:wrap;gap:16px} figure.chart{margin:0}
figcaption{font-weight:600;font-size:13px;margin:4px 0} .note{color:#666;font-size:12px;max-width:900px}
"""


def render_html(data: ReportData) -> str:
    esc = html.escape
    years = ", ".join(str(y) for y in data.benchmark_years) or "-"
    score = "-" if data.quality_score is None else f"{data.quality_score:.1f} / 100"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>DORA metrics as of {data.as_of}</title><style>{STYLE}</style></head><body>",
           "<h1>DORA metrics</h1>",
           f'<p class="meta">As of <strong id="as-of">{data.as_of}</strong> (windows end with that day, UTC); '
           f'classes from the DORA report of <strong id="benchmark-year">{years}</strong>.'
           + ("" if data.as_of == data.requested_as_of else f" Latest snapshot on or before {data.requested_as_of}.")
           + "</p>",
           f'<p class="quality">Data quality score: <strong id="quality-score">{score}</strong></p>']
    for window in data.windows:
        rows = [r for r in _sorted_rows(data.rows) if int(r["window_days"]) == window]
        out.append(f"<h2>{window}-day window</h2><table><thead><tr><th class=l>service</th><th>deployments</th>")
        out.extend(f"<th>{esc(label)}</th>" for *_, label in HEADLINE)
        out.append("<th>lead time p90</th><th>unlinked incidents</th><th>quality</th></tr></thead><tbody>")
        for r in rows:
            out.append(f'<tr><td class=l>{esc(_service_label(r["service"]))}</td><td>{r["deployments_count"]}</td>')
            for column, cls, _ in HEADLINE:
                value = r[column]
                shown = f"{float(value):.2f}" if column == "deployment_days_per_week" and value is not None \
                    else fmt_value(column, value)
                why = r["reasons"].get({"deployment_days_per_week": "deployment_frequency",
                                        "lead_time_seconds": "lead_time",
                                        "change_failure_rate": "change_failure_rate",
                                        "time_to_restore_seconds": "recovery_time"}[column]) if r["reasons"] else None
                title = f' title="{esc(why)}"' if why else ""
                out.append(f"<td{title}>{esc(shown)}{_badge(r[cls])}</td>")
            q = "-" if r["quality_score"] is None else f'{r["quality_score"]:.1f}'
            out.append(f'<td>{fmt_value("lead_time_p90_seconds", r["lead_time_p90_seconds"])}</td>'
                       f'<td>{r["incidents_unlinked_count"]}</td><td>{q}</td></tr>')
        out.append("</tbody></table>")
    out.append("<h2>Trends (all services)</h2><div class=charts>")
    for column, title, scale, unit in TREND_SERIES:
        series: dict[int, list[tuple[date, float]]] = {}
        for r in data.history:
            if r[column] is not None:
                series.setdefault(int(r["window_days"]), []).append((r["computed_on"], float(r[column]) * scale))
        out.append(svg_chart(title, series, unit))
    out.append("</div>")
    out.append(render_audits_html(data))
    out.append('<p class="note">Deployment frequency is rated on days with at least one production deployment per '
               "week; lead time runs from a change's first commit (squash merges: the first original commit) to the "
               "first production deployment that shipped it; an incident counts against the deployment it names, or "
               "else the latest production deployment of its service within the attribution window; incidents "
               "neither names are reported as unlinked, not guessed. The quality score (0-100) is documented in "
               "iact_agents/quality/score.py.</p></body></html>")
    return "\n".join(out) + "\n"


AUDIT_OUTCOME_COLOURS = {"passed": "#1a7f37", "incomplete": "#b58100", "failed": "#c0392b"}


def render_audits_html(data: ReportData) -> str:
    """The section of the last audit per host: one row per host, the failed checks beside it."""
    esc = html.escape
    out = ['<h2 id="audit">Compliance and security audit</h2>']
    if data.audits_note:
        return out[0] + f'<p class="note">{esc(data.audits_note)}</p>'
    if not data.audits:
        return out[0] + '<p class="note">No audit recorded yet (<code>iact-agent audit run</code>).</p>'
    out.append("<table><thead><tr>")
    out.extend(f"<th{' class=l' if i < 3 else ''}>{esc(c)}</th>" for i, c in enumerate(AUDIT_COLUMNS))
    out.append("<th class=l>failed or not judged</th></tr></thead><tbody>")
    for a in data.audits:
        cells = _audit_cells(a)
        colour = AUDIT_OUTCOME_COLOURS.get(a.outcome, "#777")
        out.append(f"<tr><td class=l>{esc(cells[0])}</td><td class=l>{esc(cells[1])}</td>"
                   f'<td class=l><span class="cls" style="background:{colour}">{esc(a.outcome)}</span></td>')
        out.extend(f"<td>{esc(c)}</td>" for c in cells[3:])
        out.append(f"<td class=l>{esc(_audit_problems(a)) or '-'}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


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
