"""The dora role's result on the metrics store: configuration, cron entry, sample data and the HTML report.

Runs on every host of the `mysql` group of whatever inventory testinfra is given (the lab, the stack scenario).
"""

from __future__ import annotations

import json
import re

testinfra_hosts = ["ansible://mysql"]

AS_IACT = "runuser -u iact -- "
REPORT = "/var/lib/iact/reports/dora.html"


def sql(host, statement: str) -> str:
    with host.sudo():
        cmd = host.run("mariadb -N -B iact -e %s", statement)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def test_config_is_valid_and_holds_no_secret(host):
    with host.sudo():
        f = host.file("/etc/iact/dora.toml")
        assert f.exists
        assert (f.user, f.group, f.mode) == ("root", "iact", 0o640)
        text = f.content_string
        check = host.run(AS_IACT + "iact-agent dora --check-config --config /etc/iact/dora.toml")
    assert check.rc == 0, check.stderr
    assert 'defaults_file = "/etc/iact/mysql-dora.cnf"' in text
    assert "password" not in text.lower()


def test_cron_entry_runs_compute_quality_and_report(host):
    f = host.file("/etc/cron.d/iact-dora")
    assert f.exists
    assert (f.user, f.mode) == ("root", 0o644)
    for part in ("iact-agent job run --name dora", "iact-agent dora compute", "iact-agent quality run",
                 "iact-agent dora report --html --config /etc/iact/dora.toml"):
        assert f.contains(re.escape(part)), part
    # The page's path is the configuration's ([report] html_path), the one the deployment writes.
    assert host.file("/etc/iact/dora.toml").contains(re.escape(f'html_path = "{REPORT}"'))
    # The cron role ran it once at installation, through the wrapper that records the run.
    assert int(sql(host, "SELECT COUNT(*) FROM job_runs WHERE job_name = 'dora' AND status = 'success'")) >= 1


def test_report_is_self_contained_html_with_charts(host):
    f = host.file(REPORT)
    assert f.exists
    assert f.user == "iact"
    page = f.content_string
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|<img|<iframe|(src|href)\s*=|https?://|@import|url\(", page, re.I)
    assert page.count("<svg") == 5
    assert page.count("<polyline") >= 5
    assert 'id="as-of">' in page and 'id="benchmark-year">' in page and 'id="quality-score">' in page


def test_sample_data_and_snapshots(host):
    hv = host.ansible.get_variables()
    with host.sudo():
        out = host.run(AS_IACT + "iact-agent dora report --config /etc/iact/dora.toml --json")
    assert out.rc == 0, out.stderr
    doc = json.loads(out.stdout)
    services = {s["service"] for s in doc["snapshots"]}
    assert "*" in services
    assert doc["benchmark_years"] == [int(hv.get("dora_benchmark_year", 2024))]
    if hv.get("dora_as_of"):
        assert doc["as_of"] == hv["dora_as_of"]
    if hv.get("dora_sample_data_load"):
        counts = sql(host, "SELECT (SELECT COUNT(*) FROM deployments WHERE source = 'sample'), "
                           "(SELECT COUNT(*) FROM changes WHERE source = 'sample'), "
                           "(SELECT COUNT(*) FROM incidents WHERE source = 'sample'), "
                           "(SELECT COUNT(*) FROM dora_rejected_events WHERE source = 'sample' "
                           "AND reprocessed_at IS NULL)")
        deployments, changes, incidents, dead = (int(x) for x in counts.split("\t"))
        assert deployments + changes + incidents == 642
        assert dead == 4
        assert {"checkout", "payments", "search", "catalog", "billing"} <= services
        overall30 = next(s for s in doc["snapshots"] if s["service"] == "*" and s["window_days"] == 30)
        assert overall30["deployments_count"] > 0
        assert overall30["quality_score"] is not None
