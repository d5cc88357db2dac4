"""The remediation page on real MariaDB: decisions written by the remediation agent's own store
(``iact_agents.remediate.store``, the health account) are read through the web's account (iact_app: SELECT on
``remediations``), newest first, filtered by host and outcome, escaped, exported; a host without decisions
shows the empty state; a bad filter is a 400 naming it."""

from __future__ import annotations

import csv
import html
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from iact_agents.remediate.decide import Outcome
from iact_agents.remediate.store import RemediationStore

pytestmark = pytest.mark.integration

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


def _record(store: RemediationStore, host: str, at: datetime, outcome: Outcome, summary: str, *,
            guardrail: str | None = None, evidence: dict[str, Any] | None = None) -> int:
    return store.record(
        decided_at=at, host=host, action="restart_collector", target="iact-collector.service",
        trigger_key="collector:active", outcome=outcome, guardrail=guardrail, dry_run=outcome is Outcome.DRY_RUN,
        summary=summary, command="sudo -n systemctl restart iact-collector.service",
        duration_ms=None if outcome is Outcome.SKIPPED else 1200,
        evidence=evidence or {"triggers": [{"component": "collector", "check": "active", "status": "critical",
                                            "summary": "iact-collector is failed"}],
                              "attempts": {"last_hour": 0, "last_day": 0}, "budget": {"per_hour": 1, "per_day": 3}})


@pytest.fixture
def decisions(health_db: pymysql.Connection, host: str) -> dict[str, int]:
    store = RemediationStore(health_db)
    now = datetime.now(UTC)
    ids = {
        "acted": _record(store, host, now - timedelta(minutes=30), Outcome.ACTED,
                         "iact-collector.service restarted: active after 3 s"),
        "dry_run": _record(store, host, now - timedelta(minutes=20), Outcome.DRY_RUN,
                           "dry run: would run sudo -n systemctl restart iact-collector.service"),
        "skipped": _record(store, host, now - timedelta(minutes=10), Outcome.SKIPPED, f"budget spent {HOSTILE}",
                           guardrail="budget",
                           evidence={"triggers": [{"component": "collector", "check": "active", "status": "critical",
                                                   "summary": HOSTILE}],
                                     "attempts": {"last_hour": 1, "last_day": 3},
                                     "budget": {"per_hour": 1, "per_day": 3}}),
    }
    health_db.commit()
    return ids


def _exported(browser: Client, query: str) -> list[dict[str, str]]:
    response = browser.get(f"/ops/remediations/?{query}&export=remediations")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_decisions_newest_first_escaped_and_exported(decisions: dict[str, int], host: str, browser: Client) -> None:
    response = browser.get(f"/ops/remediations/?host={host}")
    assert response.status_code == 200
    page = response.content.decode()
    # Escaped: the markup of the reason and of the evidence is text, never elements.
    assert HOSTILE not in page and "<script>alert" not in page
    assert html.escape(f"budget spent {HOSTILE}") in page
    assert html.escape(f"fired by collector:active critical ({HOSTILE})") in page
    # Newest first: the skip, then the dry run, then the restart; the skip names its guardrail.
    order = [page.index(s) for s in ("skipped (budget)", "dry run: would run", "restarted: active after 3 s")]
    assert order == sorted(order)
    assert "attempts 1 in the last hour, 3 in the day (budget 1/h, 3/day)" in page
    assert 'class="k-status status-skipped-budget"' in page

    rows = _exported(browser, f"host={host}")
    assert [r["outcome"] for r in rows] == ["skipped (budget)", "dry_run", "acted"]
    assert rows[0]["summary"] == f"budget spent {HOSTILE}"  # the CSV holds the text itself
    assert [r["dry_run"] for r in rows] == ["false", "true", "false"]
    assert rows[2]["duration_ms"] == "1200" and rows[0]["duration_ms"] == ""


def test_filter_by_outcome_and_the_empty_state(decisions: dict[str, int], host: str, browser: Client) -> None:
    assert [r["outcome"] for r in _exported(browser, f"host={host}&outcome=acted")] == ["acted"]
    assert _exported(browser, f"host={host}&outcome=failed") == []
    empty = browser.get(f"/ops/remediations/?host={host}&outcome=failed").content.decode()
    assert "No remediation decision recorded" in empty
    nobody = browser.get(f"/ops/remediations/?host={host}-none").content.decode()
    assert "No remediation decision recorded" in nobody and "restart_collector" not in nobody


@pytest.mark.parametrize(("query", "parameter"), [("outcome=exploded", "outcome"), ("host=a%20b", "host"),
                                                  ("page=0", "page"), ("export=nothing", "export")])
def test_a_bad_filter_is_a_400_naming_it(defaults_dir: Any, browser: Client, query: str, parameter: str) -> None:
    response = browser.get(f"/ops/remediations/?{query}")
    assert response.status_code == 400
    assert f'data-parameter="{parameter}"' in response.content.decode()


def test_the_web_account_reads_decisions_and_cannot_change_them(defaults_dir: Any) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM remediations WHERE id < 0")
        assert cur.fetchone() == (0,)
    for sql in ("DELETE FROM remediations WHERE id < 0", "UPDATE remediations SET summary = 'x' WHERE id < 0"):
        with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
        assert caught.value.args[0] == 1142, (sql, caught.value.args)
