"""Issue 12 against the real MariaDB: no single input line or stored row stops DORA ingest or compute.

Every input here once crashed ingest, lost the good lines of its file, merged two events into one row or
made every later ``dora compute`` fail. Each test names the old failure it guards against.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pymysql
import pytest
from dora_support import at, query, run, run_json, write_jsonl
from iact_agents.dora.models import MAX_LINE_BYTES, RAW_PREFIX_BYTES, Incident, ParseResult
from iact_agents.dora.store import Database, StoreRefused, ingest

Ctx = Any  # conftest.Ctx


def dep(c: Ctx, sid: str, **over: Any) -> dict[str, Any]:
    return {"type": "deployment", "source_event_id": sid, "service": c.service, "environment": "production",
            "deployed_at": at(c.day, -3, 10), "status": "success", **over}


def inc(c: Ctx, sid: str, **over: Any) -> dict[str, Any]:
    return {"type": "incident", "source_event_id": sid, "service": c.service, "started_at": at(c.day, -3, 11),
            **over}


def ingest_json(capsys: pytest.CaptureFixture[str], c: Ctx, path: Path) -> dict[str, Any]:
    doc = run_json(capsys, "dora", "ingest", "--config", str(c.config), "--source", c.source, "--json", str(path))
    total: dict[str, Any] = doc["total"]
    return total


def dead_letters(conn: pymysql.Connection, c: Ctx) -> list[tuple[Any, ...]]:
    return query(conn, "SELECT input_name, field, reason, source_event_id, payload, payload_sha256 "
                       "FROM dora_rejected_events WHERE source = %s AND reprocessed_at IS NULL ORDER BY id", c.source)


def test_ids_differing_in_case_accents_or_invisible_characters_stay_apart(
    ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    # Old: the case- and accent-insensitive unique key made `deploy-a` overwrite `Deploy-A` (inserted 1,
    # updated 1), every re-ingest reported "updated 2", and change_ids ["abc", "ABC"] hit a duplicate key.
    ids = ["Deploy-A", "deploy-a", "café", "cafe", "zw\u200bid", "zwid"]
    items = [dep(ctx, sid, status="success" if n % 2 == 0 else "failed") for n, sid in enumerate(ids)]
    items.append(dep(ctx, "links", change_ids=["abc", "ABC", "ab\u200bc"]))
    path = write_jsonl(ctx.tmp / "ids.jsonl", items)
    first = ingest_json(capsys, ctx, path)
    assert (first["inserted"], first["updated"], first["rejected"]) == (7, 0, 0)
    rows = query(dora_db, "SELECT source_event_id, status FROM deployments WHERE source = %s", ctx.source)
    expected = {sid: ("success" if n % 2 == 0 else "failed") for n, sid in enumerate(ids)}
    assert dict(rows) == {**expected, "links": "success"}
    refs = query(dora_db, "SELECT dc.change_ref FROM deployment_changes dc JOIN deployments d ON d.id = "
                          "dc.deployment_id WHERE d.source = %s", ctx.source)
    assert sorted(r[0] for r in refs) == sorted(["abc", "ABC", "ab\u200bc"])
    again = ingest_json(capsys, ctx, path)
    assert (again["inserted"], again["updated"], again["unchanged"], again["changed"]) == (0, 0, 7, False)
    # The database answers lookups exactly, as Python compares.
    assert query(dora_db, "SELECT COUNT(*) FROM deployments WHERE source = %s AND source_event_id = 'deploy-a'",
                 ctx.source)[0][0] == 1


def test_out_of_range_timestamps_are_dead_letters(
    ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    # Old: "0001-01-01T00:30:00+01:00" raised OverflowError (exit 1, nothing of the file stored, no dead
    # letter); Go's zero time was stored and broke every later compute.
    items = [
        dep(ctx, "good-1"),
        dep(ctx, "year-1", deployed_at="0001-01-01T00:30:00+01:00"),
        inc(ctx, "go-zero", started_at="0001-01-01T00:00:00Z"),
        inc(ctx, "year-9999", started_at="2026-01-01T00:00:00Z", resolved_at="9999-12-31T23:59:59-05:00"),
        dep(ctx, "good-2"),
    ]
    total = ingest_json(capsys, ctx, write_jsonl(ctx.tmp / "times.jsonl", items))
    assert (total["read"], total["inserted"], total["rejected"], total["dead_letters_new"]) == (5, 2, 3, 3)
    letters = dead_letters(dora_db, ctx)
    assert [(r[1], r[3]) for r in letters] == [("deployed_at", "year-1"), ("started_at", "go-zero"),
                                                ("resolved_at", "year-9999")]
    assert all("storable range" in r[2] for r in letters)


def test_compute_skips_a_bad_stored_row_and_quality_reports_it(
    ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    # Old: one incident at Go's zero time, stored before ingest checked the range, made every `dora
    # compute` fail with OverflowError until someone deleted the row by hand.
    ingest_json(capsys, ctx, write_jsonl(ctx.tmp / "ok.jsonl", [dep(ctx, "d1"), inc(ctx, "i1", deployment_id="d1",
                                                                                    resolved_at=at(ctx.day, -3, 12))]))
    query(dora_db, "INSERT INTO incidents (source, source_event_id, service, environment, severity, title, "
                   "started_at) VALUES (%s, 'go-zero', %s, 'production', 'unknown', '', '0001-01-01 00:00:00')",
          ctx.source, ctx.service)
    dora_db.commit()
    doc = run_json(capsys, "dora", "compute", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(),
                   "--source", ctx.source, "--window", "30", "--json")
    assert (doc["events"], doc["skipped_rows"], doc["inserted"]) == (2, 1, 2)
    rc, out, err = run(capsys, "quality", "run", "--config", str(ctx.config), "--as-of", ctx.day.isoformat(),
                       "--source", ctx.source, "--no-record")
    assert rc == 0, err
    assert "FAIL  schema.stored_rows: 1 of 3 failed" in out
    assert "go-zero" in out and "started_at" in out


def test_deeply_nested_line_is_a_dead_letter(
    ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    # Old: RecursionError, the whole file lost.
    deep = "[" * 60_000 + "]" * 60_000
    total = ingest_json(capsys, ctx, write_jsonl(ctx.tmp / "deep.jsonl", [dep(ctx, "a"), deep, dep(ctx, "b")]))
    assert (total["inserted"], total["rejected"], total["dead_letters_new"]) == (2, 1, 1)
    (letter,) = dead_letters(dora_db, ctx)
    assert letter[1] == "(event)" and "nested too deeply" in letter[2]


def test_oversized_line_is_a_bounded_dead_letter_and_every_bad_line_gets_one(
    ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    # Old: the 20 MB line's dead letter exceeded max_allowed_packet (1153): exit 3 "unreachable" after the
    # good lines were committed, and no dead letter for any bad line of the file.
    big = json.dumps(inc(ctx, "big", title="x" * 20_000_000))
    naive = json.dumps(dep(ctx, "naive", deployed_at=at(ctx.day, -3, 10)[:-1]))
    path = write_jsonl(ctx.tmp / "big.jsonl", [dep(ctx, "a"), big, naive, dep(ctx, "b")])
    total = ingest_json(capsys, ctx, path)
    assert (total["read"], total["inserted"], total["rejected"], total["dead_letters_new"]) == (4, 2, 2, 2)
    (too_long, bad_time) = dead_letters(dora_db, ctx)
    assert too_long[0].endswith(":2") and too_long[1] == "(event)"
    assert f"longer than the maximum of {MAX_LINE_BYTES} bytes" in too_long[2]
    assert len(too_long[4].encode("utf-8")) <= RAW_PREFIX_BYTES
    assert big.startswith(too_long[4])
    assert too_long[5] == hashlib.sha256(big.encode("utf-8")).hexdigest()
    assert (bad_time[1], bad_time[3]) == ("deployed_at", "naive")
    again = ingest_json(capsys, ctx, path)
    assert (again["unchanged"], again["dead_letters_new"], again["changed"]) == (2, 0, False)


def test_bom_surrogates_nan_and_broken_utf8(
    ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    # Old: the BOM made line 1 a rejected line; a lone surrogate in an id reached the dead-letter insert
    # and failed to encode (exit 1); one line of invalid UTF-8 refused the whole file (exit 2).
    lines = [
        "\ufeff" + json.dumps(dep(ctx, "bom")),
        json.dumps(inc(ctx, "title-surrogate", title="disk \udcff full")),
        json.dumps(inc(ctx, "id-\udcff")),
        json.dumps(dep(ctx, "nan")).replace('"status"', '"version": NaN, "status"'),
        json.dumps(dep(ctx, "inf")).replace('"status"', '"version": Infinity, "status"'),
        json.dumps({**dep(ctx, "odd-key"), "\udcff": 1}),
    ]
    path = ctx.tmp / "mixed.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8") + b"\n" + b'{"type": "\xff\xfe"}\n'
                     + json.dumps(dep(ctx, "after")).encode() + b"\n")
    total = ingest_json(capsys, ctx, path)
    assert (total["read"], total["inserted"], total["rejected"]) == (8, 3, 5)
    stored = dict(query(dora_db, "SELECT source_event_id, title FROM incidents WHERE source = %s", ctx.source))
    assert stored == {"title-surrogate": "disk \ufffd full"}
    letters = dead_letters(dora_db, ctx)
    assert [r[0].rsplit(":", 1)[1] for r in letters] == ["3", "4", "5", "6", "7"]
    assert "lone surrogate" in letters[0][2] and letters[0][3] == "id-\ufffd"
    assert "NaN" in letters[1][2] and "Infinity" in letters[2][2]
    assert "not valid UTF-8" in letters[4][2]


def test_an_event_the_server_refuses_is_isolated_into_a_dead_letter(ctx: Ctx, dora_db: pymysql.Connection) -> None:
    # A value that passed validation but that the table refuses (here: a title longer than the column,
    # built around the validation) must not take the rest of its batch down or stop the file.
    good = Incident.model_validate(inc(ctx, "fine", source=ctx.source))
    bad = good.model_copy(update={"source_event_id": "too-long-title", "title": "t" * 300})
    db = Database(ctx.dora_cnf, base_delay=0.01)
    try:
        counts = ingest(db, ParseResult(accepted=[bad, good], lines=[1, 2]), "refused.jsonl",
                        default_source=ctx.source)
    finally:
        db.close()
    assert (counts.inserted, counts.rejected, counts.dead_letters_new) == (1, 1, 1)
    (letter,) = dead_letters(dora_db, ctx)
    assert (letter[0], letter[1], letter[3]) == ("refused.jsonl:1", "(store)", "too-long-title")
    assert "1406" in letter[2]


def test_refusals_are_not_reported_as_unreachable(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    # Old: a statement over max_allowed_packet (1153) or a missing privilege (1142) ended with exit 3,
    # "MySQL unreachable", which sends people to the network instead of the data or the grants.
    db = Database(ctx.dora_cnf, base_delay=0.01)
    try:
        with pytest.raises(StoreRefused, match=r"\(1153\).*max_allowed_packet"):
            db.run(lambda cur: cur.execute("SELECT %s", ("x" * 17_000_000,)), "a huge statement")
        assert db.run(lambda cur: cur.execute("SELECT 1") and cur.fetchone()[0]) == 1  # reconnects
        assert db.retries == 0
    finally:
        db.close()
    wrong_user = ctx.tmp / "quality-as-dora.toml"
    wrong_user.write_text(f'[mysql]\ndefaults_file = "{ctx.quality_cnf}"\n', encoding="utf-8")
    rc, _, err = run(capsys, "dora", "ingest", "--config", str(wrong_user), "--source", ctx.source,
                     str(write_jsonl(ctx.tmp / "one.jsonl", [dep(ctx, "x")])))
    assert rc == StoreRefused.exit_code == 4
    assert "refused" in err and "(1142)" in err and "unreachable" not in err


def test_retry_with_a_fixed_file_is_judged_like_an_input_line(
    ctx: Ctx, dora_db: pymysql.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    # Old: a --fixed file that was not UTF-8 ended the command with "unexpected error" (exit 1).
    path = ctx.tmp / "one.jsonl"
    path.write_bytes(b'{"type": "\xff"}\n')
    assert ingest_json(capsys, ctx, path)["dead_letters_new"] == 1
    (letter_id,) = query(dora_db, "SELECT id FROM dora_rejected_events WHERE source = %s", ctx.source)[0]
    fixed = ctx.tmp / "fixed.json"
    fixed.write_bytes(b"\xef\xbb\xbf" + json.dumps(dep(ctx, "x")).replace('"type"', '"\xff"').encode("latin-1"))
    res = run_json(capsys, "dora", "dead-letters", "retry", "--config", str(ctx.config), "--id", str(letter_id),
                   "--fixed", str(fixed), "--json")
    assert (res["ingested"], res["still_rejected"]) == (0, 1)
    assert "not valid UTF-8" in query(dora_db, "SELECT reason FROM dora_rejected_events WHERE id = %s",
                                      letter_id)[0][0]
    fixed.write_bytes(b"\xef\xbb\xbf" + json.dumps({**dep(ctx, "x"), "source": ctx.source}).encode() + b"\r\n")
    res = run_json(capsys, "dora", "dead-letters", "retry", "--config", str(ctx.config), "--id", str(letter_id),
                   "--fixed", str(fixed), "--json")
    assert (res["ingested"], res["still_rejected"]) == (1, 0)
