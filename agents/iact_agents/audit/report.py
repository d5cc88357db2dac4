"""The audit as people read it: a text table, a Markdown report, JSON, and a table of several hosts' reports.

The JSON report (``report.json`` in the state folder) is the run as :meth:`AuditRun.as_dict` gives it; the
Markdown report (``report.md``) has the same content for reading and archiving. :func:`read_report` reads a JSON
report back totally: a file that is not one is an :class:`~iact_agents.errors.InputError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .. import storable
from ..errors import InputError
from ..fsutil import replace_atomically
from .model import Check, Result, Severity, Status
from .runner import AuditRun

MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.NOT_APPLICABLE: "N/A", Status.ERROR: "ERROR"}


def _columns(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def summary_line(host: str, outcome: str, counts: dict[str, int]) -> str:
    tally = ", ".join(f"{n} {MARK[Status(s)].lower()}" for s, n in counts.items() if n)
    return f"{host}: audit {outcome.upper()} ({tally})"


def mark(result: Result) -> str:
    """The status as the tables show it (a waived failure is ``FAIL*``)."""
    return MARK[result.status] + ("*" if result.waiver else "")


def render_table(run: AuditRun) -> str:
    rows = [(mark(r), r.severity.value, r.id, r.evidence[:110]) for r in run.results]
    lines = _columns(("STATUS", "SEVERITY", "CHECK", "EVIDENCE"), rows)
    for r in run.results:
        if r.status is Status.FAIL:
            lines += [f"  {r.id}: {f}" for f in r.findings]
            lines += [f"  {r.id}: * {r.waiver}"] if r.waiver else []
    lines.append(summary_line(run.host, run.outcome, run.counts))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(run: AuditRun) -> str:
    out = [f"# Audit of {run.host}", "",
           f"Run {run.started_at.isoformat(timespec='seconds')} to {run.finished_at.isoformat(timespec='seconds')} "
           f"(iact-agents {run.version}). Outcome: **{run.outcome}** (exit code {run.exit_code}; a failed check of "
           f"severity high or above fails the audit).", "",
           "| check | title | reference | severity | status | evidence |", "|---|---|---|---|---|---|"]
    out += [f"| `{r.id}` | {_md(r.title)} | {_md(r.reference)} | {r.severity.value} | {mark(r)} | "
            f"{_md(r.evidence)} |" for r in run.results]
    failures = [r for r in run.results if r.findings or r.waiver]
    if failures:
        out += ["", "## Findings", ""]
        for r in failures:
            waiver = [f"- \\* {_md(r.waiver)}"] if r.waiver else []
            out += [f"### `{r.id}` ({r.severity.value})", "", *(f"- {_md(f)}" for f in r.findings), *waiver, ""]
    return "\n".join(out).rstrip() + "\n"


def render_json(run: AuditRun) -> str:
    return json.dumps(run.as_dict(), indent=2, ensure_ascii=False) + "\n"


def write_reports(run: AuditRun, folder: Path) -> list[Path]:
    """``report.json`` and ``report.md`` of the run in ``folder`` (atomically; 0640). Raises ``OSError``."""
    written = []
    for name, text in (("report.json", render_json(run)), ("report.md", render_markdown(run))):
        path = folder / name
        replace_atomically(path, text.encode("utf-8"), 0o640)
        written.append(path)
    return written


def render_catalogue(checks: Sequence[Check], markdown: bool = False) -> str:
    if markdown:
        out = ["| check | title | reference | severity |", "|---|---|---|---|"]
        out += [f"| `{c.id}` | {_md(c.title)} | {_md(c.reference)} | {c.severity.value} |" for c in checks]
        return "\n".join(out) + "\n"
    return "\n".join(_columns(("CHECK", "SEVERITY", "REFERENCE", "TITLE"),
                              [(c.id, c.severity.value, c.reference, c.title) for c in checks])) + "\n"


# --- several hosts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostReport:
    host: str
    finished_at: str
    outcome: str
    counts: dict[str, int]
    results: list[Result]


def read_report(path: Path) -> HostReport:
    """A JSON report written by :func:`write_reports` (or ``audit run --json``)."""
    try:
        doc = storable.loads(path.read_bytes())
        results = [Result.from_dict(r) for r in doc["results"]]
        counts = {str(k): int(v) for k, v in doc["counts"].items()}
        datetime.fromisoformat(str(doc["finished_at"]))
        return HostReport(str(doc["host"]), str(doc["finished_at"]), str(doc["outcome"]), counts, results)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: not an audit report ({type(exc).__name__}: {exc})") from None


def render_fleet(reports: Sequence[HostReport]) -> str:
    """One line per check with each host's status, then each host's failures and summary."""
    hosts = [r.host for r in reports]
    ids: list[tuple[str, Severity]] = []
    for report in reports:
        for res in report.results:
            if (res.id, res.severity) not in ids:
                ids.append((res.id, res.severity))
    status = {(rep.host, res.id): res for rep in reports for res in rep.results}
    rows = [(cid, sev.value, *(mark(status[(h, cid)]) if (h, cid) in status else "-" for h in hosts))
            for cid, sev in ids]
    lines = _columns(("CHECK", "SEVERITY", *hosts), rows)
    for rep in reports:
        for res in rep.results:
            if res.status in (Status.FAIL, Status.ERROR):
                lines.append(f"{rep.host} {res.id} ({res.severity.value}) {mark(res)}: {res.evidence[:160]}")
                lines += [f"    {f}" for f in res.findings[:10]]
                lines += [f"    * {res.waiver}"] if res.waiver else []
    lines += [summary_line(rep.host, rep.outcome, rep.counts) + f" at {rep.finished_at}" for rep in reports]
    return "\n".join(lines) + "\n"
