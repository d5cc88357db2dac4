"""What the audit hands on: the command line, its reports, its configuration, the rows it stores (against the
migration), the health agent's audit check and the DORA/operations report's audit section."""

from __future__ import annotations

import contextlib
import io
import json
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from audit_support import Tree
from hypothesis import given, settings
from hypothesis import strategies as st
from iact_agents.audit import config as audit_config
from iact_agents.audit import report, store
from iact_agents.audit.model import Result, Severity, Status
from iact_agents.audit.runner import CATALOGUE, AuditRun
from iact_agents.audit.store import HostAudit
from iact_agents.cli import main
from iact_agents.dora.report import ReportData, render_html, render_json, render_table
from iact_agents.errors import ConfigError, InputError
from iact_agents.health.checks import LastAudit, audit_check
from iact_agents.health.config import HealthConfig
from iact_agents.health.models import Status as HealthStatus
from iact_agents.health.runner import run_checks
from test_audit_host_checks import lab_host

MIGRATION = Path(__file__).resolve().parents[4] / "roles" / "mysql" / "files" / "migrations" / "0015_audit_results.sql"
T0 = datetime(2026, 11, 29, 4, 17, tzinfo=UTC)


def a_run(*statuses: tuple[str, Severity, Status]) -> AuditRun:
    results = [Result(i, f"title {i}", "ref | x", sev, s, f"seen {i}", ("bad one",) if s is Status.FAIL else ())
               for i, sev, s in statuses]
    return AuditRun("cass1", T0, T0 + timedelta(seconds=3), results)


# --- command line -------------------------------------------------------------------------------------


def test_run_on_a_host_tree_prints_json_and_exits_by_the_worst_failure(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    tree = lab_host(tmp_path / "host")
    cfg = tmp_path / "audit.toml"
    cfg.write_text('host = "h1"\n[software]\nvenv_roots = ["/opt"]\n')
    code = main(["audit", "run", "--config", str(cfg), "--root", str(tree.root), "--no-record", "--json",
                 "--only", "rnf002", "--only", "files"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["host"] == "h1" and doc["outcome"] == "passed"
    assert [r["id"] for r in doc["results"]][:2] == ["rnf002.redis", "rnf002.prometheus"]
    tree.path("/etc/iact/mysql-health.cnf").chmod(0o644)
    code = main(["audit", "run", "--config", str(cfg), "--root", str(tree.root), "--no-record", "--only", "files"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL    high      files.credentials" in out and "/etc/iact/mysql-health.cnf: mode 0644" in out
    assert out.rstrip().endswith("h1: audit FAILED (1 fail)")


def test_list_check_config_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "list", "--markdown"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("\n") == len(CATALOGUE) + 2 and "| `mysql.local_infile` |" in listing
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[units]\nmax_exposure = {\"x.service\" = 11}\n")
    assert main(["audit", "run", "--config", str(cfg), "--check-config"]) == 2
    assert "units.max_exposure: Value error, exposure must be 0.0..10.0: x.service" in capsys.readouterr().err
    assert main(["audit", "run", "--config", str(tmp_path / "none.toml"), "--only", "nothing"]) == 2
    assert main(["audit", "run", "--only", "nothing"]) == 1
    assert "no check matches nothing" in capsys.readouterr().err


def test_recording_problems_are_said_and_change_the_exit_code(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    tree = lab_host(tmp_path / "host")
    cfg = tmp_path / "audit.toml"
    cfg.write_text(f'host = "h1"\nstate_dir = "{tmp_path / "missing" / "dir"}"\n[record]\n'
                   f'defaults_file = "{tmp_path / "none.cnf"}"\n')
    code = main(["audit", "run", "--config", str(cfg), "--root", str(tree.root), "--only", "files"])
    err = capsys.readouterr().err
    assert code == 3
    assert "not recorded in MySQL" in err and "none.cnf: MySQL credential file not found" in err
    assert "reports not written" in err


def test_fleet_report_from_json_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = a_run(("a.one", Severity.HIGH, Status.PASS), ("a.two", Severity.LOW, Status.NOT_APPLICABLE))
    bad = AuditRun("mysql1", T0, T0, [Result("a.one", "t", "r", Severity.HIGH, Status.FAIL, "seen", ("x",))])
    (tmp_path / "cass1.json").write_text(report.render_json(good))
    (tmp_path / "mysql1.json").write_text(report.render_json(bad))
    assert main(["audit", "report", str(tmp_path / "cass1.json"), str(tmp_path / "mysql1.json")]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^a\.one\s+high\s+PASS\s+FAIL$", out, re.MULTILINE), out
    assert "mysql1 a.one (high) FAIL: seen\n    x" in out
    (tmp_path / "junk.json").write_text('{"host": 1}')
    assert main(["audit", "report", str(tmp_path / "junk.json")]) == 2
    assert "junk.json: not an audit report (KeyError" in capsys.readouterr().err


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_reading_any_file_as_a_report_is_a_report_or_an_input_error(data: bytes) -> None:
    import tempfile  # noqa: PLC0415

    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        fh.write(data)
        fh.flush()
        with contextlib.suppress(InputError):
            report.read_report(Path(fh.name))


# --- reports ------------------------------------------------------------------------------------------


def test_markdown_and_json_reports_are_written_atomically_and_closed(tmp_path: Path) -> None:
    run = a_run(("a.one", Severity.HIGH, Status.FAIL), ("a.two", Severity.LOW, Status.PASS))
    paths = report.write_reports(run, tmp_path)
    assert [p.name for p in paths] == ["report.json", "report.md"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in paths)
    md = (tmp_path / "report.md").read_text()
    assert "| `a.one` | title a.one | ref \\| x | high | FAIL | seen a.one |" in md
    assert "### `a.one` (high)\n\n- bad one" in md and "Outcome: **failed**" in md
    back = report.read_report(tmp_path / "report.json")
    assert back.results == run.results and back.outcome == "failed" and back.counts["fail"] == 1


# --- configuration ------------------------------------------------------------------------------------


def test_configuration_precedence_and_validation(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text('host = "file"\n[web]\nurl = "https://a/"\n[[credentials.extra_rules]]\n'
                   'paths = ["/srv/x.key"]\nowners = ["x"]\ngroups = ["x"]\n')
    loaded = audit_config.load(cfg, overrides={"web": {"timeout_s": 3}},
                               environ={"IACT_AUDIT__HOST": "env", "IACT_AUDIT__SOFTWARE__PATH": "/a,/b"})
    assert (loaded.host, loaded.web.url, loaded.web.timeout_s, loaded.software.path) == ("env", "https://a/", 3,
                                                                                       ["/a", "/b"])
    rules = loaded.credentials.all_rules
    assert rules[-1].paths == ["/srv/x.key"] and "/etc/iact/**/*.cnf" in rules[0].paths
    for bad in ('[software]\npath = ["relative"]\n', "[mysql]\nunknown = 1\n",
                '[[credentials.extra_rules]]\npaths = ["x"]\nowners = ["x"]\ngroups = ["x"]\n',
                '[[credentials.extra_rules]]\npaths = ["/x"]\nowners = []\ngroups = ["x"]\n'):
        cfg.write_text(bad)
        with pytest.raises(ConfigError):
            audit_config.load(cfg)


# --- stored rows against migration 0015 ---------------------------------------------------------------


def _table_columns(sql: str, table: str) -> dict[str, str]:
    body = sql.split(f"CREATE TABLE IF NOT EXISTS {table} (", 1)[1].split(") ENGINE", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s+([a-z_]+) ([A-Z]+(?:\(\d+\))?)", body, re.MULTILINE)
            if m.group(1) not in ("id",)}


def test_the_rows_fit_the_tables_of_migration_0015() -> None:
    sql = MIGRATION.read_text()
    runs, results = _table_columns(sql, "audit_runs"), _table_columns(sql, "audit_results")
    assert set(store.RUN_COLUMNS) == set(runs) and set(store.RESULT_COLUMNS) == set(results)
    run = a_run(("a.one", Severity.CRITICAL, Status.FAIL), ("a.two", Severity.INFO, Status.ERROR))
    assert len(store.run_row(run, "u" * 36)) == len(store.RUN_COLUMNS)
    assert all(len(r) == len(store.RESULT_COLUMNS) for r in store.result_rows(run, "u" * 36))
    for check in CATALOGUE:
        assert len(check.id) <= 64 and len(check.title) <= 255 and len(check.reference) <= 255, check.id
    values = re.findall(r"CHECK \(status IN \(([^)]*)\)\)", sql)[-1]
    assert {s.value for s in Status} == set(re.findall(r"'([a-z_]+)'", values))
    assert {s.value for s in Severity} == set(re.findall(r"'([a-z_]+)'", re.search(
        r"CHECK \(severity IN \(([^)]*)\)\)", sql).group(1)))  # type: ignore[union-attr]


# --- the health agent's audit check -------------------------------------------------------------------


def _last(outcome: str = "passed", age_h: float = 10, failed: int = 0, high: int = 0, errors: int = 0) -> LastAudit:
    return LastAudit(T0 - timedelta(hours=age_h), outcome, failed, high, errors)


@pytest.mark.parametrize(("last", "status", "summary"), [
    (None, HealthStatus.CRITICAL, "no audit recorded for this host"),
    (_last(), HealthStatus.OK, "last audit 10.0 h ago: passed"),
    (_last(failed=2), HealthStatus.OK, "last audit 10.0 h ago: passed, 2 lower-severity finding(s)"),
    (_last(age_h=200), HealthStatus.CRITICAL, "last audit 200.0 h ago: older than 192 h"),
    (_last("failed", failed=3, high=1), HealthStatus.CRITICAL, "failed: 1 check(s) of severity high or above"),
    (_last("incomplete", errors=2), HealthStatus.WARNING, "2 check(s) could not be judged"),
    (_last("incomplete", errors=2, age_h=300), HealthStatus.CRITICAL, "older than 192 h; 2 check(s) could not"),
])
def test_health_audit_check(last: LastAudit | None, status: HealthStatus, summary: str) -> None:
    result = audit_check(last, 192, "cass1", T0)
    assert (result.component, result.check_name) == ("audit", "last_run")
    assert result.status is status and summary in result.summary, result


def test_health_audit_check_without_mysql_is_unknown(tmp_path: Path) -> None:
    cfg = HealthConfig.model_validate({"host": "h", "audit": {"enabled": True}, "time_sync": {"enabled": False},
                                       "disk": {"paths": [{"path": str(tmp_path)}]}})
    [result] = [r for r in run_checks(cfg, None) if r.component == "audit"]
    assert result.status is HealthStatus.UNKNOWN and "audit_runs not read" in result.summary
    assert HealthConfig().audit.enabled is False and HealthConfig().audit.max_age_h == 192


# --- the DORA/operations report's audit section ---------------------------------------------------------


def _report(audits: list[HostAudit], note: str = "") -> ReportData:
    day = T0.date()
    return ReportData(day, day, [], [], audits, note)


def test_dora_report_section_of_the_last_audit_per_host() -> None:
    audits = [HostAudit("cass1", "r1", T0, "failed", 35, 12, 4, 3, 19, 0,
                        [("cassandra.client_tls", "high", "fail"), ("mysql.x", "high", "error")]),
              HostAudit("<b>x</b>", "r2", T0, "passed", 35, 8, 0, 0, 27, 0)]
    text = render_table(_report(audits))
    assert "Compliance and security audit (last run per host)" in text
    assert re.search(r"^cass1\s+2026-11-29 04:17\s+failed\s+35\s+12\s+4\s+3\s+19\s+0$", text, re.MULTILINE), text
    assert "  cass1: cassandra.client_tls (high), mysql.x (high, error)" in text
    doc = json.loads(render_json(_report(audits)))
    assert doc["audits"][0]["problems"][0] == {"check": "cassandra.client_tls", "severity": "high", "status": "fail"}
    page = render_html(_report(audits))
    assert '<h2 id="audit">Compliance and security audit</h2>' in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" not in page
    assert "no audit recorded yet" in render_table(_report([]))
    noted = _report([], "audit results unavailable: (1146) Table 'iact.audit_runs' doesn't exist")
    assert "(1146)" in render_table(noted) and "(1146)" in render_html(noted)
    assert json.loads(render_json(noted))["audits_note"].startswith("audit results unavailable")


def test_table_of_one_run_lists_findings_and_the_summary() -> None:
    out = io.StringIO()
    out.write(report.render_table(a_run(("a.one", Severity.HIGH, Status.FAIL), ("a.two", Severity.LOW,
                                                                                Status.NOT_APPLICABLE))))
    text = out.getvalue()
    assert "  a.one: bad one" in text and text.rstrip().endswith("cass1: audit FAILED (1 fail, 1 n/a)")


def test_tree_helper_names_the_test_user(tmp_path: Path) -> None:
    tree = Tree(tmp_path, me="mysql", my_group="mysql")
    assert "mysql:x:" in tree.path("/etc/passwd").read_text().splitlines()[0]


# --- waivers ------------------------------------------------------------------------------------------


def test_a_waived_failure_stays_a_failure_with_its_evidence_but_does_not_fail_the_audit_until_it_expires(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = lab_host(tmp_path / "host")
    tree.path("/etc/iact/mysql-health.cnf").chmod(0o644)
    cfg = tmp_path / "audit.toml"
    waiver = '[[waivers]]\ncheck = "files.credentials"\nreason = "issue 99: fixed by the next release"\nuntil = {}\n'
    argv = ["audit", "run", "--config", str(cfg), "--root", str(tree.root), "--no-record", "--only", "files"]
    cfg.write_text('host = "h1"\n' + waiver.format("2999-01-31"))
    assert main([*argv, "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)["results"]
    assert result["status"] == "fail" and "/etc/iact/mysql-health.cnf: mode 0644" in " ".join(result["findings"])
    assert result["waiver"] == "waived until 2999-01-31: issue 99: fixed by the next release"
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "FAIL*   high      files.credentials" in out and "files.credentials: * waived until 2999-01-31" in out
    assert out.rstrip().endswith("h1: audit PASSED (1 fail)")
    # Expired: ignored, and the result says so.
    cfg.write_text('host = "h1"\n' + waiver.format("2020-01-31"))
    assert main([*argv, "--json"]) == 1
    [result] = json.loads(capsys.readouterr().out)["results"]
    assert result["waiver"] == "" and "waiver expired on 2020-01-31: issue 99: fixed by the next release" in \
        result["findings"]


def test_waivers_are_validated_when_the_configuration_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text('[[waivers]]\ncheck = "files.credential"\nreason = "a typo in the id"\nuntil = 2999-01-31\n')
    assert main(["audit", "run", "--config", str(cfg), "--check-config"]) == 2
    assert "waivers: no such check: files.credential" in capsys.readouterr().err
    for bad, field in (('check = "Files credentials"', "waivers.0.check"), ('reason = "because"', "waivers.0.reason"),
                       ('until = "soon"', "waivers.0.until")):
        fields = {"check": 'check = "files.credentials"', "reason": 'reason = "issue 99: next release"',
                  "until": "until = 2999-01-31"}
        fields[field.rsplit(".", 1)[1]] = bad
        cfg.write_text("[[waivers]]\n" + "\n".join(fields.values()) + "\n")
        assert main(["audit", "run", "--config", str(cfg), "--check-config"]) == 2
        assert field in capsys.readouterr().err


def test_a_waived_failure_is_stored_and_reported_as_a_failure_that_says_why_it_does_not_count() -> None:
    run = a_run(("a.one", Severity.HIGH, Status.FAIL), ("a.two", Severity.LOW, Status.PASS))
    run.results[0] = Result(**{**run.results[0].__dict__, "waiver": "waived until 2999-01-31: issue 99"})
    assert (run.outcome, run.exit_code, run.failed_high) == ("passed", 0, [])
    rows = store.result_rows(run, "r1")
    assert rows[0][7:9] == ("fail", "seen a.one (waived until 2999-01-31: issue 99)")
    assert store.run_row(run, "r1")[4:10] == ("passed", 0, 2, 1, 1, 0)
    assert "| high | FAIL* | seen a.one |" in report.render_markdown(run)
    assert "- \\* waived until 2999-01-31: issue 99" in report.render_markdown(run)
    back = report.HostReport("cass1", T0.isoformat(), run.outcome, run.counts,
                             [Result.from_dict(r) for r in json.loads(report.render_json(run))["results"]])
    assert back.results == run.results
    assert "cass1 a.one (high) FAIL*: seen a.one\n    bad one\n    * waived until 2999-01-31: issue 99" in \
        report.render_fleet([back])
