"""The health agent's configuration (``/etc/iact/health.toml``): one frozen, typed model.

Precedence, lowest first: defaults < TOML file < ``IACT_HEALTH__<SECTION>__<FIELD>`` environment
variables < command line. Lists can be given as comma-separated text in the environment, e.g.
``IACT_HEALTH__SERVICES__UNITS=mariadb.service,iact-collector.service``. No secret is written here:
MySQL credentials come from a MySQL option file, the CQL password from a 0600/0640 file.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ..config import CqlClient, FrozenModel, load_config

ENV_PREFIX = "IACT_HEALTH"
DEFAULT_CONFIG_PATH = Path("/etc/iact/health.toml")


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(_comma_list)]


class MySQLSettings(FrozenModel):
    defaults_file: Path = Path("/etc/iact/mysql-health.cnf")
    """MySQL option file (``[client]`` user, password, host, database) of the iact_health user."""
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)


class CassandraSettings(CqlClient):
    enabled: bool = False
    """Run the Cassandra checks on this host (nodetool talks to the local node)."""
    nodetool: CommaList = Field(default_factory=lambda: ["nodetool"], min_length=1)
    """The nodetool command and its fixed arguments (e.g. ``-h 127.0.0.1``)."""
    expected_nodes: int = Field(default=3, ge=1, le=1000)
    """How many nodes ``nodetool status`` must list; fewer is critical."""
    command_timeout_s: float = Field(default=60.0, gt=0, le=600)
    contact_points: CommaList = Field(default_factory=lambda: ["127.0.0.1"], min_length=1)
    port: int = Field(default=9042, ge=1, le=65535)
    username: str | None = None
    """Role used for the CQL login check (a reader is enough); unset = no CQL login check."""
    password_file: Path | None = None
    protocol_version: int = Field(default=5, ge=3, le=5)
    """CQL native protocol version (5 on Cassandra 4.0 and later)."""
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)



class DiskPath(FrozenModel):
    path: Path
    warn_percent: float | None = Field(default=None, ge=0, le=100)
    """Overrides ``disk.warn_percent`` for this path."""
    crit_percent: float | None = Field(default=None, ge=0, le=100)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"{str(value)!r} is not an absolute path")
        return value


class DiskSettings(FrozenModel):
    warn_percent: float = Field(default=80.0, ge=0, le=100)
    """Used space (as ``df`` counts it) from which a volume is a warning."""
    crit_percent: float = Field(default=90.0, ge=0, le=100)
    paths: list[DiskPath] = Field(default_factory=lambda: [DiskPath(path=Path("/"))])

    @model_validator(mode="after")
    def _ordered(self) -> DiskSettings:
        for p in self.paths:
            warn, crit = self.thresholds(p)
            if warn > crit:
                raise ValueError(f"{p.path}: warn_percent ({warn}) must not exceed crit_percent ({crit})")
        return self

    def thresholds(self, p: DiskPath) -> tuple[float, float]:
        warn = self.warn_percent if p.warn_percent is None else p.warn_percent
        crit = self.crit_percent if p.crit_percent is None else p.crit_percent
        return warn, crit


class ServiceSettings(FrozenModel):
    units: CommaList = Field(default_factory=list)
    """systemd units that must be ``active`` on this host (cassandra, mariadb, iact-collector)."""
    systemctl: str = "systemctl"
    crash_loop_units: CommaList | None = None
    """Units that are critical when they are not steadily ``active`` at two checks in a row (not ``active``, or
    restarted by systemd since the previous check: a crash loop under ``Restart=``). None: every unit of
    ``units``. The first such check is a warning; ``inactive`` and ``failed`` are critical at once."""

    @model_validator(mode="after")
    def _watched(self) -> ServiceSettings:
        unknown = sorted(set(self.crash_loop_units or ()) - set(self.units))
        if unknown:
            raise ValueError(f"crash_loop_units names units that are not in units: {', '.join(unknown)}")
        return self

    def watches_crash_loops(self, unit: str) -> bool:
        return self.crash_loop_units is None or unit in self.crash_loop_units


class CollectorSettings(FrozenModel):
    enabled: bool = False
    state_file: Path = Path("/var/lib/iact-collector/positions.json")
    """The collector's committed positions (see ``health.checks.collector_checks`` for the contract)."""
    lag_warn_s: float = Field(default=300.0, gt=0)
    """Unread lines waiting longer than this (seconds since the collector last committed) is a warning."""
    lag_crit_s: float = Field(default=900.0, gt=0)
    backlog_warn_bytes: int = Field(default=64 << 20, ge=0)
    """Bytes written to the sources but not yet shipped (the collector keeps no spool of its own)."""
    backlog_crit_bytes: int = Field(default=512 << 20, ge=0)
    source_max_age_s: dict[str, float] = Field(default_factory=dict)
    """Sources that are never quiet (``journal:journal``, ``file:/var/log/syslog``): a warning when their newest
    acknowledged line is older than this many seconds."""
    quarantine_window_h: float = Field(default=24.0, gt=0, le=24 * 366)
    """``collector:quarantine`` is critical while the collector's newest quarantined record (a record it could not
    process and set aside, see ``health.checks.collector_checks``) is younger than this many hours."""

    @field_validator("source_max_age_s")
    @classmethod
    def _positive_ages(cls, value: dict[str, float]) -> dict[str, float]:
        for key, age in value.items():
            if age <= 0:
                raise ValueError(f"{key}: must be more than 0 seconds")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> CollectorSettings:
        if self.lag_warn_s > self.lag_crit_s:
            raise ValueError("lag_warn_s must not exceed lag_crit_s")
        if self.backlog_warn_bytes > self.backlog_crit_bytes:
            raise ValueError("backlog_warn_bytes must not exceed backlog_crit_bytes")
        return self


class JobAge(FrozenModel):
    warn_age_h: float = Field(gt=0)
    """Hours since the last successful run after which this is a warning."""
    crit_age_h: float = Field(gt=0)
    never_run: Literal["warning", "critical", "unknown"] = "critical"
    """Status when the job has no successful run in ``job_runs`` at all."""
    this_host_only: bool = False
    """Count only the runs this host recorded (``host`` column = ``host`` of this config): for jobs that run
    on every host, such as ``backup``, where another host's success says nothing about this one."""

    @model_validator(mode="after")
    def _ordered(self) -> JobAge:
        if self.warn_age_h > self.crit_age_h:
            raise ValueError("warn_age_h must not exceed crit_age_h")
        return self


class AuditSettings(FrozenModel):
    enabled: bool = False
    """Check this host's last compliance and security audit (``iact-agent audit``, table ``audit_runs``)."""
    max_age_h: float = Field(default=192.0, gt=0)
    """Critical when the last audit finished longer ago than this (the audit runs weekly: 8 days)."""


class TimeSyncSettings(FrozenModel):
    enabled: bool = True
    in_container: Literal["ok", "unknown"] = "ok"
    """Status in a container, whose clock is the host's and is not disciplined inside it."""


class SyslogChannelSettings(FrozenModel):
    enabled: bool = True
    facility: Literal["daemon", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"] = (
        "daemon"
    )
    tag: str = "iact-health"


class MailboxChannelSettings(FrozenModel):
    enabled: bool = False
    path: Path = Path("/var/mail/iact")
    """An mbox file on this host, appended to under an fcntl lock. Local delivery only: no relay."""
    recipient: str = "iact"
    sender: str = "iact-health"
    lock_timeout_s: float = Field(default=10.0, gt=0, le=300)


class WebhookChannelSettings(FrozenModel):
    enabled: bool = False
    url: str = ""
    """An internal HTTP(S) endpoint; it receives one JSON object per notification."""
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    allow_public: bool = False
    """Refuse addresses outside loopback/private/link-local ranges unless set (RNF-002: no outside service)."""

    @model_validator(mode="after")
    def _url(self) -> WebhookChannelSettings:
        if not self.enabled:
            return self
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL when the webhook is enabled")
        return self


class AlertingSettings(FrozenModel):
    enabled: bool = True
    consecutive_failures: int = Field(default=3, ge=1, le=1000)
    """Non-ok results in a row of one key (component:check:host) before an alert opens."""
    per_check: dict[str, int] = Field(default_factory=dict)
    """Overrides of ``consecutive_failures`` by ``component:check`` or ``component``."""
    reminder_interval_min: float = Field(default=240.0, gt=0)
    """Minutes between reminders while an alert stays open (not acknowledged)."""
    alert_on_unknown: bool = False
    """Whether ``unknown`` counts as a failure (off: a check that cannot run does not page anyone)."""
    mysql_down_reminder_min: float = Field(default=60.0, gt=0)
    """While the metrics store cannot take the results (``mysql:reachable`` or ``mysql:writable`` failing), the
    alerts are sent straight to the channels from local state: at most one notification per this many minutes
    (the first after ``threshold("mysql", ...)`` failing runs), then one ``resolved`` when it takes them again."""
    syslog: SyslogChannelSettings = Field(default_factory=SyslogChannelSettings)
    mailbox: MailboxChannelSettings = Field(default_factory=MailboxChannelSettings)
    webhook: WebhookChannelSettings = Field(default_factory=WebhookChannelSettings)

    @field_validator("per_check")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for key, n in value.items():
            if n < 1:
                raise ValueError(f"{key}: must be at least 1")
        return value

    def threshold(self, component: str, check_name: str) -> int:
        for key in (f"{component}:{check_name}", component):
            if key in self.per_check:
                return self.per_check[key]
        return self.consecutive_failures


class HealthConfig(FrozenModel):
    host: str = Field(default_factory=socket.getfqdn, min_length=1, max_length=255)
    """Value of the ``host`` column: this machine's name."""
    state_dir: Path = Path("/var/lib/iact/health")
    """The agent's memory between runs (``state.json``: units not active at consecutive checks, an ongoing
    outage of the metrics store). Created (0750) if missing; its parent must exist."""
    mysql: MySQLSettings = Field(default_factory=MySQLSettings)
    cassandra: CassandraSettings = Field(default_factory=CassandraSettings)
    disk: DiskSettings = Field(default_factory=DiskSettings)
    services: ServiceSettings = Field(default_factory=ServiceSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    jobs: dict[str, JobAge] = Field(default_factory=dict)
    """Maximum age of the last successful run, by ``job_runs.job_name`` (``backup``, ``session_cleanup``)."""
    time_sync: TimeSyncSettings = Field(default_factory=TimeSyncSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)


def load(
    path: Path | None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> HealthConfig:
    """Load and validate the configuration (raises :class:`~iact_agents.errors.ConfigError`)."""
    return load_config(HealthConfig, path, env_prefix=ENV_PREFIX, overrides=overrides, environ=environ)


def is_internal_address(address: str) -> bool:
    """Not routed on the internet: loopback, private (RFC 1918 / ULA), link-local, shared and reserved ranges."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_loopback or ip.is_private or ip.is_link_local or not ip.is_global
