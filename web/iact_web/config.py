"""The web layer's configuration: one frozen, typed model loaded at start-up (``web.example.toml`` documents
every key).

The file is ``$IACT_WEB_CONFIG`` (default ``/etc/iact/web.toml``). Precedence, lowest first: the model's
defaults < the TOML file < ``IACT_WEB__<SECTION>__<FIELD>`` environment variables (lists as comma-separated
text). Secrets are never in the file: it names files (mode 0600/0640) holding them, read with
:func:`iact_agents.config.read_secret_file` and kept as :class:`~pydantic.SecretStr` (``repr`` shows
``**********``): the Django secret key, the MySQL option files (user, password, host, port, database,
optional ``ssl-ca``), the Cassandra password of the read-only ``reader`` role.

The loader, the secret-file reader and the credential model are the agents' (``iact_agents.config``):
one implementation of precedence and secret handling for the whole project.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from iact_agents.config import CommaList, CqlCredentials, FrozenModel, load_config, read_secret_file
from iact_agents.errors import ConfigError
from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

ENV_PREFIX = "IACT_WEB"
CONFIG_ENV = "IACT_WEB_CONFIG"
DEFAULT_CONFIG_PATH = Path("/etc/iact/web.toml")

API_VERSIONS: tuple[str, ...] = ("v1", "v2")
"""Every API version the code serves, oldest first; the last one is the current version."""

# The written deprecation policy (README.md, "API versions and deprecation"): a version's sunset is 6 to 12
# months after its deprecation date.
SUNSET_MIN = timedelta(days=182)
SUNSET_MAX = timedelta(days=366)

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_none)]
"""A path that TOML (which has no null) or the environment can unset with an empty string."""


class ServerSettings(FrozenModel):
    debug: bool = False
    """Django DEBUG. Never true in a deployment (``iact-web check --deploy`` fails then); tests set it."""
    allowed_hosts: CommaList = Field(default_factory=lambda: ["localhost"], min_length=1)
    """Host names the site answers to (Django ALLOWED_HOSTS)."""
    csrf_trusted_origins: CommaList = Field(default_factory=list)
    """Origins (``https://name[:port]``) trusted for CSRF-protected POSTs, e.g. the public URL behind nginx."""
    secret_key_file: Path = Path("/etc/iact/web-secret-key")
    """File (0600/0640, at least 50 characters) holding Django's SECRET_KEY."""
    behind_proxy: bool = True
    """Trust ``X-Forwarded-Proto`` and ``X-Real-IP`` set by the local nginx (the app listens on a unix socket
    only nginx can reach). False: the peer address is the client and TLS is never assumed."""
    static_root: Path = Path("/var/lib/iact-web/static")
    """Where ``iact-web collectstatic`` copies the static files for nginx to serve."""
    static_url: str = "/static/"
    secure_cookies: bool = True
    """Session and CSRF cookies only over HTTPS (Secure flag); HSTS and the HTTPS redirect follow it."""
    hsts_seconds: int = Field(default=31_536_000, ge=0)
    """Strict-Transport-Security max-age when ``secure_cookies`` is on (0: no HSTS header)."""
    hsts_include_subdomains: bool = True
    """HSTS for the host's own subdomains too (``*.<this host name>``)."""
    hsts_preload: bool = False
    """Send HSTS ``preload``: consent to browsers' preload lists, a decision for the domain's owner (hard to
    undo); off, ``check --deploy``'s W021 is silenced for that reason."""
    session_age_s: int = Field(default=8 * 3600, ge=300, le=30 * 86400)
    """Lifetime of a login session (sessions live in MySQL, table ``django_session``)."""
    poll_interval_s: int = Field(default=15, ge=5, le=3600)
    """How often open pages poll ``/api/v1/live`` for fresh numbers."""

    def secret_key(self) -> SecretStr:
        key = read_secret_file(self.secret_key_file)
        if len(key.get_secret_value()) < 50:
            raise ConfigError(f"{self.secret_key_file}: a secret key needs at least 50 characters")
        return key

    @field_validator("static_url")
    @classmethod
    def _slashes(cls, value: str) -> str:
        if not (value.startswith("/") and value.endswith("/")):
            raise ValueError("must start and end with '/'")
        return value


class MySQLSettings(FrozenModel):
    defaults_file: Path = Path("/etc/iact/mysql-app.cnf")
    """Option file (``[client]`` user, password, host, port, database, optional ssl-ca) of ``iact_app``, the
    app's account (roles/mysql/vars/main.yml lists its grants: DDL on Django's own tables only)."""
    connect_timeout_s: int = Field(default=5, ge=1, le=120)


class LogStoreSettings(CqlCredentials):
    """The Cassandra log store, read through the read-only ``reader`` role."""

    contact_points: CommaList = Field(default_factory=lambda: ["127.0.0.1"], min_length=1)
    port: int = Field(default=9042, ge=1, le=65535)
    local_dc: str = Field(default="dc1", min_length=1)
    keyspace: str = "iact_logs"
    table: str = "infrastructure_logs"
    """Shared table of the lines written before the per-host tables, read after a host's own table while it
    exists. Each collector host's own table is found in the keyspace's schema (:mod:`iact_agents.logtables`)."""
    username: str | None = "reader"
    password_file: Path | None = Path("/etc/iact/cassandra-reader.password")
    ssl_ca_file: OptionalPath = None
    """CA certificate (PEM) to verify the nodes with; unset: plain CQL."""
    consistency: Literal["ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM"] = "LOCAL_QUORUM"
    protocol_version: int = Field(default=5, ge=3, le=5)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    request_timeout_s: float = Field(default=5.0, gt=0, le=120)
    page_size_max: int = Field(default=200, ge=1, le=1000)
    """Largest page a log search may ask for (``page_size`` above it is a 400)."""
    page_size_default: int = Field(default=50, ge=1, le=1000)
    range_days_max: int = Field(default=7, ge=1, le=90)
    """Longest time range of one search, in days (each day is one partition read)."""
    suggested_sources: CommaList = Field(default_factory=lambda: [
        "/var/log/syslog", "/var/log/auth.log", "/var/log/kern.log", "/var/log/iact/web-app.json.log"])
    """Sources offered in the search form (any source can be typed)."""

    @field_validator("keyspace", "table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError("must be a CQL identifier: a letter, then letters, digits or _ (48 at most)")
        return value

    @model_validator(mode="after")
    def _default_in_range(self) -> LogStoreSettings:
        if self.page_size_default > self.page_size_max:
            raise ValueError("page_size_default must not exceed page_size_max")
        return self


class DoraSettings(FrozenModel):
    config_file: OptionalPath = Path("/etc/iact/dora.toml")
    """The DORA agent's config: the web pages use its metric definitions (production environments,
    attribution window, rollbacks, benchmark year) so their numbers are the agent's. Missing file: the
    agent's defaults, as the agent itself would."""
    window_presets: list[Annotated[int, Field(ge=1, le=3650)]] = Field(
        default_factory=lambda: [7, 30, 90], min_length=1)
    """Window lengths in days offered as presets (the windows end today, UTC), 1..3650 each."""
    trend_days: int = Field(default=90, ge=7, le=3650)
    """Days of stored daily snapshots (``dora_metrics``) drawn in the trend charts."""
    range_days_max: int = Field(default=3660, ge=1, le=36600)
    """Longest ``from``..``to`` range a request may ask for."""

    @field_validator("window_presets")
    @classmethod
    def _sorted(cls, value: list[int]) -> list[int]:
        return sorted(set(value))


class RateLimitSettings(FrozenModel):
    """Per client (API token or user; per address for anonymous calls), counted in MariaDB (README.md)."""

    enabled: bool = True
    burst_limit: int = Field(default=100, ge=1)
    burst_window_s: int = Field(default=60, ge=1, le=86400)
    sustained_limit: int = Field(default=1000, ge=1)
    sustained_window_s: int = Field(default=3600, ge=1, le=7 * 86400)
    lock_retries: int = Field(default=3, ge=1, le=10)
    """Tries of the counting transaction when MariaDB reports a deadlock or lock wait timeout."""

    @model_validator(mode="after")
    def _windows(self) -> RateLimitSettings:
        if self.sustained_window_s < self.burst_window_s:
            raise ValueError("sustained_window_s must not be shorter than burst_window_s")
        return self


class ApiVersionSettings(FrozenModel):
    deprecated_at: datetime | None = None
    """When the version is (or will be) deprecated: answers carry ``Deprecation: @<epoch>`` (RFC 9745)."""
    sunset_at: datetime | None = None
    """When it stops answering (410 Gone from then on); 6 to 12 months after ``deprecated_at``."""

    @field_validator("deprecated_at", "sunset_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2027-01-01T00:00:00Z)")
        return None if value is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _policy(self) -> ApiVersionSettings:
        if self.sunset_at is None:
            return self
        if self.deprecated_at is None:
            raise ValueError("sunset_at needs deprecated_at: a version is deprecated before it is sunset")
        gap = self.sunset_at - self.deprecated_at
        if not SUNSET_MIN <= gap <= SUNSET_MAX:
            raise ValueError(
                f"sunset_at must be 6 to 12 months ({SUNSET_MIN.days}..{SUNSET_MAX.days} days) after "
                f"deprecated_at (the deprecation policy); it is {gap.days} days"
            )
        return self


class ApiSettings(FrozenModel):
    versions: dict[str, ApiVersionSettings] = Field(default_factory=dict)
    """Deprecation dates per version (``[api.versions.v1]``); a version not listed is current."""
    page_size_default: int = Field(default=50, ge=1, le=10_000)
    page_size_max: int = Field(default=500, ge=1, le=10_000)

    @field_validator("versions")
    @classmethod
    def _known(cls, value: dict[str, ApiVersionSettings]) -> dict[str, ApiVersionSettings]:
        unknown = sorted(set(value) - set(API_VERSIONS))
        if unknown:
            raise ValueError(f"unknown API versions {unknown}; the code serves {list(API_VERSIONS)}")
        if value.get(API_VERSIONS[-1], ApiVersionSettings()).deprecated_at is not None:
            raise ValueError(f"{API_VERSIONS[-1]} is the newest version: it has no successor to deprecate it for")
        return value

    @model_validator(mode="after")
    def _default_in_range(self) -> ApiSettings:
        if self.page_size_default > self.page_size_max:
            raise ValueError("page_size_default must not exceed page_size_max")
        return self


class LoggingSettings(FrozenModel):
    file: OptionalPath = Path("/var/log/iact/web-app.json.log")
    """JSON-lines log (the collector ships ``/var/log/iact/*.json.log``); ``""``: stderr only."""
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True
    """One line per request (method, path, status, duration, client) in the same file."""


class AuditSettings(FrozenModel):
    token_use_interval_s: int = Field(default=300, ge=0, le=86400)
    """A client's token use is written to the audit trail at most once per this many seconds (0: every
    request); rejected tokens are written every time."""


class WebConfig(FrozenModel):
    server: ServerSettings = ServerSettings()
    mysql: MySQLSettings = MySQLSettings()
    logs: LogStoreSettings = LogStoreSettings()
    dora: DoraSettings = DoraSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    api: ApiSettings = ApiSettings()
    logging: LoggingSettings = LoggingSettings()
    audit: AuditSettings = AuditSettings()


def config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$IACT_WEB_CONFIG`` if set (it must exist), else the default file if it exists, else None."""
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV)
    if named:
        return Path(named)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> WebConfig:
    """The configuration (defaults < file < environment), or :class:`iact_agents.errors.ConfigError`."""
    return load_config(WebConfig, path if path is not None else config_path(environ), env_prefix=ENV_PREFIX,
                       environ=environ)
