"""The collector's configuration: one frozen, typed model, loaded with defaults < file < env < CLI.

Environment variables are ``IACT_COLLECT__<SECTION>__<FIELD>``, for example
``IACT_COLLECT__CASSANDRA__CONTACT_POINTS=10.0.0.1,10.0.0.2`` (lists given as comma-separated text).
The password is never in this file: ``cassandra.password_file`` names a 0600/0640 file. With
``cassandra.ssl_ca_file`` the collector talks TLS and verifies each node's certificate and address.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ..config import CqlClient, FrozenModel, load_config

ENV_PREFIX = "IACT_COLLECT"
DEFAULT_CONFIG_PATH = Path("/etc/iact/collector.toml")

Consistency = Literal["ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"]
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(_comma_list)]


class CassandraSettings(CqlClient):
    contact_points: CommaList = Field(default_factory=lambda: ["127.0.0.1"], min_length=1)
    """Hosts (names or addresses) the driver first connects to; it discovers the rest."""
    port: int = Field(default=9042, ge=1, le=65535)
    local_dc: str = Field(default="dc1", min_length=1)
    """Datacenter whose nodes get the writes (token-aware routing inside it)."""
    keyspace: str = "iact_logs"
    table: str = "infrastructure_logs"
    consistency: Consistency = "LOCAL_QUORUM"
    username: str | None = None
    password_file: Path | None = None
    """File (mode 0600/0640) holding the password of ``username``."""
    concurrency: int = Field(default=32, ge=1, le=1024)
    """Requests (single-partition batches) in flight at once, per batch being written."""
    partition_batch_rows: int = Field(default=100, ge=1, le=1000)
    """Rows of one partition sent together as one unlogged batch (1: no batches). Smaller batches put more
    requests in flight for the same rows, but each request costs the cluster and the client: on the lab the
    driver alone peaked at 8 859-13 494 rows/s with 25-row batches, 12 764 with 50 and 17 110-23 201 with 100
    (bench/README.md, runs perf17b-*)."""
    partition_batch_bytes: int = Field(default=64 << 10, ge=256, le=1 << 20)
    """Approximate size limit of such a batch. Cassandra applies batch_size_warn_threshold and
    batch_size_fail_threshold only to batches of several partitions (CASSANDRA-10876); one partition's batch is
    one mutation, bounded by max_mutation_size (half a commit log segment, 16 MiB by default)."""
    protocol_version: int = Field(default=5, ge=3, le=5)
    """Native protocol version (Cassandra 4.0 and later speak 5); fixed to skip the driver's probing."""
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    request_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("keyspace", "table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError("must be a CQL identifier: a letter, then letters, digits or _ (48 at most)")
        return value



class FileSource(FrozenModel):
    paths: CommaList = Field(min_length=1)
    """Absolute paths or glob patterns (``/var/log/iact/*.json.log``); globs are re-scanned."""
    format: Literal["syslog", "json", "raw"] = "syslog"

    @field_validator("paths")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        for p in value:
            if not p.startswith("/"):
                raise ValueError(f"{p!r} is not an absolute path")
        return value


class JournalSource(FrozenModel):
    enabled: bool = False
    journalctl: str = "journalctl"
    """The journalctl program (a path, or a name looked up in PATH)."""
    extra_args: CommaList = Field(default_factory=list)
    """More journalctl arguments, e.g. ``--directory=/var/log/journal`` or a ``--unit`` filter."""
    start: Literal["head", "tail"] = "head"
    """Without a saved cursor: ship everything the journal still holds (head) or only new entries."""
    source: str = Field(default="journal", min_length=1)
    """Value of the ``source`` column for journal rows."""


class CollectorConfig(FrozenModel):
    host: str = Field(default_factory=socket.gethostname, min_length=1)
    """Value of the ``host`` column: this machine's name."""
    state_dir: Path = Path("/var/lib/iact-collector")
    """Where the committed offsets and cursors are kept."""
    syslog_timezone: str = "UTC"
    """Zone of the traditional syslog timestamps (``Nov 27 18:33:23`` carries none)."""
    start_at: Literal["beginning", "end"] = "beginning"
    """A file seen for the first time, on the first start: read it all, or only what comes next."""
    store_raw: Literal["always", "errors"] = "errors"
    """Write the ``raw`` column for every line, or only for lines that did not parse."""
    batch_lines: int = Field(default=250, ge=1, le=100_000)
    """Lines per read batch at most (fewer when ``rows_in_flight`` leaves less room); by default the rows in
    flight fill ``batches_in_flight`` batches."""
    batch_bytes: int = Field(default=512 << 10, ge=4096, le=64 << 20)
    """Bytes per read batch at most: raw bytes held are at most ``batches_in_flight`` x this."""
    batches_in_flight: int = Field(default=4, ge=1, le=64)
    """Batches being written at once, from all sources together (offsets are still committed in order per
    source, after acknowledgement); 1 is the serial loop."""
    rows_in_flight: int = Field(default=1000, ge=1, le=1_000_000)
    """Records read and not yet committed, all sources together: what bounds memory. A row in flight is held
    as its encoded values (about 1 KB of Python objects, 2 KB of resident memory measured on the lab, against
    some 57 MiB for the interpreter, the driver and its connection): 1 000 rows peaked at 59.5 MiB shipping,
    2 000 at 63.5 MiB, and 1 600 peaked at 63.7 MiB through a 300 s outage of every node. More rows in flight
    did not ship more (1 000 to 8 000 rows: -4 % to +21 % within a run, the runs' noise), so the default keeps
    the room under 64 MiB (bench/README.md)."""
    max_line_bytes: int = Field(default=64 << 10, ge=256, le=16 << 20)
    fingerprint_bytes: int = Field(default=1024, ge=16, le=1 << 20)
    poll_interval_s: float = Field(default=0.25, gt=0, le=60)
    rotate_wait_s: float = Field(default=2.0, ge=0, le=3600)
    """How long a rotated file must stay unchanged before we move on to the new one."""
    rescan_interval_s: float = Field(default=10.0, gt=0, le=3600)
    drain_timeout_s: float = Field(default=10.0, ge=0, le=3600)
    """On SIGTERM: how long to keep trying to deliver the batch in flight."""
    retry_initial_s: float = Field(default=0.5, gt=0, le=60)
    retry_max_s: float = Field(default=30.0, gt=0, le=3600)
    quarantine_max_bytes: int = Field(default=16 << 20, ge=64 << 10, le=1 << 30)
    """Size of the local quarantine file of poison records; one older file of the same size is kept."""
    cassandra: CassandraSettings = Field(default_factory=CassandraSettings)
    files: list[FileSource] = Field(default_factory=list)
    journal: JournalSource = Field(default_factory=JournalSource)

    @field_validator("syslog_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CollectorConfig:
        if self.max_line_bytes > self.batch_bytes:
            raise ValueError("max_line_bytes must not exceed batch_bytes")
        if self.fingerprint_bytes > self.max_line_bytes:
            raise ValueError("fingerprint_bytes must not exceed max_line_bytes")
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError("retry_initial_s must not exceed retry_max_s")
        if not self.files and not self.journal.enabled:
            raise ValueError("no sources: add a [[files]] table or set journal.enabled = true")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.syslog_timezone)


def load(path: Path | None, *, overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> CollectorConfig:
    """Load and validate the configuration (raises :class:`~iact_agents.errors.ConfigError`)."""
    return load_config(CollectorConfig, path, env_prefix=ENV_PREFIX, overrides=overrides, environ=environ)
