"""The whole DR drill on lab-like hosts: it must verify every marker row and every table, or fail."""

from __future__ import annotations

import json
from pathlib import Path

import drill


def test_drill_restores_every_marker_and_table(inventory: str, tmp_path: Path) -> None:
    rc = drill.main(["--inventory", inventory, "--report-dir", str(tmp_path), "--markers", "100"])
    reports = sorted(tmp_path.glob("drill-*.json"))
    assert reports, "the drill wrote no report"
    report = json.loads(reports[-1].read_text())
    assert rc == 0, report.get("error")
    assert report["status"] == "success"
    assert report["mysql"]["markers_restored"] == {"A": 100, "B": 100}
    assert report["mysql"]["table_differences"] == {}
    assert len(report["mysql"]["manifest"]) >= 2
    assert report["cassandra"]["markers_restored"] == {"A": 100, "B": 100}
    assert report["cassandra"]["node_sstables_with_batch"]["A"] >= 1
    assert set(report["rto_s"]) >= {"mysql", "cassandra_node", "total"}
    assert report["rpo_s"]["mysql"] >= 0
    # The restored backups were stored encrypted on the target (meta.env of the authenticated download).
    assert report["mysql"]["encryption"] == "age"
    assert report["cassandra"]["encryption"] == "age"
    assert reports[-1].with_suffix(".md").read_text().startswith("# DR drill")
