"""DORA metric functions against hand-computed expectations on small data sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iact_agents.dora.metrics import (
    ALL_SERVICES,
    MetricsConfig,
    MetricsInputError,
    Window,
    attribute_incidents,
    compute_metrics,
    percentile,
)
from iact_agents.dora.models import Change, Deployment, Incident

# A 7-day window: Sunday 2026-11-01 00:00 UTC up to (not including) Sunday 2026-11-08.
WEEK = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC))


def k(event_id: str, source: str = "manual") -> tuple[str, str]:
    return (source, event_id)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def dep(sid: str, when: datetime, *, service: str = "checkout", status: str = "success",
        env: str = "production", changes: tuple[str, ...] = ()) -> Deployment:
    return Deployment.model_validate(
        {"source_event_id": sid, "service": service, "environment": env, "deployed_at": when,
         "status": status, "change_ids": changes}
    )


def change(sid: str, committed: datetime, **over: Any) -> Change:
    data: dict[str, Any] = {"source_event_id": sid, "service": "checkout", "commit_sha": "abcdef0",
                            "committed_at": committed}
    data.update(over)
    return Change.model_validate(data)


def inc(sid: str, start: datetime, resolved: datetime | None = None, *, service: str = "checkout",
        deployment_id: str | None = None) -> Incident:
    return Incident.model_validate(
        {"source_event_id": sid, "service": service, "started_at": start, "resolved_at": resolved,
         "deployment_id": deployment_id, "severity": "high"}
    )


# --- window and percentile --------------------------------------------------------------------------

def test_window_validation_and_length() -> None:
    assert Window.ending(at(8), 30).days == 30.0
    assert Window.ending(at(8), 30).start == at(9, month=10)
    with pytest.raises(MetricsInputError):
        Window(at(2), at(1))
    with pytest.raises(MetricsInputError):
        Window(datetime(2026, 11, 1), datetime(2026, 11, 2))
    with pytest.raises(MetricsInputError):
        Window.ending(at(8), 0)
    assert at(1) in WEEK
    assert at(8) not in WEEK  # half-open


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert percentile([5.0], 0.9) == 5.0
    with pytest.raises(MetricsInputError):
        percentile([], 0.5)


# --- deployment frequency ---------------------------------------------------------------------------

def test_deployment_days_not_deployment_counts() -> None:
    deployments = [
        dep("d1", at(1, 9)), dep("d2", at(1, 15)), dep("d3", at(1, 23, 30)),  # three on one day
        dep("d4", at(3, 10), status="rolled_back"),  # ran in production: counts
        dep("d5", at(4, 10), status="failed"),  # never ran: only counted as failed
        dep("d6", at(5, 10), env="staging"),  # not production
        dep("d7", at(31, 10, month=10)),  # before the window
        dep("d8", at(8)),  # the end is excluded
    ]
    df = compute_metrics(deployments, [], [], WEEK).services["checkout"].deployment_frequency
    assert (df.deployments, df.deployment_days, df.failed_deployments) == (4, 2, 1)
    assert df.deployments_per_day == pytest.approx(4 / 7)
    assert df.deployment_days_per_week == pytest.approx(2.0)
    assert df.reason is None


def test_deployment_days_follow_the_calendar_timezone() -> None:
    # 23:30 and 00:30 UTC are two UTC days but one day in UTC-5 (18:30 and 19:30 on the 2nd).
    deployments = [dep("a", at(2, 23, 30)), dep("b", at(3, 0, 30))]
    utc = compute_metrics(deployments, [], [], WEEK).overall.deployment_frequency
    east = compute_metrics(
        deployments, [], [], WEEK, MetricsConfig(calendar_tz=timezone(timedelta(hours=-5)))
    ).overall.deployment_frequency
    assert utc.deployment_days == 2
    assert east.deployment_days == 1
    assert east.deployments == 2


def test_offsets_in_input_decide_window_membership_by_instant() -> None:
    # 2026-11-08T01:00+02:00 is 2026-11-07T23:00Z: inside the window although its local date is the 8th.
    late = Deployment.model_validate(
        {"source_event_id": "x", "service": "checkout", "environment": "production",
         "deployed_at": "2026-11-08T01:00:00+02:00", "status": "success"}
    )
    early = Deployment.model_validate(
        {"source_event_id": "y", "service": "checkout", "environment": "production",
         "deployed_at": "2026-11-01T00:30:00+01:00", "status": "success"}  # 2026-10-31T23:30Z: outside
    )
    df = compute_metrics([late, early], [], [], WEEK).overall.deployment_frequency
    assert df.deployments == 1


# --- lead time --------------------------------------------------------------------------------------

def test_lead_time_median_p90_with_squash_merge_retry_and_bad_data() -> None:
    deployments = [
        dep("d1", at(1, 9), changes=("c1",)),
        dep("d2", at(1, 15)),
        dep("d3-failed", at(2, 11), status="failed", changes=("c3",)),
        dep("d3-retry", at(2, 13), changes=("c3",)),
        dep("d4", at(3, 0), changes=("c4",)),
        dep("d6", at(4, 9), changes=("c6",)),
        dep("d7", at(31, 10, month=10), changes=("c7",)),
    ]
    changes = [
        change("c1", at(1, 8)),  # 1 h
        # Squash merge: the squash commit is 1 h old, the original work began 48 h before the deployment.
        change("c2", at(1, 14), first_commit_at=at(30, 15, month=10), deployment_id="d2"),  # 48 h
        change("c3", at(2, 10)),  # failed at 11:00, retried at 13:00: 3 h, not 1 h
        change("c4", at(1, 0), authored_at=at(31, 12, month=10)),  # author time: 60 h
        change("c5", at(6, 10)),  # never deployed
        change("c6", at(4, 10)),  # "deployed" an hour before it was committed: invalid
        change("c7", at(30, 10, month=10)),  # deployed before the window
    ]
    lt = compute_metrics(deployments, changes, [], WEEK).services["checkout"].lead_time
    # Lead times 1, 3, 48, 60 h: median (3 + 48) / 2; p90 at rank 2.7 = 48 + 0.7 * 12.
    assert lt.changes == 4
    assert lt.median_hours == pytest.approx(25.5)
    assert lt.p90_hours == pytest.approx(56.4)
    assert (lt.invalid, lt.undeployed) == (1, 1)


def test_change_linked_only_to_a_staging_deployment_is_not_deployed() -> None:
    lt = compute_metrics(
        [dep("s", at(2), env="staging", changes=("c",))], [change("c", at(1))], [], WEEK
    ).overall.lead_time
    assert lt.median_hours is None
    assert lt.undeployed == 1
    assert lt.reason == "no changes reached production in the window"


# --- attribution, change failure rate, recovery -----------------------------------------------------

def test_attribution_window_edges() -> None:
    deployments = [dep("old", at(1, 0)), dep("new", at(2, 0)), dep("after", at(3, 1))]
    incidents = [
        inc("same-instant", at(2, 0)),
        inc("exactly-24h", at(3, 0)),
        inc("next-day", at(4, 0) + timedelta(seconds=1)),
        inc("other-service", at(2, 1), service="search"),
    ]
    att = attribute_incidents(deployments, incidents)
    assert att[k("same-instant")].deployment_id == "new"
    assert att[k("exactly-24h")].deployment_id == "new"  # "after" is later than the start: not a cause
    assert att[k("exactly-24h")].method == "window"
    # 2026-11-04T00:00:01: "after" (3rd 01:00) is 23 h earlier -> attributed to it, not to "new".
    assert att[k("next-day")].deployment_id == "after"
    assert att[k("other-service")].deployment_id is None
    assert att[k("other-service")].method == "unlinked"
    assert "within 24 h" in att[k("other-service")].reason


def test_incident_just_outside_window_is_unlinked_not_guessed() -> None:
    att = attribute_incidents([dep("d", at(1, 0))], [inc("i", at(2, 0) + timedelta(seconds=1))])
    assert att[k("i")].deployment_id is None
    assert att[k("i")].method == "unlinked"


def _failure_data() -> tuple[list[Deployment], list[Incident]]:
    deployments = [
        dep("d1", at(1, 10)),
        dep("d2", at(2, 10)),
        dep("d3", at(3, 10), status="rolled_back"),
        dep("d4", at(4, 10)),
        dep("d5", at(6, 10)),
    ]
    incidents = [
        inc("i1", at(1, 12), at(1, 13)),  # window -> d1, 1 h
        inc("i2", at(1, 13), at(1, 15)),  # window -> d1, 2 h
        inc("i3", at(1, 11), at(1, 17), deployment_id="d1"),  # explicit -> d1, 6 h
        inc("i7", at(1, 20), None, deployment_id="d1"),  # unresolved
        inc("i8", at(1, 21), at(1, 20), deployment_id="d1"),  # resolved before it started
        inc("i4", at(5, 11), at(5, 12)),  # 25 h after d4: unlinked with the default 24 h window
        inc("i5", at(6, 12), at(6, 13), deployment_id="nope"),  # explicit but unknown: unlinked
        inc("i6", at(6, 12), at(6, 14), service="search"),  # no deployment of search at all
    ]
    return deployments, incidents


def test_change_failure_rate_counts_a_deployment_with_many_incidents_once() -> None:
    deployments, incidents = _failure_data()
    report = compute_metrics(deployments, [], incidents, WEEK)
    cfr = report.services["checkout"].change_failure_rate
    # d1 (five incidents) and d3 (rolled back) out of d1..d5.
    assert (cfr.deployments, cfr.failed, cfr.with_incidents, cfr.rolled_back_without_incident) == (5, 2, 1, 1)
    assert cfr.rate == pytest.approx(0.4)
    assert report.attributions[k("i5")].reason == "deployment_id 'nope' names no known deployment"


def test_change_failure_rate_configuration() -> None:
    deployments, incidents = _failure_data()
    wide_cfg = MetricsConfig(attribution_window=timedelta(hours=48))
    wide = compute_metrics(deployments, [], incidents, WEEK, wide_cfg)
    assert wide.services["checkout"].change_failure_rate.rate == pytest.approx(0.6)  # i4 now -> d4
    strict = compute_metrics(deployments, [], incidents, WEEK, MetricsConfig(rollbacks_are_failures=False))
    assert strict.services["checkout"].change_failure_rate.rate == pytest.approx(0.2)


def test_recovery_time_and_unlinked_incidents_are_reported() -> None:
    deployments, incidents = _failure_data()
    report = compute_metrics(deployments, [], incidents, WEEK)
    rt = report.services["checkout"].recovery_time
    assert (rt.incidents, rt.unresolved, rt.invalid, rt.unlinked) == (3, 1, 1, 2)
    assert rt.median_hours == pytest.approx(2.0)  # of 1, 2, 6 h
    assert {a.incident_id for a in report.services["checkout"].unlinked_incidents} == {"i4", "i5"}
    search = report.services["search"]
    assert search.recovery_time.median_hours is None
    assert search.recovery_time.unlinked == 1
    assert search.deployment_frequency.deployments_per_day is None
    assert report.overall.service == ALL_SERVICES
    assert {a.incident_id for a in report.overall.unlinked_incidents} == {"i4", "i5", "i6"}
    assert report.overall.recovery_time.median_hours == pytest.approx(2.0)


def test_incident_explicitly_linked_across_services_counts_for_the_deployment() -> None:
    report = compute_metrics(
        [dep("d", at(2), service="checkout")],
        [],
        [inc("i", at(2, 5), at(2, 7), service="search", deployment_id="d")],
        WEEK,
    )
    assert report.services["checkout"].change_failure_rate.rate == 1.0
    assert report.services["checkout"].recovery_time.median_hours == pytest.approx(2.0)
    assert report.services["search"].recovery_time.incidents == 0


def test_repeated_events_count_once() -> None:
    d = dep("d1", at(2, 10), changes=("c1",))
    c = change("c1", at(2, 8))
    i = inc("i1", at(2, 11), at(2, 12))
    report = compute_metrics([d, d, d], [c, c], [i, i], WEEK)
    o = report.overall
    assert o.deployment_frequency.deployments == 1
    assert o.lead_time.changes == 1
    assert o.change_failure_rate.rate == 1.0
    assert o.recovery_time.incidents == 1


# --- empty windows and a lone deployment ------------------------------------------------------------

def test_empty_window_gives_none_with_reasons_not_zero() -> None:
    deployments, incidents = _failure_data()
    empty = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 31, tzinfo=UTC))
    o = compute_metrics(deployments, [change("c", at(1))], incidents, empty).overall
    assert o.deployment_frequency.deployments_per_day is None
    assert o.deployment_frequency.deployment_days_per_week is None
    assert o.deployment_frequency.reason == "no production deployments in the window"
    assert o.lead_time.median_hours is None
    assert o.lead_time.p90_hours is None
    assert o.change_failure_rate.rate is None
    assert o.change_failure_rate.reason == "no production deployments in the window"
    assert o.recovery_time.median_hours is None
    assert o.recovery_time.reason is not None
    assert o.unlinked_incidents == ()


def test_no_data_at_all() -> None:
    report = compute_metrics([], [], [], WEEK)
    assert report.services == {}
    assert report.overall.change_failure_rate.rate is None


def test_service_with_one_deployment() -> None:
    report = compute_metrics(
        [dep("only", at(2, 10), service="billing", changes=("c",))],
        [change("c", at(1, 22), service="billing")],
        [],
        WEEK,
    )
    b = report.services["billing"]
    assert b.deployment_frequency.deployments_per_day == pytest.approx(1 / 7)
    assert b.deployment_frequency.deployment_days_per_week == pytest.approx(1.0)
    assert (b.lead_time.median_hours, b.lead_time.p90_hours) == (pytest.approx(12.0), pytest.approx(12.0))
    assert b.change_failure_rate.rate == 0.0  # measured: one deployment, no failure
    assert b.recovery_time.median_hours is None
    assert b.recovery_time.reason == "no incidents attributed to a deployment started in the window"


def test_config_rejects_nonsense() -> None:
    with pytest.raises(MetricsInputError):
        MetricsConfig(attribution_window=timedelta(hours=-1))
    with pytest.raises(MetricsInputError):
        MetricsConfig(production_environments=frozenset())


# --- sources and environments -----------------------------------------------------------------------

def test_links_prefer_the_same_source_and_refuse_ambiguity() -> None:
    gh = dep("d1", at(2, 10), service="checkout").model_copy(update={"source": "github"})
    jk = dep("d1", at(3, 10), service="search").model_copy(update={"source": "jenkins"})
    from_jenkins = inc("i-jk", at(3, 12), at(3, 13), service="search", deployment_id="d1").model_copy(
        update={"source": "jenkins"}
    )
    from_pager = inc("i-pd", at(2, 12), at(2, 13), deployment_id="d1").model_copy(update={"source": "pager"})
    report = compute_metrics([gh, jk], [], [from_jenkins, from_pager], WEEK)
    assert report.attributions[k("i-jk", "jenkins")].deployment == ("jenkins", "d1")
    unl = report.attributions[k("i-pd", "pager")]
    assert unl.deployment is None
    assert "ambiguous" in unl.reason
    assert "github, jenkins" in unl.reason
    # Both deployments are distinct events (same id, different sources): two deployments overall.
    assert report.overall.deployment_frequency.deployments == 2
    assert report.services["search"].change_failure_rate.rate == 1.0
    assert report.services["checkout"].change_failure_rate.rate == 0.0


def test_change_links_resolve_within_their_source() -> None:
    d = dep("d1", at(2, 10), changes=("c1",)).model_copy(update={"source": "github"})
    c_gh = change("c1", at(2, 8)).model_copy(update={"source": "github"})  # 2 h
    c_other = change("c1", at(1, 0)).model_copy(update={"source": "gitlab"})  # same id elsewhere
    lt = compute_metrics([d], [c_gh, c_other], [], WEEK).overall.lead_time
    assert lt.changes == 1
    assert lt.median_hours == pytest.approx(2.0)
    assert lt.undeployed == 1  # the gitlab change: no deployment of its own source lists it


def test_non_production_incidents_are_counted_but_in_no_metric() -> None:
    staging = inc("s", at(2, 11), at(2, 12)).model_copy(update={"environment": "staging"})
    report = compute_metrics([dep("d", at(2, 10))], [], [staging], WEEK)
    assert report.non_production_incidents == 1
    assert report.overall.change_failure_rate.rate == 0.0
    assert report.attributions == {}


# --- drill-down members (the web dashboard lists them; their totals must equal the numbers) -----------

_SERVICES = ("checkout", "search")


@st.composite
def _events(draw: st.DrawFn) -> tuple[list[Deployment], list[Change], list[Incident]]:
    hours = st.integers(min_value=-24 * 3, max_value=24 * 10)
    base = at(1)
    deps = [
        dep(f"d{i}", base + timedelta(hours=draw(hours)), service=draw(st.sampled_from(_SERVICES)),
            status=draw(st.sampled_from(("success", "failed", "rolled_back"))),
            env=draw(st.sampled_from(("production", "staging"))),
            changes=tuple(draw(st.lists(st.sampled_from([f"c{j}" for j in range(6)]), max_size=3, unique=True))))
        for i in range(draw(st.integers(0, 8)))
    ]
    chs = [
        change(f"c{j}", base + timedelta(hours=draw(hours)), service=draw(st.sampled_from(_SERVICES)),
               deployment_id=draw(st.none() | st.sampled_from([f"d{i}" for i in range(8)])))
        for j in range(draw(st.integers(0, 6)))
    ]
    incs = []
    for n in range(draw(st.integers(0, 6))):
        start = base + timedelta(hours=draw(hours))
        resolved = draw(st.none() | st.integers(-5, 48).map(lambda h, s=start: s + timedelta(hours=h)))
        incs.append(inc(f"i{n}", start, resolved, service=draw(st.sampled_from(_SERVICES)),
                        deployment_id=draw(st.none() | st.sampled_from([f"d{i}" for i in range(10)]))))
    return deps, chs, incs


@settings(max_examples=150, deadline=None)
@given(_events(), st.booleans())
def test_members_are_the_events_behind_every_count(
    events: tuple[list[Deployment], list[Change], list[Incident]], rollbacks: bool
) -> None:
    deps, chs, incs = events
    report = compute_metrics(deps, chs, incs, WEEK, MetricsConfig(rollbacks_are_failures=rollbacks))
    by_key = {("manual", d.source_event_id): d for d in deps}
    for m in (report.overall, *report.services.values()):
        mb, df, lt, cfr, rt = (m.members, m.deployment_frequency, m.lead_time, m.change_failure_rate,
                               m.recovery_time)
        assert len(mb.deployments) == df.deployments == cfr.deployments
        assert len(mb.failed_attempts) == df.failed_deployments
        assert len(mb.failed_with_incidents) == cfr.with_incidents
        assert len(mb.rolled_back_without_incident) == cfr.rolled_back_without_incident
        assert len(mb.failed_with_incidents) + len(mb.rolled_back_without_incident) == cfr.failed
        assert len(mb.changes) == lt.changes == len(mb.lead_hours)
        if mb.lead_hours:
            assert percentile(mb.lead_hours, 0.5) == lt.median_hours
        assert len(mb.invalid_changes) == lt.invalid and len(mb.undeployed_changes) == lt.undeployed
        assert len(mb.incidents) == rt.incidents == len(mb.recovery_hours)
        assert len(mb.unresolved_incidents) == rt.unresolved
        if mb.recovery_hours:
            assert percentile(mb.recovery_hours, 0.5) == rt.median_hours
        assert len(mb.unlinked_incidents) == rt.unlinked and len(mb.invalid_incidents) == rt.invalid
        assert len(set(mb.deployments)) == len(mb.deployments)
        for key in mb.deployments:
            assert by_key[key].deployed_at in WEEK and by_key[key].environment == "production"
            assert m.service in (ALL_SERVICES, by_key[key].service)
    for name in ("deployments", "changes", "incidents", "failed_with_incidents"):
        overall = getattr(report.overall.members, name)
        per_service = [k for s in report.services.values() for k in getattr(s.members, name)]
        assert sorted(overall) == sorted(per_service)
