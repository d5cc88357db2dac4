"""The checks: small functions that measure one thing and return :class:`CheckResult` values.

Commands are run through a ``Runner`` (argv, timeout) so that tests can feed captured output; the
default one runs the real program. A check never raises for what it measures: a program that is
missing or times out is an ``unknown`` result with the reason in its summary.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import storable
from .config import CassandraSettings, CollectorSettings, DiskSettings, JobAge, ServiceSettings, TimeSyncSettings
from .models import CheckResult, Status
from .parsers import (
    UnitState,
    json_count,
    json_seconds,
    parse_chrony_tracking,
    parse_describecluster,
    parse_nodetool_status,
    parse_systemctl_show,
)

log = logging.getLogger(__name__)

_ERROR_LINE = re.compile(r"^(nodetool|error|fatal)\b", re.IGNORECASE)


@dataclass(frozen=True)
class CommandOutput:
    returncode: int
    stdout: str
    stderr: str

    @property
    def first_error_line(self) -> str:
        """The line that says what went wrong: one naming the program or an error, else the first one.

        nodetool prints Java logging noise on stderr before its own ``nodetool: Failed to connect ...``.
        """
        lines = [line.strip() for text in (self.stderr, self.stdout) for line in text.splitlines() if line.strip()]
        for line in lines:
            if _ERROR_LINE.match(line):
                return line[:300]
        return lines[0][:300] if lines else f"exit code {self.returncode}"


class CommandFailed(Exception):
    """The program could not be started or did not finish in time (not: it exited non-zero)."""


Runner = Callable[[Sequence[str], float], CommandOutput]


def run_program(argv: Sequence[str], timeout: float) -> CommandOutput:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise CommandFailed(f"{argv[0]}: program not found") from None
    except PermissionError:
        raise CommandFailed(f"{argv[0]}: not executable by this user") from None
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"{' '.join(argv)}: no answer within {timeout:.0f} s") from None
    return CommandOutput(proc.returncode, proc.stdout, proc.stderr)


class Stopwatch:
    ms: int | None = None


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    start = time.monotonic()
    try:
        yield watch
    finally:
        watch.ms = int((time.monotonic() - start) * 1000)


# --- Cassandra -----------------------------------------------------------------------------------


def judge_nodes(text: str, expected_nodes: int, host: str, latency_ms: int | None = None) -> CheckResult:
    """``cassandra:nodes_up`` from the ``nodetool status`` output of one node."""
    nodes = parse_nodetool_status(text)
    detail: dict[str, Any] = {"nodes": {n.address: n.code for n in nodes}, "expected": expected_nodes}
    if not nodes:
        return CheckResult("cassandra", "nodes_up", host, Status.UNKNOWN,
                           "nodetool status listed no node (output not understood)", latency_ms, detail)
    down = [n.address for n in nodes if not n.up]
    moving = [f"{n.address} {n.code}" for n in nodes if n.up and n.state != "N"]
    problems: list[str] = []
    status = Status.OK
    if down:
        status = Status.CRITICAL
        problems.append("down: " + ", ".join(down))
    if len(nodes) < expected_nodes:
        status = Status.CRITICAL
        problems.append(f"{len(nodes)} of {expected_nodes} expected nodes in the ring")
    if moving:
        status = Status.CRITICAL if status is Status.CRITICAL else Status.WARNING
        problems.append("not normal: " + ", ".join(moving))
    summary = f"{len(nodes)} nodes UN" if status is Status.OK else "; ".join(problems)
    return CheckResult("cassandra", "nodes_up", host, status, summary, latency_ms, detail)


def judge_schema(text: str, host: str, latency_ms: int | None = None) -> CheckResult:
    """``cassandra:schema_agreement`` from ``nodetool describecluster``."""
    desc = parse_describecluster(text)
    detail: dict[str, Any] = {"cluster": desc.name, "schema_versions": desc.schema_versions}
    if not desc.schema_versions:
        return CheckResult("cassandra", "schema_agreement", host, Status.UNKNOWN,
                           "nodetool describecluster printed no schema versions", latency_ms, detail)
    if desc.agreement:
        return CheckResult("cassandra", "schema_agreement", host, Status.OK,
                           f"one schema version on {len(desc.schema_versions[desc.versions[0]])} nodes",
                           latency_ms, detail)
    problems = []
    if len(desc.versions) > 1:
        problems.append(f"{len(desc.versions)} schema versions")
    if desc.unreachable:
        problems.append("unreachable: " + ", ".join(desc.unreachable))
    return CheckResult("cassandra", "schema_agreement", host, Status.CRITICAL, "; ".join(problems), latency_ms,
                       detail)


def cassandra_checks(cfg: CassandraSettings, host: str, run: Runner = run_program) -> list[CheckResult]:
    results = []
    for sub, name in (("status", "nodes_up"), ("describecluster", "schema_agreement")):
        try:
            with stopwatch() as watch:
                out = run([*cfg.nodetool, sub], cfg.command_timeout_s)
        except CommandFailed as exc:
            results.append(CheckResult("cassandra", name, host, Status.CRITICAL, f"nodetool {sub}: {exc}"))
            continue
        if out.returncode != 0:
            results.append(CheckResult("cassandra", name, host, Status.CRITICAL,
                                       f"nodetool {sub} failed: {out.first_error_line}", watch.ms))
        elif sub == "status":
            results.append(judge_nodes(out.stdout, cfg.expected_nodes, host, watch.ms))
        else:
            results.append(judge_schema(out.stdout, host, watch.ms))
    return results


# --- Disk ----------------------------------------------------------------------------------------


def used_percent(st: os.statvfs_result) -> float:
    """Used space as ``df`` shows it: used / (used + available to unprivileged users)."""
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    return 100.0 * used / (used + avail) if used + avail else 0.0


def disk_checks(cfg: DiskSettings, host: str) -> list[CheckResult]:
    results = []
    for p in cfg.paths:
        warn, crit = cfg.thresholds(p)
        name = str(p.path)
        try:
            st = os.statvfs(p.path)
        except OSError as exc:
            results.append(CheckResult("disk", name, host, Status.UNKNOWN, f"{p.path}: {exc.strerror}"))
            continue
        pct = used_percent(st)
        free = st.f_bavail * st.f_frsize
        detail = {"used_percent": round(pct, 2), "free_bytes": free, "warn_percent": warn, "crit_percent": crit}
        if pct >= crit:
            status = Status.CRITICAL
        elif pct >= warn:
            status = Status.WARNING
        else:
            status = Status.OK
        limit = {Status.CRITICAL: f" (critical at {crit:g}%)", Status.WARNING: f" (warning at {warn:g}%)"}
        summary = f"{pct:.1f}% used, {free / 2**30:.1f} GiB free{limit.get(status, '')}"
        results.append(CheckResult("disk", name, host, status, summary, None, detail))
    return results


# --- systemd services ----------------------------------------------------------------------------
#
# One ``systemctl show`` per unit gives its state and ``NRestarts``, the automatic restarts systemd made
# under ``Restart=``. A crash loop is mostly "activating (auto-restart)", but a unit whose process lives
# a while before it dies can be "active" at the moment of every check: a restart count that grew since the
# previous check is the same symptom. The previous check's count and the number of checks in a row at which
# the unit was not steadily active are kept in the agent's local state (``services`` section, one entry per
# unit: ``{"unsteady_checks": int, "n_restarts": int}``).

_SHOW_PROPERTIES = "ActiveState,SubState,LoadState,NRestarts"
_TRANSITIONAL = frozenset({"activating", "reloading", "deactivating", "maintenance", "refreshing"})
_DOWN = frozenset({"inactive", "failed"})


def judge_unit(unit: str, seen: UnitState, previous: Any, host: str, *,
               crash_loop: bool) -> tuple[CheckResult, dict[str, int]]:
    """The ``service:<unit>`` result and the memory to keep for the next check.

    ``previous`` is the unit's entry of the local state (anything: what is not understood counts as no memory).
    """
    prev = previous if isinstance(previous, Mapping) else {}
    prev_unsteady = json_count(prev.get("unsteady_checks")) or 0
    prev_restarts = json_count(prev.get("n_restarts"))
    restarted = 0
    if seen.n_restarts is not None and prev_restarts is not None and seen.n_restarts > prev_restarts:
        restarted = seen.n_restarts - prev_restarts  # a lower count was reset by a manual start: not a restart
    unsteady = seen.active != "active" or restarted > 0
    in_a_row = prev_unsteady + 1 if unsteady else 0
    memory = {"unsteady_checks": in_a_row}
    if seen.n_restarts is not None:
        memory["n_restarts"] = seen.n_restarts
    state = f"{seen.active} ({seen.sub})" if seen.sub else seen.active
    notes = []
    if seen.load == "not-found":
        notes.append("no such unit")
    if restarted:
        notes.append(f"restarted {restarted} time{'s' if restarted > 1 else ''} by systemd since the previous check")
    if seen.active in _DOWN:
        status = Status.CRITICAL
    elif seen.active in _TRANSITIONAL or (seen.active == "active" and restarted):
        status = Status.WARNING
        if crash_loop and in_a_row >= 2:
            status = Status.CRITICAL
            notes.append(f"not steadily active at {in_a_row} checks in a row")
    elif seen.active == "active":
        status = Status.OK
    else:
        status = Status.UNKNOWN
        notes.append("state not understood")
    summary = state + (": " + "; ".join(notes) if notes else "")
    detail = {"state": seen.active, "sub_state": seen.sub, "n_restarts": seen.n_restarts,
              "unsteady_checks": in_a_row, "crash_loop_watch": crash_loop}
    return CheckResult("service", unit, host, status, summary, None, detail), memory


def service_checks(cfg: ServiceSettings, host: str, run: Runner = run_program,
                   memory: dict[str, Any] | None = None) -> list[CheckResult]:
    """One result per unit; ``memory`` (the ``services`` section of the local state) is updated in place:
    units no longer listed are forgotten, a unit systemctl could not answer for keeps its old entry."""
    memory = {} if memory is None else memory
    for gone in set(memory) - set(cfg.units):
        del memory[gone]
    results = []
    for unit in cfg.units:
        try:
            out = run([cfg.systemctl, "show", f"--property={_SHOW_PROPERTIES}", unit], 15.0)
        except CommandFailed as exc:
            results.append(CheckResult("service", unit, host, Status.UNKNOWN, str(exc)))
            continue
        seen = parse_systemctl_show(out.stdout) if out.returncode == 0 else None
        if seen is None:  # e.g. "System has not been booted with systemd" on stderr
            results.append(CheckResult("service", unit, host, Status.UNKNOWN,
                                       f"systemctl show: {out.first_error_line}"))
            continue
        result, memory[unit] = judge_unit(unit, seen, memory.get(unit), host,
                                          crash_loop=cfg.watches_crash_loops(unit))
        results.append(result)
    return results


# --- Collector -----------------------------------------------------------------------------------
#
# Contract with the collector (agents/iact_agents/collector/position.py), read as plain JSON so that this
# check does not depend on the collector's code: ``state_file`` is rewritten atomically after every batch
# Cassandra acknowledged, so its mtime is the time of the last commit, and it holds
#   {"version": 1, "sources": {<key>: {"kind": "file", "path": str, "dev": int, "ino": int,
#                                      "offset": int, "last_ts_us": int, ...}
#                                     | {"kind": "journal", "cursor": str|null, "last_ts_us": int}},
#    "quarantine": {"count": int,          # records quarantined since the state folder was created
#                   "last_at": float,      # epoch seconds of the newest
#                   "last_source": str, "last_reason": str,
#                   "file": str}}          # path of the local quarantine file
# ``quarantine`` is optional: missing means nothing was ever quarantined. It is read totally: any other
# shape is a result that says so, never an exception.
# (test_collector_contract_with_the_real_offset_store writes it with the collector's own OffsetStore.)
# The collector keeps no spool: what has not been shipped is still in the source files, so the "spool" is
# the backlog, the bytes of each file source past its committed offset.

_COLLECTOR_CHECKS = ("lag", "backlog", "quarantine")


def collector_checks(cfg: CollectorSettings, host: str, now: float | None = None) -> list[CheckResult]:
    now = time.time() if now is None else now
    path = cfg.state_file
    try:
        st = path.stat()
        doc = storable.loads(path.read_bytes())
    except FileNotFoundError:
        msg = f"{path} does not exist: the collector has not committed a position yet"
        return [CheckResult("collector", name, host, Status.UNKNOWN, msg) for name in _COLLECTOR_CHECKS]
    except (OSError, ValueError) as exc:
        msg = f"{path}: cannot read the collector state: {exc}"
        return [CheckResult("collector", name, host, Status.UNKNOWN, msg) for name in _COLLECTOR_CHECKS]
    sources = doc.get("sources", {}) if isinstance(doc, dict) else {}
    if not isinstance(sources, dict):
        sources = {}
    commit_age = max(0.0, now - st.st_mtime)
    backlog_total = 0
    per_source: dict[str, dict[str, Any]] = {}
    for key, raw in sorted(sources.items()):
        if not isinstance(raw, Mapping):
            continue
        info: dict[str, Any] = {"kind": raw.get("kind")}
        last_ts = raw.get("last_ts_us")
        if isinstance(last_ts, int) and last_ts > 0:
            info["newest_acked_age_s"] = round(max(0.0, now - last_ts / 1e6), 1)
        if raw.get("kind") == "file":
            info["backlog_bytes"] = backlog = _file_backlog(raw)
            backlog_total += backlog
        per_source[str(key)] = info
    waiting = backlog_total > 0
    lag_s = commit_age if waiting else 0.0
    lag_detail = {"lag_s": round(lag_s, 1), "last_commit_age_s": round(commit_age, 1), "sources": per_source}
    lag_status = _level(lag_s, cfg.lag_warn_s, cfg.lag_crit_s)
    lag_summary = (f"{backlog_total} bytes waiting, last commit {commit_age:.0f} s ago" if waiting
                   else f"caught up ({len(per_source)} sources, last commit {commit_age:.0f} s ago)")
    backlog_status = _level(backlog_total, cfg.backlog_warn_bytes, cfg.backlog_crit_bytes)
    results = [
        CheckResult("collector", "lag", host, lag_status, lag_summary, None, lag_detail),
        CheckResult("collector", "backlog", host, backlog_status, f"{backlog_total} bytes not yet shipped", None,
                    {"backlog_bytes": backlog_total}),
        judge_quarantine(doc.get("quarantine") if isinstance(doc, dict) else None, cfg.quarantine_window_h, host,
                         now),
    ]
    if cfg.source_max_age_s:
        results.append(_source_ages(cfg.source_max_age_s, per_source, host))
    return results


_QUARANTINE_TEXT_MAX = 200


def _quarantine_text(value: Any) -> str | None:
    """A text of the quarantine entry, made safe for a one-line summary (None when it is not a string)."""
    if not isinstance(value, str):
        return None
    text = " ".join(storable.clean_text(value).split())  # no newlines or control whitespace in a summary
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return text[:_QUARANTINE_TEXT_MAX] + ("…" if len(text) > _QUARANTINE_TEXT_MAX else "")


def judge_quarantine(raw: Any, window_h: float, host: str, now: float) -> CheckResult:
    """``collector:quarantine`` from the ``quarantine`` entry of the collector's state (any value: total).

    Critical while the newest quarantined record is younger than ``window_h`` hours (or dated in the future:
    a clock step must not hide it); ok when nothing was quarantined or the newest is older; a warning when the
    entry says records were quarantined but not when; unknown when the entry is not an object at all.
    """
    window_s = window_h * 3600
    if raw is None:
        return CheckResult("collector", "quarantine", host, Status.OK, "nothing quarantined", None,
                           {"count": 0, "window_h": window_h})
    if not isinstance(raw, Mapping):
        return CheckResult("collector", "quarantine", host, Status.UNKNOWN,
                           f"the quarantine entry of the collector state is a {type(raw).__name__}, not an object",
                           None, {"window_h": window_h})
    count = json_count(raw.get("count"))
    last_at = json_seconds(raw.get("last_at"))
    source, reason, file = (_quarantine_text(raw.get(k)) for k in ("last_source", "last_reason", "file"))
    detail: dict[str, Any] = {"count": count, "window_h": window_h, "last_source": source, "last_reason": reason,
                              "file": file}
    where = f"; kept in {file}" if file else ""
    what = f"from {source or 'an unnamed source'}: {reason or 'no reason given'}"
    counted = "an unknown number of records" if count is None else f"{count} record{'s' if count != 1 else ''}"
    if last_at is None:
        if count == 0 or (count is None and not raw):
            return CheckResult("collector", "quarantine", host, Status.OK, "nothing quarantined", None, detail)
        return CheckResult("collector", "quarantine", host, Status.WARNING,
                           f"{counted} quarantined, time of the newest not understood ({what}){where}", None, detail)
    age_s = now - last_at
    detail["last_at"] = last_at
    detail["age_h"] = round(max(0.0, age_s) / 3600, 2)
    ago = f"{max(0.0, age_s) / 3600:.1f} h ago" if age_s >= 0 else "dated in the future"
    if age_s < window_s:
        return CheckResult("collector", "quarantine", host, Status.CRITICAL,
                           f"{counted} quarantined, the newest {ago} {what}{where}", None, detail)
    return CheckResult("collector", "quarantine", host, Status.OK,
                       f"{counted} quarantined, the newest {ago} (outside the {window_h:g} h window){where}", None,
                       detail)


def _source_ages(limits: Mapping[str, float], per_source: Mapping[str, Mapping[str, Any]], host: str) -> CheckResult:
    """``collector:sources``: the newest acknowledged line of each never-quiet source is recent enough."""
    stale = []
    detail: dict[str, Any] = {}
    for key, limit in sorted(limits.items()):
        age = per_source.get(key, {}).get("newest_acked_age_s")
        detail[key] = {"newest_acked_age_s": age, "max_age_s": limit}
        if age is None:
            stale.append(f"{key}: nothing acknowledged yet")
        elif age > limit:
            stale.append(f"{key}: newest line {age:.0f} s old")
    if stale:
        return CheckResult("collector", "sources", host, Status.WARNING, "; ".join(stale), None, detail)
    return CheckResult("collector", "sources", host, Status.OK, f"{len(limits)} sources recent", None, detail)


def _file_backlog(raw: Mapping[str, Any]) -> int:
    """Bytes past the committed offset, when the file at ``path`` is still the one the offset belongs to."""
    try:
        st = os.stat(str(raw["path"]))
        offset = int(raw["offset"])
    except (KeyError, TypeError, ValueError, OSError):
        return 0
    if st.st_ino != raw.get("ino") or st.st_dev != raw.get("dev"):
        return 0  # rotated: the collector moves on to the new file by itself
    return max(0, st.st_size - offset)


def _level(value: float, warn: float, crit: float) -> Status:
    if value >= crit and value > 0:
        return Status.CRITICAL
    if value >= warn and value > 0:
        return Status.WARNING
    return Status.OK


# --- Scheduled jobs ------------------------------------------------------------------------------


def job_age_check(name: str, rule: JobAge, last_success: datetime | None, host: str,
                  now: datetime | None = None) -> CheckResult:
    """How old the last successful run of job ``name`` is (``backup`` is reported as component ``backup``)."""
    now = datetime.now(UTC) if now is None else now
    component = "backup" if name == "backup" else "jobs"
    check = "last_success" if name == "backup" else name
    if last_success is None:
        return CheckResult(component, check, host, Status(rule.never_run), f"{name}: no successful run recorded",
                           None, {"job": name})
    if last_success.tzinfo is None:
        last_success = last_success.replace(tzinfo=UTC)
    age_h = max(0.0, (now - last_success).total_seconds() / 3600)
    status = _level(age_h, rule.warn_age_h, rule.crit_age_h)
    detail = {"job": name, "last_success": last_success.isoformat(), "age_h": round(age_h, 2),
              "warn_age_h": rule.warn_age_h, "crit_age_h": rule.crit_age_h}
    return CheckResult(component, check, host, status, f"{name}: last success {age_h:.1f} h ago", None, detail)


# --- Compliance and security audit ----------------------------------------------------------------


@dataclass(frozen=True)
class LastAudit:
    """The newest ``audit_runs`` row of a host (``iact-agent audit``, migration 0015)."""

    finished_at: datetime
    outcome: str
    """``passed``, ``failed`` (a check of severity high or above failed) or ``incomplete``."""
    failed: int
    failed_high: int
    errors: int


def audit_check(last: LastAudit | None, max_age_h: float, host: str, now: datetime | None = None) -> CheckResult:
    """``audit:last_run``: critical when this host's last audit failed or is older than ``max_age_h``;
    a warning when it could not judge every check; ok otherwise (lower-severity findings are in its report)."""
    now = datetime.now(UTC) if now is None else now
    if last is None:
        return CheckResult("audit", "last_run", host, Status.CRITICAL, "no audit recorded for this host",
                           None, {"max_age_h": max_age_h})
    finished = last.finished_at if last.finished_at.tzinfo else last.finished_at.replace(tzinfo=UTC)
    age_h = max(0.0, (now - finished).total_seconds() / 3600)
    detail = {"finished_at": finished.isoformat(), "age_h": round(age_h, 2), "max_age_h": max_age_h,
              "outcome": last.outcome, "failed": last.failed, "failed_high": last.failed_high, "errors": last.errors}
    when = f"last audit {age_h:.1f} h ago"
    problems = []
    status = Status.OK
    if age_h > max_age_h:
        status = Status.CRITICAL
        problems.append(f"older than {max_age_h:g} h")
    if last.outcome == "failed":
        status = Status.CRITICAL
        problems.append(f"failed: {last.failed_high} check(s) of severity high or above")
    elif last.errors:
        status = Status.CRITICAL if status is Status.CRITICAL else Status.WARNING
        problems.append(f"{last.errors} check(s) could not be judged")
    if not problems:
        lower = f", {last.failed} lower-severity finding(s)" if last.failed else ""
        return CheckResult("audit", "last_run", host, status, f"{when}: passed{lower}", None, detail)
    return CheckResult("audit", "last_run", host, status, f"{when}: " + "; ".join(problems), None, detail)


# --- Time sync -----------------------------------------------------------------------------------


def in_container() -> bool:
    if os.environ.get("container"):  # noqa: SIM112 - systemd and podman set it in lower case
        return True
    return any(Path(p).exists() for p in ("/run/systemd/container", "/.dockerenv", "/run/.containerenv"))


def time_sync_check(cfg: TimeSyncSettings, host: str, run: Runner = run_program,
                    container: bool | None = None) -> CheckResult:
    container = in_container() if container is None else container
    reasons: list[str] = []
    try:
        out = run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], 10.0)
        value = out.stdout.strip()
        if out.returncode == 0 and value == "yes":
            return CheckResult("time", "sync", host, Status.OK, "NTP synchronized (timedatectl)")
        reasons.append(f"timedatectl: {value or out.first_error_line}")
    except CommandFailed as exc:
        reasons.append(str(exc))
    try:
        out = run(["chronyc", "-n", "tracking"], 10.0)
        if out.returncode == 0:
            tracking = parse_chrony_tracking(out.stdout)
            detail = {"leap_status": tracking.leap_status, "offset_s": tracking.system_time_offset_s}
            if tracking.leap_status == "Normal":
                return CheckResult("time", "sync", host, Status.OK, "synchronized (chrony)", None, detail)
            reasons.append(f"chrony leap status: {tracking.leap_status}")
        else:
            reasons.append(f"chronyc: {out.first_error_line}")
    except CommandFailed as exc:
        reasons.append(str(exc))
    if container:
        return CheckResult("time", "sync", host, Status(cfg.in_container),
                           "container: the clock is the host's and is not disciplined here", None,
                           {"container": True, "probes": reasons})
    return CheckResult("time", "sync", host, Status.WARNING, "clock not synchronized: " + "; ".join(reasons), None,
                       {"probes": reasons})
