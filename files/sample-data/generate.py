#!/usr/bin/env python3
"""Regenerate dora-events.jsonl: a deterministic 90-day DORA data set (see README.md).

    python3 files/sample-data/generate.py > files/sample-data/dora-events.jsonl
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, date, datetime, time, timedelta

LAST_DAY = date(2026, 11, 26)
DAYS = 90
SOURCE = "sample"
# service: (deployment probability per working day, incident probability per deployment, squash share)
SERVICES = {
    "checkout": (0.85, 0.08, 0.6),
    "payments": (0.35, 0.15, 0.3),
    "search": (0.55, 0.05, 0.8),
    "catalog": (0.15, 0.25, 0.0),
}


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:12]  # noqa: S324 - ids, not security


def main() -> None:
    rnd = random.Random(7)  # noqa: S311 - sample data
    out: list[dict[str, object]] = []
    first = LAST_DAY - timedelta(days=DAYS - 1)
    for service, (p_deploy, p_incident, p_squash) in SERVICES.items():
        n = 0
        pending: list[str] = []
        for i in range(DAYS):
            day = first + timedelta(days=i)
            # commits every working day, deployed with the next deployment
            if day.weekday() < 5:
                for _ in range(rnd.randint(1, 3)):
                    committed = datetime.combine(day, time(rnd.randint(8, 17), rnd.randint(0, 59)), tzinfo=UTC)
                    cid = sha(service, committed, rnd.random())
                    change: dict[str, object] = {
                        "type": "change", "source": SOURCE, "source_event_id": cid, "service": service,
                        "commit_sha": cid, "committed_at": iso(committed),
                    }
                    if rnd.random() < p_squash:  # squash merge: the original commits began days earlier
                        change["first_commit_at"] = iso(committed - timedelta(hours=rnd.randint(6, 120)))
                    out.append(change)
                    pending.append(cid)
            if day.weekday() >= 5 or rnd.random() > p_deploy or not pending:
                continue
            n += 1
            deployed = datetime.combine(day, time(18, rnd.randint(0, 59)), tzinfo=UTC)
            did = f"{service}-deploy-{n}"
            shipped, pending = pending, []
            if rnd.random() < 0.06:  # a failed attempt, then the retry ships the same changes
                out.append({"type": "deployment", "source": SOURCE, "source_event_id": did + "-attempt",
                            "service": service, "environment": "production", "status": "failed",
                            "deployed_at": iso(deployed - timedelta(minutes=40)), "version": f"{n}.0.0-rc",
                            "change_ids": shipped})
            status = "rolled_back" if rnd.random() < 0.03 else "success"
            out.append({"type": "deployment", "source": SOURCE, "source_event_id": did, "service": service,
                        "environment": "production", "status": status, "deployed_at": iso(deployed),
                        "started_at": iso(deployed - timedelta(minutes=12)), "version": f"{n}.0.0",
                        "change_ids": shipped})
            if rnd.random() < p_incident:
                started = deployed + timedelta(hours=rnd.uniform(0.5, 20))
                inc: dict[str, object] = {
                    "type": "incident", "source": SOURCE, "source_event_id": f"INC-{service}-{n}",
                    "service": service, "started_at": iso(started), "severity": rnd.choice(["high", "medium"]),
                    "resolved_at": iso(started + timedelta(hours=rnd.uniform(0.3, 30))),
                    "title": f"{service} errors after {n}.0.0",
                }
                if rnd.random() < 0.5:
                    inc["deployment_id"] = did  # explicitly linked; otherwise by the 24 h window
                out.append(inc)
    # An incident no deployment explains (reported as unlinked), and one still open.
    out.append({"type": "incident", "source": SOURCE, "source_event_id": "INC-network-1", "service": "payments",
                "started_at": iso(datetime.combine(LAST_DAY - timedelta(days=40), time(3, 10), tzinfo=UTC)),
                "resolved_at": iso(datetime.combine(LAST_DAY - timedelta(days=40), time(5, 0), tzinfo=UTC)),
                "severity": "critical", "title": "upstream network outage"})
    out.append({"type": "incident", "source": SOURCE, "source_event_id": "INC-search-open", "service": "search",
                "started_at": iso(datetime.combine(LAST_DAY - timedelta(days=12), time(9, 0), tzinfo=UTC)),
                "severity": "low", "title": "slow suggestions (still open)"})
    # A service with a single deployment, and a staging deployment (in no metric).
    out.append({"type": "deployment", "source": SOURCE, "source_event_id": "billing-deploy-1", "service": "billing",
                "environment": "production", "status": "success", "version": "1.0.0",
                "deployed_at": iso(datetime.combine(LAST_DAY - timedelta(days=20), time(11, 0), tzinfo=UTC))})
    out.append({"type": "deployment", "source": SOURCE, "source_event_id": "checkout-staging-1",
                "service": "checkout", "environment": "staging", "status": "success", "version": "99.0.0",
                "deployed_at": iso(datetime.combine(LAST_DAY - timedelta(days=3), time(10, 0), tzinfo=UTC))})
    # A resolution recorded before the start: accepted, flagged by `iact-agent quality run`.
    out.append({"type": "incident", "source": SOURCE, "source_event_id": "INC-catalog-typo", "service": "catalog",
                "started_at": iso(datetime.combine(LAST_DAY - timedelta(days=8), time(14, 0), tzinfo=UTC)),
                "resolved_at": iso(datetime.combine(LAST_DAY - timedelta(days=8), time(13, 0), tzinfo=UTC)),
                "severity": "medium", "title": "resolution typed before the start"})
    for event in out:
        print(json.dumps(event, sort_keys=True))
    # A re-sent event (counted once as a duplicate) and deliberately bad events (dead letters).
    print(json.dumps(out[0], sort_keys=True))
    print(json.dumps({"type": "deployment", "source": SOURCE, "source_event_id": "bad-naive-time",
                      "service": "checkout", "environment": "production", "status": "success",
                      "deployed_at": "2026-11-20T10:00:00"}))
    print(json.dumps({"type": "deployment", "source": SOURCE, "source_event_id": "bad-status",
                      "service": "payments", "environment": "production", "status": "failure",
                      "deployed_at": "2026-11-21T10:00:00Z"}))
    print(json.dumps({"type": "incident", "source": SOURCE, "source_event_id": "bad-no-service",
                      "started_at": "2026-11-22T10:00:00Z"}))
    print('{"type": "change", "source": "sample", "source_event_id": "truncated-line"')


if __name__ == "__main__":
    main()
