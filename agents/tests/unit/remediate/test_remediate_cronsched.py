"""The cron schedule parser and its next run: cron's own examples, the entries roles/cron writes, and hostile text
(hypothesis: never raises; a next run is always after the given time and matches every field)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from iact_agents.remediate.cronsched import Schedule, find_entry, next_run, parse_schedule

ROOT = Path(__file__).resolve().parents[4]
CRON_JOBS = yaml.safe_load((ROOT / "roles" / "cron" / "defaults" / "main.yml").read_text())["cron_jobs"]
AT = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)  # a Monday


def sched(text: str) -> Schedule:
    parsed = parse_schedule(text)
    assert isinstance(parsed, Schedule), parsed
    return parsed


@pytest.mark.parametrize(("text", "after", "expect"), [
    ("0 2 * * *", AT, datetime(2026, 12, 1, 2, 0, tzinfo=UTC)),
    ("0 2 * * *", datetime(2026, 12, 1, 1, 59, 59, tzinfo=UTC), datetime(2026, 12, 1, 2, 0, tzinfo=UTC)),
    ("0 2 * * *", datetime(2026, 12, 1, 2, 0, tzinfo=UTC), datetime(2026, 12, 2, 2, 0, tzinfo=UTC)),  # strictly after
    ("*/15 * * * *", AT, datetime(2026, 11, 30, 12, 45, tzinfo=UTC)),
    ("5-59/15 * * * *", AT, datetime(2026, 11, 30, 12, 35, tzinfo=UTC)),
    ("40 4 * * *", AT, datetime(2026, 12, 1, 4, 40, tzinfo=UTC)),
    ("17 3 * * 0", AT, datetime(2026, 12, 6, 3, 17, tzinfo=UTC)),  # Sunday
    ("17 3 * * 7", AT, datetime(2026, 12, 6, 3, 17, tzinfo=UTC)),  # 7 is Sunday too
    ("17 3 * * sun", AT, datetime(2026, 12, 6, 3, 17, tzinfo=UTC)),
    ("0 0 1 jan *", AT, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ("0 0 29 2 *", AT, datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
    # both day fields restricted: either matches (the 1st of December, a Tuesday, comes first)
    ("0 6 1 * 5", AT, datetime(2026, 12, 1, 6, 0, tzinfo=UTC)),
    ("0 6 15 * tue", AT, datetime(2026, 12, 1, 6, 0, tzinfo=UTC)),
    ("@daily", AT, datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
    ("@hourly", AT, datetime(2026, 11, 30, 13, 0, tzinfo=UTC)),
    ("0,30 8-10 * * mon-fri", AT, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
])
def test_next_run(text: str, after: datetime, expect: datetime) -> None:
    assert next_run(sched(text), after, UTC) == expect


def test_next_run_is_in_the_hosts_zone() -> None:
    cet = timezone(timedelta(hours=1))
    # 02:00 on a host at UTC+1 is 01:00 UTC
    assert next_run(sched("0 2 * * *"), AT, cet) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def test_a_day_that_never_comes_has_no_next_run() -> None:
    assert next_run(sched("0 0 31 2 *"), AT, UTC) is None


@pytest.mark.parametrize(("text", "why"), [
    ("", "needs five time fields"),
    ("0 2 * *", "needs five time fields"),
    ("@reboot", "needs five time fields"),
    ("60 2 * * *", "time field 1: 60 is outside 0-59"),
    ("0 24 * * *", "time field 2: 24 is outside 0-23"),
    ("0 2 0 * *", "time field 3: 0 is outside 1-31"),
    ("0 2 * 13 *", "time field 4: 13 is outside 1-12"),
    ("0 2 * * 8", "time field 5: 8 is outside 0-7"),
    ("*/0 * * * *", "step '0' is invalid"),
    ("5-1 * * * *", "backward range"),
    ("1-2-3 * * * *", "is invalid"),
    ("x * * * *", "is not a number"),
    ("\u0663 * * * *", "is not a number"),  # an Arabic-Indic three is a digit to Python, not to cron
])
def test_bad_schedules_say_why(text: str, why: str) -> None:
    parsed = parse_schedule(text)
    assert isinstance(parsed, str) and why in parsed


def test_finds_the_backup_entry_roles_cron_writes() -> None:
    job = next(j for j in CRON_JOBS["iact-backup"]["jobs"] if j["name"] == "backup")
    text = ("# iact-backup\nSHELL=/bin/sh\nPATH=/usr/local/bin:/usr/bin\n"
            f"{job['schedule']} {job['user']} iact-agent job run --name backup --timeout {job['timeout']}"
            " --mysql-defaults /etc/iact/backup-job.cnf -- /usr/local/sbin/iact-backup run\n")
    entry = find_entry(text, "backup")
    assert not isinstance(entry, str)
    assert entry.user == "root" and entry.schedule.text == job["schedule"]
    assert entry.argv[-2:] == ["/usr/local/sbin/iact-backup", "run"]
    assert find_entry(text, "backup_binlogs") == "no line runs job backup_binlogs (iact-agent job run --name" \
                                                 " backup_binlogs)"
    broken = find_entry(text.replace(job["schedule"], "0 25 * * *"), "backup")
    assert isinstance(broken, str) and "outside 0-23" in broken


@given(st.text(max_size=80))
def test_parse_schedule_is_total(text: str) -> None:
    parsed = parse_schedule(text)
    assert isinstance(parsed, str | Schedule)


@given(st.text(max_size=300), st.sampled_from(["backup", "backup_retention"]))
def test_find_entry_is_total(text: str, job: str) -> None:
    assert find_entry(text, job) is not None


field = st.one_of(
    st.just("*"),
    st.builds(lambda a, s: f"*/{s}", st.none(), st.integers(1, 20)),
    st.builds(lambda a, b: f"{min(a, b)}-{max(a, b)}", st.integers(0, 7), st.integers(0, 7)),
    st.lists(st.integers(0, 7), min_size=1, max_size=3).map(lambda v: ",".join(map(str, v))),
)


@given(st.tuples(st.integers(0, 59), st.integers(0, 23)), field, field,
       st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2190, 1, 1), timezones=st.just(UTC)))
def test_next_run_matches_every_field_and_comes_after(time: tuple[int, int], dom: str, dow: str,
                                                      after: datetime) -> None:
    # day of month from the small generated values, shifted into 1..31
    dom = dom.replace("0", "10") if dom != "*" and not dom.startswith("*/") else dom
    parsed = parse_schedule(f"{time[0]} {time[1]} {dom} * {dow}")
    if isinstance(parsed, str):
        return
    found = next_run(parsed, after, UTC)
    if found is None:
        return
    assert found > after and found - after <= timedelta(days=366 * 8 + 2)
    assert (found.minute, found.hour, found.second) == (time[0], time[1], 0)
    assert parsed.day_matches(found)
    # nothing earlier: the minute before the previous candidate day does not match
    earlier = found - timedelta(days=1)
    assert earlier <= after or not parsed.day_matches(earlier)
