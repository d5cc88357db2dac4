"""The allow-list: every action remediation may take, as data (one small definition each).

An action is fired by a health result that the health agent recorded for this host (``component``,
``check_name`` and the statuses, optionally the unit state of ``detail.state``); some need more evidence from
MySQL before they act (``evidence``: judged by the pure functions of :mod:`.decide`). The configuration can only
switch actions of this list on and change their budgets; the commands (``argv``) are fixed here, and the sudoers
rule of roles/health allows exactly these commands and nothing else.

The three job actions start the job's own cron command (the ``iact-agent job run`` line roles/cron or
roles/cassandra installs: same wrapper, same lock, a ``job_runs`` row) as a transient systemd unit, because a backup,
the retention or a repair outlasts the health job that runs remediation; their result is the job's ``job_runs``
row, which the next health runs judge. ``agents/tests/unit/remediate`` keeps each argv equal to the role's entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..health.models import CheckResult, Status

Scope = Literal["host", "cluster"]
Then = Literal["unit_active", "cluster_up", "started"]
"""What makes an attempt good once its command succeeded: the unit is active again, every node is UN again, or
(job actions) the job's transient unit was started."""
Evidence = Literal["", "last_backup_failed", "outage_over_hint_window"]
"""Evidence an action needs besides its trigger (see :mod:`.runner`); empty: the trigger is enough."""


@dataclass(frozen=True)
class Trigger:
    """A health result that fires an action: its key, the statuses that count, and (optionally) the unit states."""

    component: str
    check_name: str
    """``*``: any check of the component (e.g. every ``disk:<path>`` of the host)."""
    statuses: frozenset[Status] = frozenset({Status.CRITICAL})
    states: frozenset[str] | None = None
    """``detail.state`` (systemd's ``ActiveState``) of a ``service:<unit>`` result; None: any."""

    def fires(self, result: CheckResult) -> bool:
        if result.component != self.component or self.check_name not in ("*", result.check_name):
            return False
        if result.status not in self.statuses:
            return False
        if self.states is None:
            return True
        state = result.detail.get("state") if isinstance(result.detail, Mapping) else None
        return isinstance(state, str) and state in self.states


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    target: str
    """What it acts on (``target`` of its rows): the systemd unit, or the job of ``job_runs``."""
    triggers: tuple[Trigger, ...]
    scope: Scope
    """``cluster``: touches one node of a cluster: takes the MySQL lock and needs every other node ``UN``."""
    argv: tuple[str, ...]
    """The command, run as root through sudo (the sudoers rule of roles/health allows exactly it)."""
    then: Then
    evidence: Evidence = ""
    cron_file: str = ""
    """``last_backup_failed``: the installed cron file of the job (its schedule gives the next run)."""

    def command(self, sudo: Sequence[str]) -> list[str]:
        return [*sudo, *self.argv]

    def fired_by(self, results: Sequence[CheckResult]) -> list[CheckResult]:
        return [r for r in results if any(t.fires(r) for t in self.triggers)]


COLLECTOR_UNIT = "iact-collector.service"
CASSANDRA_UNIT = "cassandra.service"
SYSTEMCTL = "/usr/bin/systemctl"
SYSTEMD_RUN = "/usr/bin/systemd-run"
IACT_AGENT = "/usr/local/bin/iact-agent"
TRANSIENT_PREFIX = "iact-remediate-"
"""Transient units of the job actions: ``iact-remediate-<job>`` (``--collect``: gone once it ended, so the next
attempt can take the name; while one runs, another start is refused by systemd and the job's own lock)."""

NEXT_RUN_MIN_S = 6 * 3600
"""rerun_backup: a failed backup is run again only when cron's next run is further away than this."""
OUTAGE_LOOKBACK_S = 2 * 86400
"""repair_node: how far back the health results are read to find the node's last outage."""


def job_argv(job: str, timeout_s: int, mysql_defaults: str, *command: str) -> tuple[str, ...]:
    """A job's cron command (``iact-agent job run``, as roles/cron writes it) started as a transient unit."""
    return (SYSTEMD_RUN, "--unit", TRANSIENT_PREFIX + job.replace("_", "-"), "--collect", "--quiet",
            IACT_AGENT, "job", "run", "--name", job, "--timeout", str(timeout_s), "--mysql-defaults", mysql_defaults,
            "--", *command)


GAVE_UP = frozenset({"failed"})
"""The only unit state a restart action fires on: ``failed``, a unit systemd gave up on (its process died and
``Restart=`` did not bring it back, e.g. the start limit was hit, or the unit has no ``Restart=``). Never
``inactive``: that is what ``systemctl stop`` leaves (maintenance, the DR drill restoring a node, a rolling
restart), and remediation must not start a unit a person or a playbook stopped on purpose. Never ``activating``
(sub-state ``auto-restart``): systemd is restarting the unit itself (both units have ``Restart=on-failure``)."""

RESTART_COLLECTOR = Action(
    name="restart_collector",
    description="restart the collector when systemd gave up on it (failed), or when it is stuck (lines wait and no"
                " offset is committed); never when it was stopped (inactive)",
    target=COLLECTOR_UNIT,
    triggers=(
        Trigger("service", COLLECTOR_UNIT, states=GAVE_UP),
        # collector:lag is critical when bytes wait past the committed offsets and the last commit is older than
        # collector.lag_crit_s (health.checks.collector_checks): the collector is stuck.
        Trigger("collector", "lag"),
    ),
    scope="host",
    argv=(SYSTEMCTL, "restart", COLLECTOR_UNIT),
    then="unit_active",
)

RESTART_CASSANDRA = Action(
    name="restart_cassandra",
    description="start this Cassandra node again when systemd gave up on it (failed) while the host is up; never"
                " when it was stopped (inactive)",
    target=CASSANDRA_UNIT,
    # The check runs on the node's own host: a result at all means the host is up.
    triggers=(Trigger("service", CASSANDRA_UNIT, states=GAVE_UP),),
    scope="cluster",
    argv=(SYSTEMCTL, "restart", CASSANDRA_UNIT),
    then="cluster_up",
)

RERUN_BACKUP = Action(
    name="rerun_backup",
    description="run this host's backup again (its own cron command) when its last run failed and cron's next run"
                " is more than 6 h away",
    target="backup",
    # backup:last_success turns warning when the last success is older than the host's [warn, crit] hours
    # (health_host_job_max_age_h); the newest job_runs row must then be a failure (not running, not a success).
    triggers=(Trigger("backup", "last_success", frozenset({Status.WARNING, Status.CRITICAL})),),
    scope="host",
    argv=job_argv("backup", 14400, "/etc/iact/backup-job.cnf", "/usr/local/sbin/iact-backup", "run"),
    then="started",
    evidence="last_backup_failed",
    cron_file="/etc/cron.d/iact-backup",
)

PRUNE_BACKUPS = Action(
    name="prune_backups",
    description="on a backup target whose disk is critical, apply the backup retention now (iact-backup-target"
                " prune, the daily job's own command): deletes only what the documented retention deletes",
    target="backup_retention",
    triggers=(Trigger("disk", "*"),),
    scope="host",
    argv=job_argv("backup_retention", 3600, "/etc/iact/backup-job.cnf", "/usr/local/sbin/iact-backup-target", "prune"),
    then="started",
)

REPAIR_NODE = Action(
    name="repair_node",
    description="nodetool repair -pr (the weekly repair job's own command) on this node when it was down longer than"
                " the hint window (max_hint_window, default 3 h), is up again and was not repaired since",
    target="cassandra_repair",
    triggers=(Trigger("service", CASSANDRA_UNIT, frozenset({Status.OK}), frozenset({"active"})),),
    scope="cluster",
    argv=job_argv("cassandra_repair", 172800, "/etc/iact/mysql-health.cnf", "/usr/local/bin/nodetool", "repair",
                  "-pr"),
    then="started",
    evidence="outage_over_hint_window",
)

ALLOW_LIST: dict[str, Action] = {a.name: a for a in (RESTART_COLLECTOR, RESTART_CASSANDRA, RERUN_BACKUP,
                                                     PRUNE_BACKUPS, REPAIR_NODE)}
"""Every action remediation can take."""
