"""Fixtures of the collector's integration tests: a real Cassandra, named by environment variables.

``IACT_TEST_CASSANDRA_HOSTS``          comma-separated contact points (required; the tests skip without it)
``IACT_TEST_CASSANDRA_DC``             local datacenter (required)
``IACT_TEST_CASSANDRA_USER``           user allowed to write and read the log table (optional, with the next)
``IACT_TEST_CASSANDRA_PASSWORD_FILE``  0600 file with that user's password
``IACT_TEST_CASSANDRA_PORT``           CQL port (default 9042)
``IACT_TEST_CASSANDRA_CA``             CA certificate (PEM) of the nodes: TLS, certificate and address verified
                                        (unset: plain CQL; the stack requires TLS and sets it)
``IACT_TEST_CASSANDRA_KEYSPACE``       default ``iact_logs``
``IACT_TEST_CASSANDRA_TABLE``          default ``infrastructure_logs`` (the shared table of the lines written before
                                        the per-host tables: no collector writes it any more, so the tests'
                                        rows meet no real host's; the stack's tests write it as the admin.
                                        With a collector host's own role, name that host's own table)
``IACT_TEST_CASSANDRA_CONSISTENCY``    default ``LOCAL_QUORUM``
``IACT_TEST_CASSANDRA_CREATE_SCHEMA``  ``1``: create the keyspace (RF 1) and table if missing (a
                                        developer's single node; on the stack the Cassandra role creates them)

Every test writes under its own ``host`` value, so tests never see each other's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy
from iact_agents.config import verifying_context

ENV = "IACT_TEST_CASSANDRA_"

# The table as roles/cassandra creates it (vars/main.yml: __cassandra_log_columns, partition key and
# clustering); used only with IACT_TEST_CASSANDRA_CREATE_SCHEMA=1.
TABLE_CQL = """
CREATE TABLE IF NOT EXISTS {ks}.{table} (
  host text, source text, day date, ts timestamp, position text, facility text, severity text,
  program text, pid int, message text, raw text, parse_error boolean, fields map<text, text>,
  ingested_at timestamp,
  PRIMARY KEY ((host, source, day), ts, position)
) WITH CLUSTERING ORDER BY (ts DESC, position ASC)
"""


@dataclass(frozen=True)
class CassandraTarget:
    hosts: list[str]
    port: int
    dc: str
    user: str | None
    password_file: str | None
    keyspace: str
    table: str
    consistency: str
    ca_file: str | None = None

    def toml(self) -> str:
        lines = [
            "[cassandra]",
            f"contact_points = {self.hosts!r}".replace("'", '"'),
            f"port = {self.port}",
            f'local_dc = "{self.dc}"',
            f'keyspace = "{self.keyspace}"',
            f'table = "{self.table}"',
            f'consistency = "{self.consistency}"',
            "connect_timeout_s = 5",
            "request_timeout_s = 10",
        ]
        if self.user:
            lines += [f'username = "{self.user}"', f'password_file = "{self.password_file}"']
        if self.ca_file:
            lines.append(f'ssl_ca_file = "{self.ca_file}"')
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def cassandra_target() -> CassandraTarget:
    hosts = os.environ.get(ENV + "HOSTS", "")
    dc = os.environ.get(ENV + "DC", "")
    if not hosts or not dc:
        pytest.skip(f"no Cassandra to test against: set {ENV}HOSTS and {ENV}DC (and {ENV}USER with "
                    f"{ENV}PASSWORD_FILE when authentication is on); the stack scenario sets them")
    user = os.environ.get(ENV + "USER") or None
    password_file = os.environ.get(ENV + "PASSWORD_FILE") or None
    if (user is None) != (password_file is None):
        pytest.skip(f"set both {ENV}USER and {ENV}PASSWORD_FILE, or neither")
    return CassandraTarget(
        hosts=[h.strip() for h in hosts.split(",") if h.strip()],
        port=int(os.environ.get(ENV + "PORT", "9042")),
        dc=dc,
        user=user,
        password_file=password_file,
        keyspace=os.environ.get(ENV + "KEYSPACE", "iact_logs"),
        table=os.environ.get(ENV + "TABLE", "infrastructure_logs"),
        consistency=os.environ.get(ENV + "CONSISTENCY", "LOCAL_QUORUM"),
        ca_file=os.environ.get(ENV + "CA") or None,
    )


@pytest.fixture(scope="session")
def cql(cassandra_target: CassandraTarget) -> Iterator[Any]:
    t = cassandra_target
    auth = None
    if t.user and t.password_file:
        auth = PlainTextAuthProvider(t.user, Path(t.password_file).read_text().strip())
    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=t.dc),
                               consistency_level=ConsistencyLevel.name_to_value[t.consistency], request_timeout=30)
    cluster = Cluster(t.hosts, port=t.port, auth_provider=auth, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      protocol_version=5, reconnection_policy=ExponentialReconnectionPolicy(0.5, 5),
                      ssl_context=verifying_context(Path(t.ca_file)) if t.ca_file else None)
    session = cluster.connect()
    if os.environ.get(ENV + "CREATE_SCHEMA") == "1":
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {t.keyspace} WITH replication = "
                        f"{{'class': 'NetworkTopologyStrategy', '{t.dc}': 1}}")
        session.execute(TABLE_CQL.format(ks=t.keyspace, table=t.table))
    ks = cluster.metadata.keyspaces.get(t.keyspace)
    if ks is None or t.table not in ks.tables:
        cluster.shutdown()
        pytest.skip(f"table {t.keyspace}.{t.table} does not exist (run the Cassandra role, or set "
                    f"{ENV}CREATE_SCHEMA=1 on a throwaway node)")
    yield session
    cluster.shutdown()


class RowCounter:
    def __init__(self, session: Any, target: CassandraTarget, host: str) -> None:
        self.session = session
        self.target = target
        self.host = host
        self._select = session.prepare(
            f"SELECT position, message FROM {target.keyspace}.{target.table} WHERE host = ? AND source = ? AND day = ?"
        )

    def rows(self, source: str, days: set[date]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for day in sorted(days):
            out += [(r.position, r.message) for r in self.session.execute(self._select, (self.host, source, day))]
        return out


@pytest.fixture
def counter(cql: Any, cassandra_target: CassandraTarget, test_host: str) -> RowCounter:
    return RowCounter(cql, cassandra_target, test_host)
