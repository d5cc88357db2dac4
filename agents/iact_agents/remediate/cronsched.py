"""The schedule of an installed ``/etc/cron.d`` entry and its next run, as cron (Debian's Vixie cron) reads it.

Total: any text gives a :class:`CronEntry` or a reason (a string), never an exception. Only what roles/cron writes
and cron accepts is understood: five time fields (numbers, names of months and weekdays, ``*``, ranges, steps,
lists) or the ``@hourly``..``@yearly`` macros; ``@reboot`` has no next run and is refused. Day of month and day of
week: when both are restricted (neither starts with ``*``), a day matching either runs the job (cron(5)).

No library of the agents' runtime computes cron times (the repository's only cron parser is a validity check in
tests/repo/test_cron_entries.py), hence this one.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
SEARCH_DAYS = 366 * 8 + 2
"""How far :func:`next_run` looks (a 29 February that is a given weekday comes back within 28 years; cron entries
that rare are not ours: none is found and the caller is told)."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday (7 is folded into 0)."""
    day_star: bool
    weekday_star: bool
    text: str

    def day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.day_star or self.weekday_star:
            return dom and dow
        return dom or dow


def _value(word: str, index: int) -> int | str:
    names = MONTHS if index == 3 else DAYS if index == 4 else ()
    low = word.lower()
    if low in names:
        return names.index(low) + (1 if index == 3 else 0)
    if not word.isascii() or not word.isdigit() or len(word) > 2:
        return f"{word!r} is not a number"
    lo, hi = RANGES[index]
    value = int(word)
    return value if lo <= value <= hi else f"{value} is outside {lo}-{hi}"


def _field(text: str, index: int) -> frozenset[int] | str:
    lo, hi = RANGES[index]
    found: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit() or not 0 < int(step_text) <= hi:
                return f"step {step_text!r} is invalid"
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        else:
            bounds = base.split("-")
            if len(bounds) > 2 or not all(bounds):
                return f"{part!r} is invalid"
            values = [_value(b, index) for b in bounds]
            for v in values:
                if isinstance(v, str):
                    return v
            first = int(values[0])
            last = int(values[-1]) if len(values) == 2 else (hi if slash else first)
            if last < first:
                return f"{part!r} is a backward range"
        found.update(range(first, last + 1, step))
    if index == 4 and 7 in found:
        found = (found - {7}) | {0}
    return frozenset(found)


def parse_schedule(text: str) -> Schedule | str:
    """The five time fields (or a macro) as a :class:`Schedule`, or why cron would not run them."""
    words = text.split()
    if len(words) == 1 and words[0].lower() in MACROS:
        words = MACROS[words[0].lower()].split()
    if len(words) != 5:
        return f"schedule {text[:60]!r}: needs five time fields"
    fields = []
    for i, word in enumerate(words):
        parsed = _field(word, i)
        if isinstance(parsed, str):
            return f"schedule {text[:60]!r}: time field {i + 1}: {parsed[:80]}"
        fields.append(parsed)
    return Schedule(fields[0], fields[1], fields[2], fields[3], fields[4], words[2].startswith("*"),
                    words[4].startswith("*"), " ".join(words))


def next_run(schedule: Schedule, after: datetime, tz: tzinfo) -> datetime | None:
    """The first minute strictly after ``after`` at which cron starts the job, in ``tz`` (the host's zone, where
    cron reads the fields); None when none comes within :data:`SEARCH_DAYS`."""
    local = after.astimezone(tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = local.replace(hour=0, minute=0)
    for offset in range(SEARCH_DAYS):
        current = day + timedelta(days=offset)
        if not schedule.day_matches(current):
            continue
        for hour in sorted(schedule.hours):
            for minute in sorted(schedule.minutes):
                candidate = current.replace(hour=hour, minute=minute)
                if candidate >= local:
                    return candidate
    return None


@dataclass(frozen=True)
class CronEntry:
    schedule: Schedule
    user: str
    argv: list[str]
    """The command, split as the shell would (``sh -c`` of cron)."""


def find_entry(text: str, job: str) -> CronEntry | str:
    """The line of a roles/cron file that runs ``iact-agent job run --name <job>``: its schedule, user and argv."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        words = stripped.split(None, 1)
        if "=" in words[0] and not words[0].startswith("@"):
            continue  # SHELL=, PATH=, MAILTO=
        n_time = 1 if words[0].startswith("@") else 5
        parts = stripped.split(None, n_time + 1)
        if len(parts) < n_time + 2:
            continue
        try:
            argv = shlex.split(parts[-1])
        except ValueError:
            continue
        if argv[:5] != ["iact-agent", "job", "run", "--name", job]:
            continue
        schedule = parse_schedule(" ".join(parts[:n_time]))
        if isinstance(schedule, str):
            return f"job {job}: {schedule}"
        return CronEntry(schedule, parts[n_time], argv)
    return f"no line runs job {job} (iact-agent job run --name {job})"
