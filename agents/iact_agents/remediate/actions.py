"""The allow-list: every action remediation may take, as data (one small definition each).

An action is fired by a health result that the health agent recorded for this host (``component``,
``check_name`` and the statuses, optionally the unit state of ``detail.state``). The configuration can only
switch actions of this list on and change their budgets; the commands are fixed here, and the sudoers rule of
roles/health allows exactly these commands and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..health.models import CheckResult, Status

Scope = Literal["host", "cluster"]


@dataclass(frozen=True)
class Trigger:
    """A health result that fires an action: its key, the statuses that count, and (optionally) the unit states."""

    component: str
    check_name: str
    statuses: frozenset[Status] = frozenset({Status.CRITICAL})
    states: frozenset[str] | None = None
    """``detail.state`` (systemd's ``ActiveState``) of a ``service:<unit>`` result; None: any."""

    @property
    def key(self) -> str:
        return f"{self.component}:{self.check_name}"

    def fires(self, result: CheckResult) -> bool:
        if (result.component, result.check_name) != (self.component, self.check_name):
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
    unit: str
    """The systemd unit the action restarts (``target`` of its rows)."""
    triggers: tuple[Trigger, ...]
    scope: Scope
    """``cluster``: touches one node of a cluster: takes the MySQL lock and needs every other node ``UN``."""
    verb: Literal["restart"] = "restart"

    def command(self, sudo: Sequence[str], systemctl: str) -> list[str]:
        return [*sudo, systemctl, self.verb, self.unit]

    def fired_by(self, results: Sequence[CheckResult]) -> list[CheckResult]:
        return [r for r in results if any(t.fires(r) for t in self.triggers)]


COLLECTOR_UNIT = "iact-collector.service"
CASSANDRA_UNIT = "cassandra.service"

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
    unit=COLLECTOR_UNIT,
    triggers=(
        Trigger("service", COLLECTOR_UNIT, states=GAVE_UP),
        # collector:lag is critical when bytes wait past the committed offsets and the last commit is older than
        # collector.lag_crit_s (health.checks.collector_checks): the collector is stuck.
        Trigger("collector", "lag"),
    ),
    scope="host",
)

RESTART_CASSANDRA = Action(
    name="restart_cassandra",
    description="start this Cassandra node again when systemd gave up on it (failed) while the host is up; never"
                " when it was stopped (inactive)",
    unit=CASSANDRA_UNIT,
    # The check runs on the node's own host: a result at all means the host is up.
    triggers=(Trigger("service", CASSANDRA_UNIT, states=GAVE_UP),),
    scope="cluster",
)

ALLOW_LIST: dict[str, Action] = {a.name: a for a in (RESTART_COLLECTOR, RESTART_CASSANDRA)}
"""Every action remediation can take. Not here (issue 18, not done yet): re-running a failed backup, pruning
this host's backups beyond retention on a full disk, ``nodetool repair -pr`` after a long outage."""
