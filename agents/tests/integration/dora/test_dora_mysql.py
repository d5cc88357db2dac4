"""End to end against the real MariaDB: ingest, dead letters, compute, report and quality run through the
``iact-agent`` command line, and the retrying transaction against real server failures."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, time, timedelta
from typing import Any

import pymysql
import pytest
from dora_support import at, query, run_json, write_jsonl
from iact_agents import mysqlconn
from iact_agents.cli import main
from iact_agents.dora.store import Database

Ctx = Any  # conftest.Ctx (test folders are not packages)


def events(c: Ctx) -> list[dict[str, Any]]:
    """Hand-computed below: window 30 ending with c.day."""
    d, s, src = c.day, c.service, c.source
    return [
        # squash merge: lead time from first_commit_at (-12 08:00) to d1 (-10 12:00) = 52 h
        {"type": "change", "source": src, "source_event_id": "c1", "service": s, "commit_sha": "a1b2c3d",
         "committed_at": at(d, -10, 8), "first_commit_at": at(d, -12, 8)},
        # shipped by d2 and again by d3: counts once, at d2: 2 h
        {"type": "change", "source": src, "source_event_id": "c2", "service": s, "commit_sha": "b2c3d4e",
         "committed_at": at(d, -5, 10)},
        {"type": "deployment", "source": src, "source_event_id": "d1", "service": s, "environment": "production",
         "deployed_at": at(d, -10, 12), "status": "success", "version": "1", "change_ids": ["c1"]},
        {"type": "deployment", "source": src, "source_event_id": "d2", "service": s, "environment": "production",
         "deployed_at": at(d, -5, 12), "status": "success", "version": "2", "change_ids": ["c2"]},
        {"type": "deployment", "source": src, "source_event_id": "d3", "service": s, "environment": "production",
         "deployed_at": at(d, -5, 15), "status": "success", "version": "3", "change_ids": ["c2"]},
        # two incidents of d2 (explicit, and by the 24 h window): d2 counts once as failed; 2 h and 4 h
        {"type": "incident", "source": src, "source_event_id": "i1", "service": s, "started_at": at(d, -5, 13),
         "resolved_at": at(d, -5, 15), "deployment_id": "d2"},
        {"type": "incident", "source": src, "source_event_id": "i2", "service": s, "started_at": at(d, -5, 14),
         "resolved_at": at(d, -5, 18)},
        # no deployment within 24 h before it: unlinked, reported
        {"type": "incident", "source": src, "source_event_id": "i3", "service": s, "started_at": at(d, -20, 9),
         "resolved_at": at(d, -20, 10)},
    ]


def test_ingest_is_idempotent(ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(ctx.tmp / "events.jsonl", events(ctx))
    first = run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json", str(path))["total"]
    assert (first["read"], first["inserted"], first["rejected"], first["changed"]) == (8, 8, 0, True)
    second = run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json", str(path))["total"]
    assert (second["inserted"], second["updated"], second["unchanged"], second["changed"]) == (0, 0, 8, False)
    counts = [query(dora_db, f"SELECT COUNT(*) FROM {t} WHERE source = %s", ctx.source)[0][0]
              for t in ("deployments", "changes", "incidents")]
    assert counts == [3, 2, 3]
    links = query(dora_db, "SELECT d.source_event_id, dc.change_ref FROM deployment_changes dc JOIN deployments d "
                           "ON d.id = dc.deployment_id WHERE d.source = %s ORDER BY 1", ctx.source)
    assert links == [("d1", "c1"), ("d2", "c2"), ("d3", "c2")]
    squash = query(dora_db, "SELECT first_commit_at FROM changes WHERE source = %s AND source_event_id = 'c1'",
                   ctx.source)
    assert squash[0][0] == datetime.combine(ctx.day - timedelta(days=12), time(8))
    # A changed event (the incident got resolved later) is an update, not a second row.
    changed = dict(events(ctx)[7], resolved_at=at(ctx.day, -20, 11))
    third = run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json",
                     str(write_jsonl(ctx.tmp / "update.jsonl", [changed])))["total"]
    assert (third["updated"], third["inserted"]) == (1, 0)
    assert query(dora_db, "SELECT COUNT(*) FROM incidents WHERE source = %s", ctx.source)[0][0] == 3


def test_dead_letters_and_retry(ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    good = events(ctx)[:2]
    naive = dict(events(ctx)[5], started_at=at(ctx.day, -5, 13)[:-1])  # no offset: rejected
    path = write_jsonl(ctx.tmp / "mixed.jsonl", [good[0], "{not json", naive, good[1]])
    total = run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json", "--source", ctx.source,
                     str(path))["total"]
    assert (total["read"], total["inserted"], total["rejected"], total["dead_letters_new"]) == (4, 2, 2, 2)
    rows = query(dora_db, "SELECT field, reason, event_type, source_event_id, attempts FROM dora_rejected_events "
                          "WHERE source = %s AND reprocessed_at IS NULL ORDER BY id", ctx.source)
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [("(event)", None, None, 1), ("started_at", "incident", "i1", 1)]
    assert "timezone" in rows[1][1]
    # The same bad file again: no new dead letter, one more attempt each.
    again = run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json", "--source", ctx.source,
                     str(path))["total"]
    assert again["dead_letters_new"] == 0
    assert query(dora_db, "SELECT SUM(attempts) FROM dora_rejected_events WHERE source = %s", ctx.source)[0][0] == 4
    # Retry without a fix: still rejected.
    res = run_json(capsys, "dora", "dead-letters", "retry", "--config", str(ctx.config), "--source", ctx.source,
                   "--json")
    assert (res["retried"], res["ingested"], res["still_rejected"]) == (2, 0, 2)
    # Retry one with a corrected payload: ingested, marked reprocessed.
    dl_id = query(dora_db, "SELECT id FROM dora_rejected_events WHERE source = %s AND source_event_id = 'i1'",
                  ctx.source)[0][0]
    fixed = ctx.tmp / "fixed.json"
    fixed.write_text(json.dumps(events(ctx)[5]), encoding="utf-8")
    res = run_json(capsys, "dora", "dead-letters", "retry", "--config", str(ctx.config), "--id", str(dl_id),
                   "--fixed", str(fixed), "--json")
    assert (res["ingested"], res["still_rejected"]) == (1, 0)
    assert query(dora_db, "SELECT reprocessed_at IS NOT NULL FROM dora_rejected_events WHERE id = %s",
                 dl_id)[0][0] == 1
    assert query(dora_db, "SELECT COUNT(*) FROM incidents WHERE source = %s AND source_event_id = 'i1'",
                 ctx.source)[0][0] == 1
    capsys.readouterr()
    assert main(["dora", "dead-letters", "list", "--config", str(ctx.config), "--source", ctx.source]) == 0
    listing = capsys.readouterr().out
    assert "(event)" in listing or "not valid JSON" in listing
    assert "i1" not in listing


def test_compute_replaces_same_day(ctx: Ctx, dora_db: pymysql.Connection,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(ctx.tmp / "events.jsonl", events(ctx))
    run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json", str(path))
    compute = ("dora", "compute", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(), "--source",
               ctx.source, "--window", "30", "--window", "90", "--benchmark-year", "2024", "--json")
    first = run_json(capsys, *compute)
    assert (first["inserted"], first["replaced"], first["unchanged"]) == (4, 0, 0)
    cols = ("deployments_count, deployment_days, deployment_days_per_week, changes_count, lead_time_seconds, "
            "lead_time_p90_seconds, failed_changes_count, change_failure_rate, time_to_restore_seconds, "
            "incidents_count, incidents_unlinked_count, benchmark_year, deployment_frequency_class")
    row = query(dora_db, f"SELECT {cols} FROM dora_metrics WHERE service = %s AND window_days = 30 "
                         "AND computed_on = %s", ctx.service, ctx.day)
    assert len(row) == 1
    r = row[0]
    assert r[:2] == (3, 2)
    assert r[2] == pytest.approx(2 * 7 / 30)
    assert r[3:7] == (2, 27 * 3600, 47 * 3600, 1)  # median of 52 h and 2 h; p90 = 2 + 0.9 * 50
    assert r[7] == pytest.approx(1 / 3)
    assert r[8:12] == (3 * 3600, 3, 1, 2024)
    second = run_json(capsys, *compute)
    assert (second["inserted"], second["replaced"], second["unchanged"]) == (0, 0, 4)
    # New data for the same day: the rows are replaced, never duplicated.
    extra = {"type": "incident", "source": ctx.source, "source_event_id": "i4", "service": ctx.service,
             "started_at": at(ctx.day, -10, 13), "resolved_at": at(ctx.day, -10, 14), "deployment_id": "d1"}
    run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json",
             str(write_jsonl(ctx.tmp / "more.jsonl", [extra])))
    third = run_json(capsys, *compute)
    assert (third["inserted"], third["replaced"]) == (0, 4)
    rows = query(dora_db, "SELECT change_failure_rate FROM dora_metrics WHERE service = %s AND window_days = 30 "
                          "AND computed_on = %s", ctx.service, ctx.day)
    assert len(rows) == 1
    assert rows[0][0] == pytest.approx(2 / 3)
    assert query(dora_db, "SELECT COUNT(*) FROM dora_metrics WHERE computed_on = %s", ctx.day)[0][0] == 4


def test_report_json_and_html(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(ctx.tmp / "events.jsonl", events(ctx))
    run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json", str(path))
    run_json(capsys, "dora", "compute", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(), "--source",
             ctx.source, "--backfill", "7", "--json")
    doc = run_json(capsys, "dora", "report", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(), "--json")
    assert doc["as_of"] == ctx.day.isoformat()
    assert doc["benchmark_years"] == [2024]
    assert doc["quality_score"] is not None
    mine = [s for s in doc["snapshots"] if s["service"] == ctx.service and s["window_days"] == 30]
    assert len(mine) == 1
    assert mine[0]["lead_time_seconds"] == 27 * 3600
    assert len([t for t in doc["trend"] if t["window_days"] == 30]) == 7
    html_path = ctx.tmp / "dora.html"
    capsys.readouterr()
    assert main(["dora", "report", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(),
                 "--html", str(html_path)]) == 0
    assert "written" in capsys.readouterr().out
    page = html_path.read_text(encoding="utf-8")
    assert f'id="as-of">{ctx.day.isoformat()}<' in page
    assert 'id="benchmark-year">2024<' in page
    assert 'id="quality-score">' in page
    assert page.count("<svg") == 5
    assert page.count("<polyline") >= 5
    assert ctx.service in page
    assert not re.search(r"(src|href)\s*=|https?://|<script|<link", page)
    # Same snapshots, same bytes: not rewritten.
    assert main(["dora", "report", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(),
                 "--html", str(html_path)]) == 0
    assert "unchanged" in capsys.readouterr().out
    # --html without a path: where the configuration says ([report] html_path, what the cron job uses).
    configured = ctx.tmp / "configured" / "dora.html"
    configured.parent.mkdir()
    assert main(["dora", "report", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(), "--html"]) == 0
    assert f"{configured}: written" in capsys.readouterr().out
    assert configured.read_bytes() == html_path.read_bytes()
    # Table output names the as-of day and the benchmark year.
    assert main(["dora", "report", "--config", str(ctx.config), "--as-of", ctx.day.isoformat()]) == 0
    table = capsys.readouterr().out
    assert f"as of {ctx.day.isoformat()}" in table
    assert "benchmark year 2024" in table


def test_quality_run_writes_results(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    bad = dict(events(ctx)[5], resolved_at=at(ctx.day, -5, 12))  # resolved before it started
    items = [*events(ctx)[:5], bad, *events(ctx)[6:]]
    run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json",
             str(write_jsonl(ctx.tmp / "events.jsonl", items)))
    doc = run_json(capsys, "quality", "run", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(),
                   "--source", ctx.source, "--json")
    assert doc["run_id"]
    assert 0 <= doc["score"] < 100
    conn = mysqlconn.connect(ctx.quality_cnf)
    try:
        rows = query(conn, "SELECT check_name, category, status, failing_rows, evaluated_rows, observed_value "
                           "FROM quality_results WHERE run_id = %s", doc["run_id"])
        by_name = {r[0]: r for r in rows}
        assert len(rows) == len(doc["checks"]) + 1
        assert by_name["range.incident_resolution_after_start"][2:5] == ("fail", 1, 3)
        assert by_name["score"][1] == "score"
        assert by_name["score"][5] == pytest.approx(doc["score"])
    finally:
        query(conn, "DELETE FROM quality_results WHERE run_id = %s", doc["run_id"])
        conn.commit()
        conn.close()


def test_connection_lost_is_retried(ctx: Ctx, dora_db: pymysql.Connection) -> None:
    waits: list[float] = []
    db = Database(ctx.dora_cnf, base_delay=0.05, sleep=waits.append)
    try:
        own_id = db.run(lambda cur: cur.execute("SELECT CONNECTION_ID()") and cur.fetchone()[0])
        query(dora_db, "KILL CONNECTION %s", own_id)
        assert db.run(lambda cur: cur.execute("SELECT 1") and cur.fetchone()[0]) == 1
        assert db.retries == 1
        assert waits == [0.05]
    finally:
        db.close()


def test_lock_wait_timeout_is_retried(ctx: Ctx, dora_db: pymysql.Connection,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "dora", "ingest", "--config", str(ctx.config), "--json",
             str(write_jsonl(ctx.tmp / "one.jsonl", events(ctx)[2:3])))
    holder = mysqlconn.connect(ctx.dora_cnf, autocommit=False)
    released = threading.Event()

    def release(_delay: float) -> None:  # the backoff wait: the other transaction ends meanwhile
        holder.rollback()
        released.set()

    db = Database(ctx.dora_cnf, attempts=3, sleep=release)
    try:
        query(holder, "SELECT id FROM deployments WHERE source = %s FOR UPDATE", ctx.source)

        def work(cur: Any) -> int:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
            return int(cur.execute("UPDATE deployments SET version = 'locked' WHERE source = %s", (ctx.source,)))

        assert db.run(work) == 1
        assert released.is_set()
        assert db.retries == 1
    finally:
        db.close()
        holder.close()


def test_bad_config_is_one_line_exit_2(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    bad = ctx.tmp / "bad.toml"
    bad.write_text("[metrics]\nwindows = [0]\n", encoding="utf-8")
    assert main(["dora", "compute", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.windows" in err and "Traceback" not in err
    assert main(["dora", "compute", "--config", str(ctx.config), "--benchmark-year", "1999"]) == 2
    assert "no DORA benchmark table for 1999" in capsys.readouterr().err
    assert main(["dora", "ingest", "--config", str(ctx.config), str(ctx.tmp / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
