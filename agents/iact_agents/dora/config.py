"""Configuration of ``iact-agent dora`` and ``iact-agent quality`` (``/etc/iact/dora.toml``).

Precedence, lowest first: defaults < TOML file < ``IACT_DORA__<SECTION>__<FIELD>`` environment variables <
command line. No secret is written here: MySQL credentials come from the option files the mysql role
writes (``/etc/iact/mysql-dora.cnf``, ``/etc/iact/mysql-quality.cnf``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from ..config import FrozenModel, load_config
from .benchmarks import DEFAULT_YEAR
from .metrics import MetricsConfig

ENV_PREFIX = "IACT_DORA"
DEFAULT_CONFIG_PATH = Path("/etc/iact/dora.toml")


class MySQLSettings(FrozenModel):
    defaults_file: Path = Path("/etc/iact/mysql-dora.cnf")
    """Option file of iact_dora (ingest, compute, report)."""
    quality_defaults_file: Path = Path("/etc/iact/mysql-quality.cnf")
    """Option file of iact_quality (``iact-agent quality run``)."""
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)


class RetrySettings(FrozenModel):
    attempts: int = Field(default=5, ge=1, le=20)
    """Tries of one database operation on a transient error (connection lost, deadlock, lock wait timeout)."""
    base_delay_s: float = Field(default=0.5, ge=0, le=60)
    """Delay before the second try; doubled for each further try, capped at ``max_delay_s``."""
    max_delay_s: float = Field(default=8.0, ge=0, le=600)


class MetricsSettings(FrozenModel):
    windows: list[int] = Field(default_factory=lambda: [30, 90], min_length=1)
    """Window lengths in days; one snapshot row per service and window."""
    benchmark_year: int = DEFAULT_YEAR
    """DORA report year whose table classifies the metrics (see ``iact_agents/dora/benchmarks/``)."""
    production_environments: list[str] = Field(default_factory=lambda: ["production"], min_length=1)
    attribution_window_hours: float = Field(default=24.0, ge=0, le=24 * 90)
    """An incident without ``deployment_id`` is attributed to the latest production deployment of its
    service at most this long before it started."""
    rollbacks_are_failures: bool = True
    as_of: date | None = None
    """Fixed last day of the windows (a demo data set); unset: today (UTC)."""

    @field_validator("windows")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(w <= 0 or w > 3650 for w in value):
            raise ValueError("window lengths must be 1..3650 days")
        return sorted(set(value))

    def metrics_config(self) -> MetricsConfig:
        return MetricsConfig(
            production_environments=frozenset(self.production_environments),
            attribution_window=timedelta(hours=self.attribution_window_hours),
            rollbacks_are_failures=self.rollbacks_are_failures,
        )


class ReportSettings(FrozenModel):
    html_path: Path = Path("/var/lib/iact/reports/dora.html")
    history_days: int = Field(default=90, ge=1, le=3650)
    """Days of snapshots in the trend charts (and computed by ``compute --backfill``)."""


class QualitySettings(FrozenModel):
    stale_incident_after_days: int = Field(default=7, ge=1)
    unlinked_change_after_days: int = Field(default=7, ge=1)
    anomaly_days: int = Field(default=30, ge=7, le=365)


class DoraConfig(FrozenModel):
    mysql: MySQLSettings = MySQLSettings()
    retry: RetrySettings = RetrySettings()
    metrics: MetricsSettings = MetricsSettings()
    report: ReportSettings = ReportSettings()
    quality: QualitySettings = QualitySettings()


def load(
    path: Path | None, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> DoraConfig:
    """The configuration; ``path`` None means the default file if it exists, else defaults only."""
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    return load_config(DoraConfig, path, env_prefix=ENV_PREFIX, overrides=overrides, environ=environ)
