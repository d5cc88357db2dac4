"""The operations tables: one definition for the page, its CSV export and the API rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iact_agents.audit.store import HostAudit

from ..core.tables import Column, Table
from .service import detail_text


def _seconds_as_hours(value: Any) -> float | None:
    return None if value is None else float(value) / 3600


def health_table(rows: Sequence[dict[str, Any]]) -> Table:
    return Table("health", "Latest result of every check", [
        Column("host", "Host", lambda r: r["host"]),
        Column("component", "Component", lambda r: r["component"]),
        Column("check", "Check", lambda r: r["check_name"]),
        Column("status", "Status", lambda r: r["status"], "status"),
        Column("summary", "Summary", lambda r: r["summary"]),
        Column("latency_ms", "Latency (ms)", lambda r: r["latency_ms"], "number"),
        Column("checked_at", "Checked at (UTC)", lambda r: r["checked_at"], "time"),
    ], list(rows), empty="No health results in the last days: is the health agent running?")


def alerts_table(rows: Sequence[dict[str, Any]]) -> Table:
    return Table("alerts", "Open and acknowledged alerts", [
        Column("id", "Id", lambda r: r["id"], "number"),
        Column("severity", "Severity", lambda r: r["severity"], "status"),
        Column("status", "Status", lambda r: r["status"], "status"),
        Column("alert_key", "Key", lambda r: r["alert_key"]),
        Column("summary", "Summary", lambda r: r["summary"]),
        Column("occurrences", "Occurrences", lambda r: r["occurrences"], "number"),
        Column("first_seen_at", "First seen (UTC)", lambda r: r["first_seen_at"], "time"),
        Column("last_seen_at", "Last seen (UTC)", lambda r: r["last_seen_at"], "time"),
        Column("notified_at", "Notified (UTC)", lambda r: r["notified_at"], "time"),
        Column("acknowledged_by", "Acknowledged by", lambda r: r.get("acknowledged_by")),
        Column("acknowledged_at", "Acknowledged (UTC)", lambda r: r.get("acknowledged_at"), "time"),
    ], list(rows), empty="No open alerts.")


def resolved_alerts_table(rows: Sequence[dict[str, Any]]) -> Table:
    return Table("resolved", "Resolved in the last 7 days", [
        Column("id", "Id", lambda r: r["id"], "number"),
        Column("severity", "Severity", lambda r: r["severity"], "status"),
        Column("alert_key", "Key", lambda r: r["alert_key"]),
        Column("summary", "Summary", lambda r: r["summary"]),
        Column("first_seen_at", "First seen (UTC)", lambda r: r["first_seen_at"], "time"),
        Column("resolved_at", "Resolved (UTC)", lambda r: r["resolved_at"], "time"),
    ], list(rows), empty="Nothing resolved lately.")


def _job_columns() -> list[Column]:
    return [
        Column("job", "Job", lambda r: r["job_name"]),
        Column("host", "Host", lambda r: r["host"]),
        Column("status", "Status", lambda r: r["status"], "status"),
        Column("started_at", "Started (UTC)", lambda r: r["started_at"], "time"),
        Column("finished_at", "Finished (UTC)", lambda r: r["finished_at"], "time"),
        Column("exit_code", "Exit code", lambda r: r["exit_code"], "number"),
        Column("output_bytes", "Output (bytes)", lambda r: r["output_bytes"], "number"),
        Column("message", "Message", lambda r: r["message"]),
    ]


def last_jobs_table(rows: Sequence[dict[str, Any]]) -> Table:
    cols = _job_columns()
    cols.insert(5, Column("last_success_at", "Last success (UTC)", lambda r: r["last_success_at"], "time"))
    return Table("last_runs", "Newest run of every job and host", cols, list(rows),
                 empty="No job has run yet.")


def job_runs_table(rows: Sequence[dict[str, Any]], title: str = "Recent runs", name: str = "runs") -> Table:
    return Table(name, title, _job_columns(), list(rows), empty="No runs.")


def recovery_point_table(rows: Sequence[dict[str, Any]]) -> Table:
    return Table("recovery_point", "Data at risk now, per host", [
        Column("host", "Host", lambda r: r["host"]),
        Column("last_full_backup", "Last full backup (UTC)", lambda r: r["last_full"], "time"),
        Column("last_binlog_copy", "Last binlog copy (UTC)", lambda r: r["last_binlogs"], "time"),
        Column("exposure_hours", "Since the newest copy", lambda r: _seconds_as_hours(r["exposure_s"]), "hours"),
    ], list(rows), empty="No successful backup recorded.")


def drills_table(rows: Sequence[dict[str, Any]]) -> Table:
    return Table("drills", "DR drills (make drill): measured RPO and RTO", [
        Column("drill_id", "Drill", lambda r: r["drill_id"]),
        Column("status", "Status", lambda r: r["status"], "status"),
        Column("started_at", "Started (UTC)", lambda r: r["started_at"], "time"),
        Column("finished_at", "Finished (UTC)", lambda r: r["finished_at"], "time"),
        Column("rpo_mysql_s", "RPO MySQL (s)", lambda r: r["rpo_mysql_s"], "number"),
        Column("rto_total_s", "RTO (s)", lambda r: r["rto_total_s"], "number"),
        Column("error", "Error", lambda r: r["error"]),
    ], list(rows), empty="No drill recorded yet.")


def quality_table(rows: Sequence[dict[str, Any]]) -> Table:
    return Table("quality", "Checks of the newest run", [
        Column("category", "Category", lambda r: r["category"]),
        Column("check", "Check", lambda r: r["check_name"]),
        Column("dataset", "Data set", lambda r: r["dataset"]),
        Column("status", "Status", lambda r: r["status"], "status"),
        Column("pass_rate", "Pass rate", lambda r: r["observed_value"], "rate"),
        Column("failing_rows", "Failing", lambda r: r["failing_rows"], "number"),
        Column("evaluated_rows", "Evaluated", lambda r: r["evaluated_rows"], "number"),
        Column("description", "What it checks", lambda r: detail_text(r["detail"])),
    ], list(rows), empty="No quality run yet.")


def quality_history_table(rows: Sequence[dict[str, Any]]) -> Table:
    return Table("score_history", "Score of the recent runs", [
        Column("checked_at", "Run (UTC)", lambda r: r["checked_at"], "time"),
        Column("score", "Score", lambda r: r["score"], "number"),
        Column("status", "Status", lambda r: r["status"], "status"),
    ], list(rows))


def audits_table(rows: Sequence[HostAudit]) -> Table:
    return Table("audits", "Last audit of every host (iact-agent audit, weekly)", [
        Column("host", "Host", lambda a: a.host),
        Column("finished_at", "Finished (UTC)", lambda a: a.finished_at, "time"),
        Column("outcome", "Outcome", lambda a: a.outcome, "status"),
        Column("checks", "Checks", lambda a: a.checks, "number"),
        Column("passed", "Pass", lambda a: a.passed, "number"),
        Column("failed", "Fail", lambda a: a.failed, "number"),
        Column("failed_high", "Fail high+", lambda a: a.failed_high, "number"),
        Column("not_applicable", "N/A", lambda a: a.not_applicable, "number"),
        Column("errors", "Not judged", lambda a: a.errors, "number"),
        Column("problems", "Failed or not judged", lambda a: a.problems_text()),
        Column("run_id", "Run", lambda a: a.run_id),
    ], list(rows), empty="No audit recorded yet: the weekly job (or make audit) has not run.")


def _outcome(row: dict[str, Any]) -> str:
    """The outcome as operators read it: a skip names the guardrail that stopped it."""
    outcome = str(row["outcome"])
    return f"{outcome} ({row['guardrail']})" if outcome == "skipped" and row.get("guardrail") else outcome


def remediations_table(rows: Sequence[dict[str, Any]]) -> Table:
    return Table("remediations", "Remediation decisions (iact-agent remediate, newest first)", [
        Column("decided_at", "Decided (UTC)", lambda r: r["decided_at"], "time"),
        Column("host", "Host", lambda r: r["host"]),
        Column("action", "Action", lambda r: r["action"]),
        Column("target", "Target", lambda r: r["target"]),
        Column("outcome", "Outcome", _outcome, "status"),
        Column("dry_run", "Dry run", lambda r: r["dry_run"]),
        Column("summary", "Reason", lambda r: r["summary"]),
        Column("evidence", "Evidence", lambda r: r["evidence_summary"]),
        Column("trigger", "Trigger", lambda r: r["trigger_key"]),
        Column("command", "Command", lambda r: r["command"]),
        Column("duration_ms", "Duration (ms)", lambda r: r["duration_ms"], "number"),
    ], list(rows), empty="No remediation decision recorded: no trigger fired, or remediation is not enabled.")
