"""Configuration of ``iact-agent audit`` (``/etc/iact/audit.toml``, written by ``roles/audit``).

Precedence, lowest first: defaults < TOML file < ``IACT_AUDIT__<SECTION>__<FIELD>`` environment variables <
command line. No secret is written here: MySQL credentials come from option files the mysql role (or the
audit role) writes, the CQL password from the health agent's 0640 reader file.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from ..config import FrozenModel, load_config
from ..health.config import CommaList

ENV_PREFIX = "IACT_AUDIT"
DEFAULT_CONFIG_PATH = Path("/etc/iact/audit.toml")


def _absolute(paths: list[str]) -> list[str]:
    bad = [p for p in paths if not p.startswith("/")]
    if bad:
        raise ValueError(f"not absolute paths: {', '.join(bad)}")
    return paths


class RecordSettings(FrozenModel):
    defaults_file: Path = Path("/etc/iact/mysql-audit.cnf")
    """Option file of ``iact_audit``, which may only insert runs and results (``audit_runs``, ``audit_results``)."""
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)


class SoftwareSettings(FrozenModel):
    """Where the RNF-002 checks look for installed software."""

    path: CommaList = Field(default_factory=lambda: ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
                                                     "/sbin", "/bin"])
    """Folders of the system PATH whose programs are listed."""
    venv_roots: CommaList = Field(default_factory=lambda: ["/opt", "/srv", "/usr/local", "/var/lib", "/home",
                                                           "/root", "/tmp", "/var/tmp"])  # noqa: S108 - searched
    """Folders searched for virtualenvs (a ``pyvenv.cfg``); the system site folders are always read."""
    venv_skip: CommaList = Field(default_factory=lambda: ["/var/lib/mysql", "/var/lib/cassandra", "/var/lib/docker",
                                                          "/var/lib/apt", "/var/lib/dpkg"])
    """Folders not searched (data volumes: large, and no Python environment lives there)."""
    venv_max_depth: int = Field(default=5, ge=1, le=12)
    venv_max_dirs: int = Field(default=50_000, ge=100, le=2_000_000)
    """Folders visited at most; a search that stops here is an error of the checks that need it, never a pass."""

    _abs = field_validator("path", "venv_roots", "venv_skip")(_absolute)


class MysqlSettings(FrozenModel):
    """The MariaDB server of this host (the metrics store), read through a localhost-only account."""

    enabled: bool = False
    """This host runs the metrics store (the checks also run when a server is found without this)."""
    defaults_file: Path = Path("/etc/iact/mysql-audit_read.cnf")
    """Option file of ``iact_audit_read``: SELECT on a few columns of ``mysql.user`` and SHOW DATABASES."""
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    config_dir: str = "/etc/mysql"
    """Folder of the server's configuration files (owner and modes are checked)."""
    service_user: str = "mysql"


class CassandraSettings(FrozenModel):
    enabled: bool = False
    """This host runs a Cassandra node (the checks also run when a node is found without this)."""
    username: str | None = None
    """A login role without privileges on ``system_views`` (the health agent's ``reader``): proves authorization
    is enforced. Unset: the authorization check reads only the configuration."""
    password_file: Path | None = None
    ca_file: Path | None = None
    """CA (PEM) of the nodes' certificates, for the TLS probes; unset: the system's trust store."""
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    service_user: str = "cassandra"
    required_audit_categories: CommaList = Field(default_factory=lambda: ["AUTH", "DDL", "DCL"])


class WebSettings(FrozenModel):
    enabled: bool = False
    """This host runs the web layer (the checks also run when its unit is found without this)."""
    unit: str = "iact-web.service"
    url: str = "https://localhost/"
    """Base URL of the site as people reach it (its host name is sent as Host and checked in TLS)."""
    connect_address: str = "127.0.0.1"
    """Where the probes connect: the local front end, whatever the URL's name resolves to."""
    trust_file: Path | None = None
    """PEM file the site's certificate must chain to: its CA, or the served certificate itself (pinned)."""
    login_path: str = "/login/"
    reflect_parameter: str = "next"
    """A query parameter the login page writes back into the page (the XSS probe sends a script tag in it)."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    required_headers: CommaList = Field(default_factory=lambda: [
        "Strict-Transport-Security", "Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
        "Referrer-Policy"])


class CredentialRule(FrozenModel):
    """Files that hold a secret (globs; ``**`` is any folder depth), and who may own and read them."""

    paths: CommaList = Field(min_length=1)
    owners: CommaList = Field(min_length=1)
    """Users that may own such a file: root, or the service that reads its own secret (a JVM's JMX password file
    must belong to the JVM's user)."""
    groups: CommaList = Field(min_length=1)
    """Groups that may have read access to such a file."""

    _abs = field_validator("paths")(_absolute)


def _default_rules() -> list[CredentialRule]:
    return [
        CredentialRule(paths=["/etc/iact/**/*.cnf", "/etc/iact/**/*.password", "/etc/iact/**/*.key",
                              "/etc/iact/**/*secret*", "/etc/iact/**/accounts.json"],
                       owners=["root"], groups=["root", "iact", "iact-web"]),
        # The collector's own password, readable by its own user only (roles/collector: 0400, not group iact).
        CredentialRule(paths=["/etc/iact/cassandra-collector.password"], owners=["iact-collector"], groups=["root"]),
        CredentialRule(paths=["/etc/cassandra/**/*password*", "/etc/cassandra/**/*.key",
                              "/etc/cassandra/**/*keystore*"],
                       owners=["root", "cassandra"], groups=["root", "cassandra"]),
        CredentialRule(paths=["/etc/mysql/debian.cnf", "/etc/mysql/**/*.key"], owners=["root", "mysql"],
                       groups=["root", "mysql"]),
        CredentialRule(paths=["/root/.cassandra/cqlshrc", "/root/.my.cnf"], owners=["root"], groups=["root"]),
    ]


class CredentialSettings(FrozenModel):
    """Every file a rule names must be at most 0640, owned and readable as one of the rules naming it allows."""

    rules: list[CredentialRule] = Field(default_factory=_default_rules)
    extra_rules: list[CredentialRule] = Field(default_factory=list)
    """More rules, checked besides ``rules`` (an inventory adds its own without repeating the built-in ones)."""

    @property
    def all_rules(self) -> list[CredentialRule]:
        return [*self.rules, *self.extra_rules]


class UnitSettings(FrozenModel):
    max_exposure: dict[str, float] = Field(default_factory=dict)
    """Unit -> the ``systemd-analyze security`` exposure its role documents; a higher score fails."""

    @field_validator("max_exposure")
    @classmethod
    def _range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [u for u, v in value.items() if not 0.0 <= v <= 10.0]
        if bad:
            raise ValueError(f"exposure must be 0.0..10.0: {', '.join(bad)}")
        return value


class Waiver(FrozenModel):
    """A failure accepted for a while (InSpec's waivers): the check still runs and its result still says ``fail``
    with its evidence, but until ``until`` (inclusive) it does not fail the audit. An expired waiver is ignored
    and says so in the result."""

    check: str = Field(pattern=r"^[a-z0-9_]+[.][a-z0-9_]+$", max_length=64)
    """The check id, e.g. ``cassandra.client_tls``."""
    reason: str = Field(min_length=10, max_length=300)
    """Why, and what will end it (e.g. the issue that fixes it)."""
    until: date


class AuditConfig(FrozenModel):
    host: str = Field(default_factory=socket.getfqdn, min_length=1, max_length=255)
    """Value of the ``host`` column: this machine's name (as the health agent writes it)."""
    state_dir: Path = Path("/var/lib/iact/audit")
    """Where ``report.json`` and ``report.md`` of the last run are written."""
    command_timeout_s: float = Field(default=60.0, gt=0, le=600)
    record: RecordSettings = Field(default_factory=RecordSettings)
    software: SoftwareSettings = Field(default_factory=SoftwareSettings)
    mysql: MysqlSettings = Field(default_factory=MysqlSettings)
    cassandra: CassandraSettings = Field(default_factory=CassandraSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    credentials: CredentialSettings = Field(default_factory=CredentialSettings)
    units: UnitSettings = Field(default_factory=UnitSettings)
    waivers: list[Waiver] = Field(default_factory=list)


def load(path: Path | None, overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> AuditConfig:
    """The configuration; ``path`` None means the default file if it exists, else defaults only."""
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    return load_config(AuditConfig, path, env_prefix=ENV_PREFIX, overrides=overrides, environ=environ)
