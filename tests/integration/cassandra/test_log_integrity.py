"""Log integrity (issue 14): one collector host's credentials cannot delete, truncate or overwrite another
host's log lines, nor truncate its own.

Each collector host logs in as a role of its own with MODIFY on a table of its own (roles/cassandra README,
"Log integrity"). The test takes one collector host (one that is not a Cassandra node when there is one) and
logs in with exactly what its collector uses: the role, table and CA named by its /etc/iact/collector.toml
and the password in its password file (TLS verifying the node's certificate and address, as the collector
does). From the controller: Cassandra decides by the role, not by the client's address.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
import testinfra
from cassandra import InvalidRequest, Unauthorized
from cassandra.cluster import Session
from cassandra_testlib import Node, connect, inventory_path, verifying_context
from iact_agents.logtables import COMMENT_PREFIX, read_tables
from testinfra.utils.ansible_runner import AnsibleRunner

KEYSPACE = "iact_logs"
DAY = date(1970, 1, 2)  # a partition no collector writes


@dataclass(frozen=True)
class Writer:
    host: str  # inventory name, the `host` its collector writes
    role: str
    table: str
    password: str
    ca_pem: str | None


def _writer(name: str, inventory: str | None) -> Writer:
    host = testinfra.get_host(f"ansible://{name}" + (f"?ansible_inventory={inventory}" if inventory else ""))
    conf = tomllib.loads(host.file("/etc/iact/collector.toml").content_string)
    cass = conf["cassandra"]
    assert cass["keyspace"] == KEYSPACE, cass
    ca = host.file(cass["ssl_ca_file"]).content_string if cass.get("ssl_ca_file") else None
    password = host.file(cass["password_file"]).content_string.strip()
    return Writer(conf["host"], cass["username"], cass["table"], password, ca)


@pytest.fixture(scope="module")
def writers(pytestconfig: pytest.Config) -> tuple[Writer, Writer]:
    """(the host under test, another collector host)."""
    inventory = inventory_path(pytestconfig)
    runner = AnsibleRunner.get_runner(inventory)
    collectors = runner.get_hosts("collectors")
    if len(collectors) < 2:
        pytest.fail("the inventory needs two collectors hosts for this test")
    nodes = set(runner.get_hosts("cassandra"))
    first = next((h for h in collectors if h not in nodes), collectors[0])
    other = next(h for h in collectors if h != first)
    return _writer(first, inventory), _writer(other, inventory)


@pytest.fixture(scope="module")
def as_writer(nodes: list[Node], writers: tuple[Writer, Writer]) -> Iterator[Session]:
    """A session of the host under test's own role, pinned to the first node, with the host's CA."""
    me = writers[0]
    tls = verifying_context(me.ca_pem) if me.ca_pem else None
    cluster, session = connect(nodes[0], me.role, me.password, tls)
    yield session
    cluster.shutdown()


def test_every_writer_has_its_own_table_and_role(nodes: list[Node], session_on, writers) -> None:
    admin = session_on(nodes[0])
    tables = read_tables(admin, KEYSPACE)
    for w in writers:
        assert tables.by_host.get(w.host) == w.table, (w.host, tables.by_host)
        perms = {(r.permission, r.resource) for r in admin.execute(f'LIST ALL PERMISSIONS OF "{w.role}" NORECURSIVE')}
        assert perms == {("MODIFY", f"<table {KEYSPACE}.{w.table}>")}, (w.role, perms)
    me, other = writers
    assert me.table != other.table and me.role != other.role and me.password != other.password
    # the comment the readers map by is the one the role wrote
    row = admin.execute("SELECT comment FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
                        [KEYSPACE, me.table]).one()
    assert row.comment == COMMENT_PREFIX + me.host


def test_own_insert_works(nodes: list[Node], session_on, writers, as_writer: Session) -> None:
    me = writers[0]
    source = f"itest-integrity-{uuid.uuid4().hex[:10]}"
    as_writer.execute(
        f'INSERT INTO {KEYSPACE}."{me.table}" (host, source, day, ts, position, message, parse_error) '
        "VALUES (%s, %s, %s, %s, 'itest:0', 'own write', false) USING TTL 600",
        [me.host, source, DAY, datetime(1970, 1, 2, tzinfo=UTC)])
    admin = session_on(nodes[0])
    try:
        found = admin.execute(f'SELECT message FROM {KEYSPACE}."{me.table}" '
                              "WHERE host = %s AND source = %s AND day = %s", [me.host, source, DAY]).one()
        assert found is not None and found.message == "own write"
    finally:
        admin.execute(f'DELETE FROM {KEYSPACE}."{me.table}" WHERE host = %s AND source = %s AND day = %s',
                      [me.host, source, DAY])


@pytest.mark.parametrize("statement", [
    'INSERT INTO {ks}."{t}" (host, source, day, ts, position, message) '
    "VALUES ('{h}', 'itest-integrity', '1970-01-02', 0, 'itest:0', 'overwritten') USING TTL 60",
    "DELETE FROM {ks}.\"{t}\" WHERE host = '{h}' AND source = 'itest-integrity' AND day = '1970-01-02'",
    'TRUNCATE {ks}."{t}"',
    'DROP TABLE {ks}."{t}"',
    'ALTER TABLE {ks}."{t}" WITH comment = \'iact-ops log lines of host intruder\'',
    'SELECT * FROM {ks}."{t}" LIMIT 1',
], ids=["insert", "delete", "truncate", "drop", "alter", "select"])
def test_another_host_s_table_is_refused(writers, as_writer: Session, statement: str) -> None:
    other = writers[1]
    with pytest.raises(Unauthorized):
        as_writer.execute(statement.format(ks=KEYSPACE, t=other.table, h=other.host))


@pytest.mark.parametrize("statement", [
    'INSERT INTO {ks}."{t}" (host, source, day, ts, position, message) '
    "VALUES ('{h}', 'itest-integrity', '1970-01-02', 0, 'itest:0', 'old shared') USING TTL 60",
    "DELETE FROM {ks}.\"{t}\" WHERE host = '{h}' AND source = 'itest-integrity' AND day = '1970-01-02'",
    'TRUNCATE {ks}."{t}"',
], ids=["insert", "delete", "truncate"])
def test_the_shared_table_is_refused(writers, as_writer: Session, statement: str) -> None:
    with pytest.raises(Unauthorized):
        as_writer.execute(statement.format(ks=KEYSPACE, t="infrastructure_logs", h=writers[1].host))


def test_own_table_cannot_be_dropped_or_read(writers, as_writer: Session) -> None:
    me = writers[0]
    for statement in (f'DROP TABLE {KEYSPACE}."{me.table}"', f'SELECT * FROM {KEYSPACE}."{me.table}" LIMIT 1',
                      f'ALTER TABLE {KEYSPACE}."{me.table}" WITH comment = \'iact-ops log lines of host x\''):
        with pytest.raises(Unauthorized):
            as_writer.execute(statement)


def test_own_table_cannot_be_truncated_on_any_node(nodes: list[Node], writers) -> None:
    """MODIFY alone would allow TRUNCATE: the guardrail drop_truncate_table_enabled=false refuses it to
    every role but a superuser, on every coordinator."""
    me = writers[0]
    tls = verifying_context(me.ca_pem) if me.ca_pem else None
    for node in nodes:
        cluster, session = connect(node, me.role, me.password, tls)
        try:
            with pytest.raises(InvalidRequest, match="drop_truncate_table_enabled"):
                session.execute(f'TRUNCATE {KEYSPACE}."{me.table}"')
        finally:
            cluster.shutdown()


def test_password_files_hold_only_the_host_s_own_password(writers) -> None:
    """A derived password per host: 128 hex characters (sha512), different on every host."""
    for w in writers:
        assert len(w.password) == 128 and all(c in "0123456789abcdef" for c in w.password), w.host
    assert len({w.password for w in writers}) == 2
