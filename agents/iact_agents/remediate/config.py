"""Configuration of ``iact-agent remediate`` (``/etc/iact/remediate.toml``): one frozen, typed model.

Precedence, lowest first: defaults < TOML file < ``IACT_REMEDIATE__<SECTION>__<FIELD>`` environment variables <
command line. The host name, the MySQL option file, nodetool and the alert channels are the health agent's
(``health_config``): one fact, one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from ..config import CommaList, FrozenModel, load_config
from .actions import ALLOW_LIST

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


class RemediateConfig(FrozenModel):
    health_config: Path = Path("/etc/iact/health.toml")
    """The health agent's configuration: host, MySQL option file, nodetool, alert channels."""
    dry_run: bool = True
    """Record and notify what would be done; change nothing. On unless the inventory turns it off."""
    actions: CommaList = Field(default_factory=list)
    """Names of the allow-list (``restart_collector``, ``restart_cassandra``) enabled on this host."""
    budget: Budget = Field(default_factory=Budget)
    """Default budget of every action."""
    budgets: dict[str, Budget] = Field(default_factory=dict)
    """Per-action budgets, by action name."""
    max_result_age_s: float = Field(default=900.0, gt=0, le=86400)
    """A health result older than this fires nothing (the health job must have run just before)."""
    sudo: list[str] = Field(default_factory=lambda: ["sudo", "-n"])
    """How the unit commands reach root: the sudoers rule of roles/health allows exactly them. Empty: as is."""
    systemctl: str = "/usr/bin/systemctl"
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
