"""The DORA pages and API on real MariaDB: filters, drill-down totals equal the numbers, CSV, v1 and v2.

The test stores its own small event set (its own source and services, days in 1995) with the DORA agent's
ingest, and compares the web layer's numbers with the agent's own computation over the same events."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql
import pytest
from django.test import Client
from iact_agents.dora.metrics import MetricsConfig, Window, compute_metrics
from iact_agents.dora.models import parse_events
from iact_agents.dora.store import Database, ingest
from iact_web.dora.service import SET_KIND
from webtest_helpers import Token

pytestmark = pytest.mark.integration

LAST = date(1995, 6, 30)


def _events(source: str, svc: str, other: str) -> list[dict[str, Any]]:
    def at(day: int, hour: int = 12) -> str:
        return datetime(1995, 6, day, hour, tzinfo=UTC).isoformat()

    out: list[dict[str, Any]] = []
    for i in range(1, 9):
        out.append({"type": "change", "source": source, "source_event_id": f"c{i}", "service": svc,
                    "commit_sha": f"{i:07x}", "committed_at": at(2 * i, 8)})
        out.append({"type": "deployment", "source": source, "source_event_id": f"d{i}", "service": svc,
                    "environment": "production", "deployed_at": at(2 * i + 1),
                    "status": "rolled_back" if i == 3 else "success", "change_ids": [f"c{i}"]})
    out += [
        {"type": "deployment", "source": source, "source_event_id": "d-failed", "service": svc,
         "environment": "production", "deployed_at": at(20), "status": "failed"},
        {"type": "deployment", "source": source, "source_event_id": "o1", "service": other,
         "environment": "production", "deployed_at": at(21), "status": "success"},
        {"type": "incident", "source": source, "source_event_id": "i1", "service": svc, "started_at": at(5, 14),
         "resolved_at": at(5, 20), "deployment_id": "d2"},
        {"type": "incident", "source": source, "source_event_id": "i2", "service": svc, "started_at": at(11, 13),
         "resolved_at": at(12, 1)},
        {"type": "incident", "source": source, "source_event_id": "i3", "service": svc, "started_at": at(15, 13)},
        {"type": "incident", "source": source, "source_event_id": "i4", "service": other, "started_at": at(25, 9),
         "resolved_at": at(25, 10)},
    ]
    return out


@pytest.fixture
def dataset(dora_db: pymysql.Connection, defaults_dir: Any, tag: str) -> Iterator[dict[str, Any]]:
    source, svc, other = f"it-{tag}", f"svc-{tag}", f"oth-{tag}"
    events = _events(source, svc, other)
    parsed = parse_events(json.dumps(e) for e in events)
    assert not parsed.rejected, parsed.rejected
    db = Database(defaults_dir / "mysql-dora.cnf")
    try:
        ingest(db, parsed, "web-integration-test")
        yield {"source": source, "svc": svc, "other": other, "parsed": parsed}
    finally:
        with dora_db.cursor() as cur:
            for table in ("deployments", "changes", "incidents"):
                cur.execute(f"DELETE FROM {table} WHERE source = %s", (source,))
        db.close()


def _agent_numbers(parsed: Any, service: str, first: date, last: date) -> Any:
    window = Window(datetime.combine(first, datetime.min.time(), UTC),
                    datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC))
    deps = [e for e in parsed.accepted if e.type == "deployment"]
    chs = [e for e in parsed.accepted if e.type == "change"]
    incs = [e for e in parsed.accepted if e.type == "incident"]
    return compute_metrics(deps, chs, incs, window, MetricsConfig()).services[service]


def test_api_numbers_are_the_agents_and_every_drilldown_adds_up(dataset: dict[str, Any], api_token: Token) -> None:
    http = api_token.http()
    svc = dataset["svc"]
    query = f"service={svc}&from=1995-06-01&to={LAST}"
    v1 = http.get(f"/api/v1/dora/metrics?{query}")
    assert v1.status_code == 200, v1.content
    body = v1.json()
    agent = _agent_numbers(dataset["parsed"], svc, date(1995, 6, 1), LAST)
    assert body["deployments"] == agent.deployment_frequency.deployments == 8
    assert body["changes"] == agent.lead_time.changes == 7  # c3 shipped only by the rolled-back d3
    assert body["failed_changes"] == agent.change_failure_rate.failed
    assert body["incidents"] == agent.recovery_time.incidents
    assert body["lead_time_median_hours"] == pytest.approx(agent.lead_time.median_hours)
    assert body["benchmark_year"] == 2024 and body["window"]["days"] == 30

    v2 = http.get(f"/api/v2/dora/metrics?{query}").json()
    for key, count in (("deployment_frequency", "deployments"), ("lead_time", "changes"),
                       ("change_failure_rate", "failed_changes"), ("failed_deployment_recovery_time", "incidents")):
        metric = v2[key]
        assert metric["count"] == body[count], key
        listed = http.get(metric["events"] + "&page_size=500").json()
        assert listed["count"] == metric["count"], (key, metric["events"])
        assert len(listed["results"]) == metric["count"]
    # The documented difference: v2 gives seconds and deployment days per week with the level.
    assert v2["lead_time"]["value"] == pytest.approx(body["lead_time_median_hours"] * 3600, rel=1e-6)
    assert v2["lead_time"]["unit"] == "seconds" and "lead_time_median_hours" not in v2
    assert v2["deployment_frequency"]["value"] == pytest.approx(body["deployment_days_per_week"])


def test_every_set_lists_exactly_its_number(dataset: dict[str, Any], api_token: Token) -> None:
    http = api_token.http()
    head = http.get(f"/api/v1/dora/metrics?service={dataset['svc']}&from=1995-06-01&to={LAST}").json()
    agent = _agent_numbers(dataset["parsed"], dataset["svc"], date(1995, 6, 1), LAST)
    expected = {
        "deployments": head["deployments"], "failed_attempts": agent.deployment_frequency.failed_deployments,
        "failed_deployments": head["failed_changes"], "changes": head["changes"],
        "invalid_changes": agent.lead_time.invalid, "undeployed_changes": agent.lead_time.undeployed,
        "incidents": head["incidents"], "unresolved_incidents": agent.recovery_time.unresolved,
        "unlinked_incidents": agent.recovery_time.unlinked, "invalid_incidents": agent.recovery_time.invalid,
    }
    assert set(expected) == set(SET_KIND)
    plural = {"deployment": "deployments", "change": "changes", "incident": "incidents"}
    for name, number in expected.items():
        url = f"/api/v1/{plural[SET_KIND[name]]}?set={name}&service={dataset['svc']}&from=1995-06-01&to={LAST}"
        got = http.get(url + "&page_size=500").json()
        assert got["count"] == number, name
    assert expected["failed_attempts"] == 1 and expected["unresolved_incidents"] == 1


def _total(html: str) -> int:
    found = re.search(r'data-total="(\d+)"', html)
    assert found, "the events page shows its total"
    return int(found.group(1))


def test_pages_filters_drilldown_and_csv(dataset: dict[str, Any], browser: Client) -> None:
    svc, other = dataset["svc"], dataset["other"]
    page = browser.get(f"/dora/?service={svc}&from=1995-06-01&to={LAST}")
    assert page.status_code == 200
    html = page.content.decode()
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)', html))
    links = dict(re.findall(r'href="(/dora/events/\?set=(\w+)[^"]*)"', html)[::-1])
    assert counts["deployments"] == "8"
    for set_name, number in counts.items():
        href = next(h for h in re.findall(r'href="(/dora/events/\?[^"]+)"', html) if f"set={set_name}&" in h)
        drill = browser.get(href.replace("&amp;", "&"))
        assert drill.status_code == 200
        assert _total(drill.content.decode()) == int(number), set_name
        exported = browser.get(href.replace("&amp;", "&") + f"&export={set_name}")
        assert exported["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
        assert len(rows) == int(number), set_name
    assert links  # the numbers are links
    # The service filter: the other service's deployment is not in this service's numbers.
    other_page = browser.get(f"/dora/?service={other}&from=1995-06-01&to={LAST}").content.decode()
    assert dict(re.findall(r'data-count="(\w+)">(\d+)', other_page))["deployments"] == "1"
    # The window filter: the 7 days June 3-9 hold d1..d4 (deployed on the 3rd, 5th, 7th and 9th).
    narrow = browser.get(f"/dora/?service={svc}&window=7&to=1995-06-09").content.decode()
    assert dict(re.findall(r'data-count="(\w+)">(\d+)', narrow))["deployments"] == "4"
    # The per-service table exports as CSV from the same definition.
    table = browser.get(f"/dora/?service={svc}&from=1995-06-01&to={LAST}&export=services")
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    assert [r["service"] for r in rows] == [svc] and rows[0]["deployments"] == "8"


def test_bad_filters_are_400_naming_the_parameter(dataset: dict[str, Any], api_token: Token) -> None:
    http = api_token.http()
    for query, parameter in (("service=no-such-service-zz", "service"), ("from=1995-06-30&to=1995-06-01", "to"),
                             ("window=0", "window"), ("from=1995-02-30", "from"), ("window=7&from=1995-06-01",
                                                                                   "window")):
        response = http.get(f"/api/v1/dora/metrics?{query}")
        assert response.status_code == 400, query
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["parameter"] == parameter, query
