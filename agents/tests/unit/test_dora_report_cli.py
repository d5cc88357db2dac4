"""Report rendering, the agent's configuration and the command line's input errors (no database)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iact_agents.audit.store import HostAudit
from iact_agents.cli import main
from iact_agents.dora import config as dora_config
from iact_agents.dora.models import Change, Deployment, Incident
from iact_agents.dora.report import ReportData, render_html, render_json, render_table, svg_chart, write_if_changed
from iact_agents.dora.snapshot import snapshot_rows
from iact_agents.dora.store import IngestCounts, LoadedEvents, is_transient
from iact_agents.errors import ConfigError, ServiceUnavailable
from iact_agents.quality.runner import run_quality, stored_schema_check

DAY = date(2026, 11, 26)


def t(days: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, 26, hour, tzinfo=UTC) - timedelta(days=days)


def sample_rows() -> list[dict[str, Any]]:
    deps = [Deployment(source_event_id=f"d{i}", service="shop", environment="production", deployed_at=t(i),
                       status="success", version="1", change_ids=(f"c{i}",)) for i in range(1, 4)]
    chs = [Change(source_event_id=f"c{i}", service="shop", commit_sha="abcdef1", committed_at=t(i, 8))
           for i in range(1, 4)]
    incs = [Incident(source_event_id="i1", service="shop", started_at=t(1, 13), resolved_at=t(1, 15))]
    rows = []
    for back in range(3):
        for r in snapshot_rows(deps, chs, incs, computed_on=DAY - timedelta(days=back), window_days=(30, 90)):
            rows.append({**r, "quality_score": 97.5})
    return rows


def report() -> ReportData:
    rows = sample_rows()
    today = [r for r in rows if r["computed_on"] == DAY]
    return ReportData(DAY, DAY, today, [r for r in rows if r["service"] == "*"])


def test_table_names_as_of_year_and_score() -> None:
    text = render_table(report())
    assert text.splitlines()[0] == "DORA metrics as of 2026-11-26; benchmark year 2024; data quality score 97.5/100"
    shop30 = next(line for line in text.splitlines() if line.startswith("30d") and "shop" in line)
    # 3 deployments on 3 days in 30 days: 0.70 days/week (medium); lead time 4 h each (elite, < 1 day);
    # 1 of 3 failed (low); restore 2 h (high in 2024: elite is < 1 h)
    assert re.search(r"\b3\s+0\.70\s+medium\s+4\.0 h\s+4\.0 h\s+elite\s+33\.3 %\s+low\s+2\.0 h\s+high", shop30)


def test_json_has_snapshots_and_trend() -> None:
    doc = json.loads(render_json(report()))
    assert doc["as_of"] == "2026-11-26"
    assert doc["benchmark_years"] == [2024]
    assert doc["quality_score"] == 97.5
    assert {s["service"] for s in doc["snapshots"]} == {"*", "shop"}
    assert len(doc["trend"]) == 6  # 3 days x 2 windows, overall only
    shop = next(s for s in doc["snapshots"] if s["service"] == "shop" and s["window_days"] == 30)
    assert shop["lead_time_seconds"] == 4 * 3600
    assert shop["change_failure_rate"] == pytest.approx(1 / 3)


def test_html_is_self_contained_and_deterministic() -> None:
    page = render_html(report())
    assert page == render_html(report())
    assert not re.search(r"<script|<link|<img|(src|href)\s*=|https?://|url\(", page, re.I)
    assert page.count("<svg") == 5
    assert page.count("<polyline") == 10  # two windows on each of the five charts
    assert 'id="as-of">2026-11-26<' in page
    assert 'id="benchmark-year">2024<' in page
    assert 'id="quality-score">97.5 / 100<' in page


GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "dora"
AUDITED = datetime(2026, 11, 25, 4, 17, tzinfo=UTC)


def golden_cases() -> dict[str, ReportData]:
    """Reports that cover every branch of the page: hostile text where text comes from outside (service and
    host names, reasons, the audits note), a missing quality score, gaps in the trend, no data at all."""
    full = report()
    hostile = "<img src=x onerror=\"alert('s')\">&amp;"
    rows = [{**r, "reasons": {**r["reasons"], "lead_time": f"no change with a commit <{hostile}>"}}
            if r["service"] == "shop" and r["window_days"] == 30 else r for r in full.rows]
    rows.append({**rows[-1], "service": hostile, "quality_score": None, "deployment_frequency_class": None,
                 "lead_time_seconds": None, "change_failure_rate": 0.0, "reasons": {}})
    history = [{**r, "quality_score": None} if r["computed_on"] == DAY - timedelta(days=1) else r
               for r in full.history]
    history = [{**r, "lead_time_seconds": None} for r in history]
    audits = [
        HostAudit("cass1", "r1", AUDITED, "failed", 35, 12, 4, 3, 19, 1,
                  [("cassandra.client_tls", "high", "fail"), ("mysql.x", "high", "error")]),
        HostAudit(hostile, "r2", AUDITED, "passed", 35, 8, 0, 0, 27, 0),
        HostAudit("mysql1", "r3", AUDITED, "odd <outcome>", 1, 0, 0, 0, 0, 1, [("a'b", "<low>", "error")]),
    ]
    return {
        "full": ReportData(DAY, DAY + timedelta(days=3), rows, history, audits),
        "empty": ReportData(DAY, DAY, [], [], [], ""),
        "audits_note": ReportData(DAY, DAY, full.rows, [], [],
                                  f"audit results unavailable: (1146) Table 'iact.audit_runs' {hostile}"),
    }


@pytest.mark.parametrize("name", ["full", "empty", "audits_note"])
def test_html_golden(name: str) -> None:
    """The page, byte for byte (the stack compares it across two runs, and the role reports ``changed`` on
    any byte). After an intended change: ``UPDATE_GOLDEN=1 pytest ...`` rewrites the file and fails; review
    the diff, then run again without it."""
    got = render_html(golden_cases()[name])
    golden = GOLDEN / f"report_{name}.golden.html"
    expected = golden.read_text(encoding="utf-8") if golden.exists() else None
    if got != expected and os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(got, encoding="utf-8")
        pytest.fail(f"{golden.name} rewritten: review its diff, then run again without UPDATE_GOLDEN")
    assert got == expected


def test_html_escapes_every_outside_text() -> None:
    """No text that comes from the data reaches the page unescaped (the golden files pin the spelling)."""
    for data in golden_cases().values():
        page = render_html(data)
        assert "<img" not in page and "<outcome>" not in page and "<low>" not in page


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_html_renders_any_service_and_host_name(name: str) -> None:
    data = report()
    marked = "<x-" + name + ">"
    rows = [{**r, "service": marked} if r["service"] == "shop" else r for r in data.rows]
    audits = [HostAudit(marked, "r", AUDITED, marked, 1, 1, 0, 0, 0, 0, [(marked, marked, "fail")])]
    page = render_html(ReportData(DAY, DAY, rows, data.history, audits))
    assert "<x-" not in page
    assert page.count("&lt;x-") >= 5  # the service cell of both windows, the host, the outcome, the problem


def test_chart_without_points_says_so() -> None:
    assert "no data" in svg_chart("x", {}, "")


def test_write_if_changed(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.html"
    assert write_if_changed(path, "a") is True
    assert write_if_changed(path, "a") is False
    assert write_if_changed(path, "b") is True
    assert path.read_text() == "b"
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)  # the web server and operators read it


def test_write_if_changed_is_durable(tmp_path: Path, sync_calls: list[str]) -> None:
    path = tmp_path / "r.html"
    path.write_text("a")
    assert write_if_changed(path, "a") is False
    assert sync_calls == []
    assert write_if_changed(path, "b") is True
    assert sync_calls == ["fsync file", "replace", "fsync dir"]


def test_config_precedence_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "dora.toml"
    f.write_text('[metrics]\nwindows = [90, 7, 7]\nbenchmark_year = 2023\nas_of = 2026-11-26\n')
    cfg = dora_config.load(f, environ={"IACT_DORA__METRICS__BENCHMARK_YEAR": "2024"})
    assert cfg.metrics.windows == [7, 90]
    assert cfg.metrics.benchmark_year == 2024
    assert cfg.metrics.as_of == date(2026, 11, 26)
    cfg = dora_config.load(f, {"metrics": {"windows": [30]}}, environ={})
    assert cfg.metrics.windows == [30]
    f.write_text("[metrics]\nwindows = [-1]\n")
    with pytest.raises(ConfigError, match=r"metrics\.windows"):
        dora_config.load(f, environ={})
    f.write_text("[metrics]\nwindow = [30]\n")
    with pytest.raises(ConfigError, match="Extra inputs"):
        dora_config.load(f, environ={})


def test_cli_bad_config_and_bad_record_are_one_line_exit_2(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "dora.toml"
    cfg.write_text('[mysql]\ndefaults_file = "/nonexistent/mysql-dora.cnf"\n')
    assert main(["dora", "record", "incident", "--config", str(cfg), "--id", "x", "--service", "shop",
                 "--started-at", "2026-11-02T10:00:00"]) == 2
    err = capsys.readouterr().err
    assert err == "iact-agent dora: incident not recorded: started_at: Input should have timezone info\n"
    assert main(["dora", "--check-config", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    # --check-config as the other agents spell it (the old sub-command is gone); neither: one line, exit 2.
    assert main(["dora", "--check-config", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out.count(f"{cfg}: ok") == 1
    with pytest.raises(SystemExit):
        main(["dora", "check-config", "--config", str(cfg)])
    capsys.readouterr()
    assert main(["dora"]) == 2
    assert "--check-config is needed" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[metrics\n")
    assert main(["dora", "compute", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not valid TOML" in err and err.count("\n") == 1
    # A valid event whose credential file is missing: exit 2 with one line, no traceback.
    assert main(["dora", "record", "deployment", "--config", str(cfg), "--id", "d", "--service", "shop",
                 "--deployed-at", "2026-11-02T10:00:00Z", "--status", "success"]) == 2
    assert "credential file not found" in capsys.readouterr().err


def test_transient_error_classification() -> None:
    assert is_transient(pymysql.err.OperationalError(2013, "Lost connection"))
    assert is_transient(pymysql.err.OperationalError(1213, "Deadlock found"))
    assert is_transient(pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"))
    assert not is_transient(pymysql.err.OperationalError(1045, "Access denied"))
    assert not is_transient(pymysql.err.OperationalError(1142, "command denied"))
    assert is_transient(ServiceUnavailable("MySQL is not reachable with x.cnf: (2003) Can't connect"))
    assert not is_transient(ServiceUnavailable("MySQL is not reachable with x.cnf: (1045) Access denied"))


def test_ingest_counts_changed_only_for_new_data() -> None:
    c = IngestCounts(read=3, accepted=3, unchanged=3)
    assert not c.changed
    c.add(IngestCounts(inserted=1))
    assert c.changed and c.as_dict()["inserted"] == 1


def test_stored_schema_check_counts_pending_dead_letters() -> None:
    dep = Deployment(source_event_id="d", service="s", environment="production", deployed_at=t(1),
                     status="success", version="1")
    loaded = LoadedEvents([dep], [], [], pending_dead_letters=1,
                          dead_letter_samples=[("incident", "i9", "started_at: bad")])
    check = stored_schema_check(loaded)
    assert (check.evaluated, check.failed, check.category) == (2, 1, "schema")
    report = run_quality(loaded, datetime(2026, 11, 27, tzinfo=UTC))
    assert report.checks[0] is not None and report.checks[0].check == "schema.ingest"
    # schema rate 0.5 pulls the score below 100 by its weight share
    assert report.score.score is not None and report.score.score < 100
