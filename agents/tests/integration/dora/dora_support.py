"""Helpers of the DORA integration tests (imported by name: test folders are not packages)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest
from iact_agents.cli import main


def at(day: date, offset_days: int, hour: int) -> str:
    return datetime.combine(day + timedelta(days=offset_days), time(hour)).isoformat() + "Z"


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in items) + "\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``iact-agent ARGV``: exit code, stdout, stderr."""
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    return json.loads(out)


def query(conn: pymysql.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())
