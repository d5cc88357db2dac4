"""Configuration of ``iact-agent remediate`` (``/etc/iact/remediate.toml``): one frozen, typed model.

Precedence, lowest first: defaults < TOML file < ``IACT_REMEDIATE__<SECTION>__<FIELD>`` environment variables <
command line. The host name, the MySQL option file, nodetool and the alert channels are the health agent's
(``health_config``): one fact, one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from ..config import CommaList, FrozenModel, load_config
from .actions import ALLOW_LIST

_DURATION = re.compile(r"([0-9]{1,15})(d|h|m|s|ms|us|µs|ns)", re.IGNORECASE)
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration_s(text: str) -> float | str:
    """A cassandra.yaml duration (``3h``, ``10800000ms``: Cassandra 5's DurationSpec, a whole number and a unit) in
    seconds, or why it is not one."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return f"{text[:40]!r} is not a Cassandra duration (a whole number and d, h, m, s, ms, us or ns, e.g. 3h)"
    return int(match.group(1)) * _UNIT_S[match.group(2).lower()]


ENV_PREFIX = "IACT_REMEDIATE"
DEFAULT_CONFIG_PATH = Path("/etc/iact/remediate.toml")


class Budget(FrozenModel):
    per_hour: int = Field(default=1, ge=0, le=100)
    """Attempts (acted or failed) of one action on one host within the last hour before it stops acting."""
    per_day: int = Field(default=3, ge=0, le=1000)
    """... and within the last 24 hours."""

    @model_validator(mode="after")
    def _ordered(self) -> Budget:
        if self.per_hour > self.per_day:
            raise ValueError("per_hour must not exceed per_day")
        return self


class CassandraGuard(FrozenModel):
    self_address: str = ""
    """This node's address as ``nodetool status`` lists it (left out when the other nodes must be ``UN``)."""
    peers: CommaList = Field(default_factory=list)
    """Host names (``health_checks.host``) of the other nodes: each must have recorded a fresh
    ``cassandra:nodes_up`` in which every node but this one is ``UN``."""
    peer_max_age_s: float = Field(default=600.0, gt=0, le=86400)
    """How old a peer's ``cassandra:nodes_up`` result may be to count."""
    lock_wait_s: int = Field(default=0, ge=0, le=60)
    """Seconds to wait for the cluster lock (GET_LOCK) held by another node's remediation; 0: skip at once."""
    up_timeout_s: float = Field(default=300.0, gt=0, le=1800)
    """After the restart, how long to wait (holding the lock) until ``nodetool status`` shows every node UN."""
    poll_s: float = Field(default=10.0, gt=0, le=120)
    max_hint_window: str = "3h"
    """repair_node: the cluster's ``max_hint_window`` (cassandra.yaml; roles/health renders roles/cassandra's
    ``cassandra_yaml_extra.max_hint_window``, else Cassandra's default 3h): a node down longer needs a repair."""

    @field_validator("max_hint_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        seconds = duration_s(value)
        if isinstance(seconds, str):
            raise ValueError(seconds)
        if not 0 < seconds <= 30 * 86400:
            raise ValueError(f"{value!r}: must be more than 0 and at most 30 days")
        return value

    @property
    def hint_window_s(self) -> float:
        seconds = duration_s(self.max_hint_window)
        return 3 * 3600.0 if isinstance(seconds, str) else seconds


class RemediateConfig(FrozenModel):
    health_config: Path = Path("/etc/iact/health.toml")
    """The health agent's configuration: host, MySQL option file, nodetool, alert channels."""
    dry_run: bool = True
    """Record and notify what would be done; change nothing. On unless the inventory turns it off."""
    actions: CommaList = Field(default_factory=list)
    """Names of the allow-list (``restart_collector``, ``restart_cassandra``, ``rerun_backup``, ``prune_backups``,
    ``repair_node``) enabled on this host."""
    budget: Budget = Field(default_factory=Budget)
    """Default budget of every action."""
    budgets: dict[str, Budget] = Field(default_factory=dict)
    """Per-action budgets, by action name."""
    max_result_age_s: float = Field(default=900.0, gt=0, le=86400)
    """A health result older than this fires nothing (the health job must have run just before)."""
    sudo: list[str] = Field(default_factory=lambda: ["sudo", "-n"])
    """How the unit commands reach root: the sudoers rule of roles/health allows exactly them. Empty: as is."""
    systemctl: str = "/usr/bin/systemctl"
    """What ``is-active`` is asked with after a restart (the commands themselves are fixed in the allow-list)."""
    unit_up_timeout_s: float = Field(default=60.0, gt=0, le=600)
    """After a host-scope restart, how long to wait until the unit is ``active``."""
    cassandra: CassandraGuard = Field(default_factory=CassandraGuard)

    @model_validator(mode="after")
    def _known(self) -> RemediateConfig:
        unknown = sorted(set(self.actions) - set(ALLOW_LIST))
        if unknown:
            raise ValueError(f"actions: not in the allow-list: {', '.join(unknown)} (known: {', '.join(ALLOW_LIST)})")
        unknown = sorted(set(self.budgets) - set(ALLOW_LIST))
        if unknown:
            raise ValueError(f"budgets: not in the allow-list: {', '.join(unknown)}")
        if any(ALLOW_LIST[a].scope == "cluster" for a in self.actions) and not self.cassandra.self_address:
            raise ValueError("cassandra.self_address is required when a cluster action is enabled")
        return self

    def budget_of(self, action: str) -> Budget:
        return self.budgets.get(action, self.budget)


def load(path: Path | None, *, overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> RemediateConfig:
    """Load and validate the configuration (raises :class:`~iact_agents.errors.ConfigError`)."""
    return load_config(RemediateConfig, path, env_prefix=ENV_PREFIX, overrides=overrides, environ=environ)
