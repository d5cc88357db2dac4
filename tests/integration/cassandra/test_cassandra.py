"""Checks of the Cassandra cluster (roles/cassandra) on every node of the inventory's `cassandra` group.

Per node: the service, its hardened unit, files and modes, listening sockets. Cluster-wide: every node
UN, a QUORUM write on the first node read back on the last one, QUORUM with one node stopped and ALL
after it returns, auth (default login refused, the shared collector role disabled; each collector host's
own role is checked by test_log_integrity.py) and the log tables' options. Test data lives in a keyspace
`iact_pytest` that is dropped at the end.
"""

from __future__ import annotations

import configparser
import json
import time
import uuid

import pytest
import yaml
from cassandra import AuthenticationFailed, ConsistencyLevel, Unauthorized
from cassandra.cluster import NoHostAvailable
from cassandra.query import SimpleStatement
from cassandra_testlib import Node, connect, ring, ring_verdict, wait_all_up
from iact_agents.logtables import read_tables

KEYSPACE = "iact_logs"
TABLE = "infrastructure_logs"  # the shared table of the lines written before the per-host tables
TEST_KS = "iact_pytest"
# Ports that may listen on a non-loopback address: SSH, internode (TLS), CQL (TLS).
PUBLIC_PORTS = {22, 7000, 7001, 9042, 9142}


# --- every node -------------------------------------------------------------------------------------
def test_service_running_and_enabled(nodes: list[Node]) -> None:
    for node in nodes:
        service = node.host.service("cassandra")
        assert service.is_running, f"cassandra is not running on {node.name}\n{node.journal()}"
        assert service.is_enabled, f"cassandra is not enabled on {node.name}"


def test_unit_is_hardened_and_runs_the_jvm_directly(nodes: list[Node]) -> None:
    props = [
        "User",
        "NoNewPrivileges",
        "ProtectSystem",
        "PrivateTmp",
        "ProtectHome",
        "PrivateDevices",
        "ExecStart",
        "Wants",
        "After",
    ]
    for node in nodes:
        out = node.host.check_output("systemctl show cassandra.service " + " ".join(f"-p {p}" for p in props))
        show = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        assert show["User"] == "cassandra", node.name
        assert show["NoNewPrivileges"] == "yes", node.name
        assert show["ProtectSystem"] == "strict", node.name
        assert show["PrivateTmp"] == "yes", node.name
        assert show["ProtectHome"] == "yes", node.name
        assert "network-online.target" in show["Wants"] and "network-online.target" in show["After"], node.name
        assert "org.apache.cassandra.service.CassandraDaemon" in show["ExecStart"], node.name
        assert "-javaagent:" in show["ExecStart"] and "jamm" in show["ExecStart"], node.name
        assert "-Djava.io.tmpdir=/var/lib/cassandra/tmp" in show["ExecStart"], node.name
        assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in show["ExecStart"], node.name


def test_files_and_modes(nodes: list[Node]) -> None:
    expected = {
        "/etc/cassandra": ("root", "cassandra", 0o750),
        "/etc/cassandra/cassandra.yaml": ("root", "cassandra", 0o640),
        "/root/.cassandra/cqlshrc": ("root", "root", 0o600),
        "/var/lib/cassandra/data": ("cassandra", "cassandra", 0o700),
        "/var/lib/cassandra/commitlog": ("cassandra", "cassandra", 0o700),
        "/var/lib/cassandra/tmp": ("cassandra", "cassandra", 0o700),
        "/var/log/cassandra": ("cassandra", "cassandra", 0o750),
        "/etc/systemd/system/cassandra.service": ("root", "root", 0o644),
        # JMX login (nodetool -pwf) and the node's TLS key and PEM keystore: cassandra only.
        "/etc/cassandra/jmxremote.password": ("cassandra", "cassandra", 0o400),
        "/etc/cassandra/tls/node.key": ("cassandra", "cassandra", 0o400),
        "/etc/cassandra/tls/keystore.pem": ("cassandra", "cassandra", 0o400),
        "/etc/ssl/iact/ca.crt": ("root", "root", 0o644),
    }
    for node in nodes:
        assert node.host.user("cassandra").shell == "/usr/sbin/nologin", node.name
        for path, (user, group, mode) in expected.items():
            f = node.host.file(path)
            assert f.exists, f"{path} missing on {node.name}"
            assert (f.user, f.group, f.mode) == (user, group, mode), f"{path} on {node.name}"


def test_cassandra_yaml(nodes: list[Node]) -> None:
    seeds = set()
    for node in nodes:
        conf = yaml.safe_load(node.host.file("/etc/cassandra/cassandra.yaml").content_string)
        assert conf["authenticator"] == "PasswordAuthenticator"
        assert conf["authorizer"] == "CassandraAuthorizer"
        assert conf["role_manager"] == "CassandraRoleManager"
        assert conf["endpoint_snitch"] == "GossipingPropertyFileSnitch"
        assert conf["num_tokens"] == 16
        assert conf["allocate_tokens_for_local_replication_factor"] == 3
        assert conf["listen_address"] == node.address
        # Log integrity: only a superuser may DROP or TRUNCATE a table (a collector's MODIFY would allow TRUNCATE).
        assert conf["drop_truncate_table_enabled"] is False, node.name
        seeds.add(conf["seed_provider"][0]["parameters"][0]["seeds"])
        rackdc = node.host.file("/etc/cassandra/cassandra-rackdc.properties").content_string
        assert "dc=" in rackdc and "rack=" in rackdc
    assert len(seeds) == 1, f"nodes disagree on the seeds: {seeds}"
    addresses = {n.address for n in nodes}
    assert set(seeds.pop().split(",")) <= addresses, "seeds must be nodes of the group"


def test_no_unexpected_public_ports(nodes: list[Node]) -> None:
    for node in nodes:
        for line in node.host.check_output("ss -Hltn").splitlines():
            local = line.split()[3]
            address, port = local.rsplit(":", 1)
            if address.startswith(("127.", "[::1]")):
                continue
            assert int(port) in PUBLIC_PORTS, f"{node.name}: unexpected port {local} listening"
        jmx = node.host.check_output("ss -Hltn 'sport = :7199'")
        assert jmx and all(line.split()[3].startswith("127.0.0.1:") for line in jmx.splitlines()), (
            f"{node.name}: JMX must listen on 127.0.0.1 only: {jmx}"
        )


def test_tools_on_path(nodes: list[Node]) -> None:
    node = nodes[0]
    assert "UN" in node.host.check_output("nodetool status")
    verdict = json.loads(node.host.check_output("iact-agent cassandra status --json --schema"))
    assert verdict["ok"] and verdict["up_normal"] >= 3, verdict  # the ring reader the roles and the drill use
    out = node.host.check_output("cqlsh -e 'SELECT cluster_name FROM system.local'")
    assert "cluster_name" in out
    # Apache's cqlsh from PyPI in its own venv (roles/cassandra/files/cqlsh), with TLS when root's cqlshrc says so.
    assert node.host.file("/usr/local/bin/cqlsh").content_string.startswith("#!/opt/iact-cqlsh/venv/bin/python")
    shown = node.host.run("cqlsh --debug -e 'SHOW VERSION'")
    assert shown.rc == 0 and "| Cassandra 5.0" in shown.stdout, shown.stdout + shown.stderr
    assert f"Using ssl: {node.tls is not None}" in shown.stderr, shown.stderr
    if node.tls is not None:  # the node's certificate is checked: trusting only Debian's public CAs fails
        other_ca = node.host.run("SSL_CERTFILE=/etc/ssl/certs/ca-certificates.crt cqlsh -e 'SHOW VERSION'")
        assert other_ca.rc != 0 and "CERTIFICATE_VERIFY_FAILED" in other_ca.stderr, other_ca.stdout + other_ca.stderr


def test_repair_is_scheduled_and_staggered(nodes: list[Node]) -> None:
    slots = set()
    for node in nodes:
        f = node.host.file("/etc/cron.d/cassandra-repair")
        assert f.exists and f.mode == 0o644, node.name
        line = next(ln for ln in f.content_string.splitlines() if "nodetool repair -pr" in ln)
        _minute, hour, _, _, weekday = line.split()[:5]
        # Through the job wrapper, so the run lands in job_runs and its output in syslog.
        assert "iact-agent job run --name cassandra_repair" in line, line
        slots.add((weekday, hour))
    assert len(slots) == len(nodes), f"repairs are not staggered: {slots}"


# --- the cluster --------------------------------------------------------------------------------------
def test_all_nodes_up_normal(nodes: list[Node]) -> None:
    verdict = ring_verdict(nodes[0], "--schema", "--expect", str(len(nodes)))
    assert verdict["ok"], f"{verdict['reason']}\n{nodes[0].journal()}"
    assert verdict["up_normal"] == len(nodes) and len(verdict["schema"]["versions"]) == 1, verdict


@pytest.fixture(scope="module")
def test_keyspace(nodes: list[Node], session_on):
    session = session_on(nodes[0])
    dcs = {row.data_center for row in session.execute("SELECT data_center FROM system.peers")}
    dcs.add(session.execute("SELECT data_center FROM system.local").one().data_center)
    replication = ", ".join(f"'{dc}': 3" for dc in sorted(dcs))
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {TEST_KS} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', {replication}}}"
    )
    session.execute(f"CREATE TABLE IF NOT EXISTS {TEST_KS}.kv (k text PRIMARY KEY, v text)")
    yield TEST_KS
    session.execute(f"DROP KEYSPACE IF EXISTS {TEST_KS}")


def _write(session, key: str, value: str, level=ConsistencyLevel.QUORUM) -> None:
    session.execute(
        SimpleStatement(f"INSERT INTO {TEST_KS}.kv (k, v) VALUES (%s, %s)", consistency_level=level), (key, value)
    )


def _read(session, key: str, level=ConsistencyLevel.QUORUM):
    row = session.execute(
        SimpleStatement(f"SELECT v FROM {TEST_KS}.kv WHERE k = %s", consistency_level=level), (key,)
    ).one()
    return row.v if row else None


def test_quorum_write_on_first_node_reads_on_last(nodes: list[Node], session_on, test_keyspace) -> None:
    key, value = f"first-last-{uuid.uuid4()}", "hello"
    _write(session_on(nodes[0]), key, value)
    assert _read(session_on(nodes[-1]), key) == value


def test_quorum_with_one_node_down_then_consistent_at_all(nodes: list[Node], session_on, test_keyspace) -> None:
    down = nodes[-1]
    writer, reader = session_on(nodes[0]), session_on(nodes[1])
    keys = [f"down-{i}-{uuid.uuid4()}" for i in range(20)]
    assert down.host.run("systemctl stop cassandra.service").rc == 0
    try:
        states = {}
        for _ in range(60):
            states = ring(nodes[0])
            if states.get(down.address) == "DN":
                break
            time.sleep(2)
        assert states.get(down.address) == "DN", f"{down.name} not seen down: {states}"
        for key in keys:
            _write(writer, key, key)
        assert all(_read(reader, key) == key for key in keys), "QUORUM read with one node down lost data"
    finally:
        assert down.host.run("systemctl start cassandra.service").rc == 0
    wait_all_up(nodes[0], len(nodes))
    wait_all_up(down, len(nodes))
    back = session_on(down)
    missing = [k for k in keys if _read(back, k, ConsistencyLevel.ALL) != k]
    assert not missing, f"{len(missing)} rows not consistent at ALL after {down.name} returned"


def test_default_superuser_login_refused(nodes: list[Node]) -> None:
    with pytest.raises((NoHostAvailable, AuthenticationFailed)) as info:
        cluster, _ = connect(nodes[0], "cassandra", "cassandra")
        cluster.shutdown()
    assert "Authentication" in str(info.value) or "credentials" in str(info.value).lower()


def test_shared_collector_role_cannot_log_in_and_holds_nothing(nodes: list[Node], role_password, session_on) -> None:
    """Every collector host writes its own table as its own role (test_log_integrity.py); the shared role of old
    releases keeps its name only: no login, no permission, and the shared table with the old lines survives."""
    with pytest.raises((NoHostAvailable, AuthenticationFailed)) as info:
        cluster, _ = connect(nodes[0], "collector", role_password("cassandra_collector_password"))
        cluster.shutdown()
    assert "Authentication" in str(info.value) or "credentials" in str(info.value).lower() \
        or "not permitted to log in" in str(info.value)
    admin = session_on(nodes[0])
    assert not admin.execute("SELECT can_login FROM system_auth.roles WHERE role = 'collector'").one().can_login
    assert list(admin.execute('LIST ALL PERMISSIONS OF "collector" NORECURSIVE')) == []
    assert admin.execute(
        f"SELECT table_name FROM system_schema.tables WHERE keyspace_name = '{KEYSPACE}' AND table_name = '{TABLE}'"
    ).one(), "the shared log table must survive"


def test_reader_is_read_only(nodes: list[Node], role_password) -> None:
    cluster, session = connect(nodes[0], "reader", role_password("cassandra_reader_password"))
    try:
        session.execute(f"SELECT * FROM {KEYSPACE}.{TABLE} LIMIT 1")
        with pytest.raises(Unauthorized):
            session.execute(
                f"INSERT INTO {KEYSPACE}.{TABLE} (host, source, day, ts, position) "
                "VALUES ('pytest', 'pytest', '1970-01-02', 0, 'pytest:1')"
            )
    finally:
        cluster.shutdown()


def test_log_table_options(nodes: list[Node], session_on) -> None:
    """The shared table and every host's own table: the same columns, keys and options (only the comment,
    which names the host, differs)."""
    session = session_on(nodes[0])
    tables = read_tables(session, KEYSPACE)
    assert tables.by_host, "no per-host log table: the collector role registers each host (log_writer)"
    shape = None
    for table in [TABLE, *sorted(tables.by_host.values())]:
        row = session.execute(
            "SELECT default_time_to_live, gc_grace_seconds, compaction FROM system_schema.tables "
            f"WHERE keyspace_name = '{KEYSPACE}' AND table_name = '{table}'"
        ).one()
        assert row is not None, f"log table {table} missing"
        assert row.default_time_to_live == 7776000, table
        assert row.compaction["class"].endswith("TimeWindowCompactionStrategy"), table
        assert row.compaction["compaction_window_unit"] == "DAYS", table
        assert row.compaction["compaction_window_size"] == "3", table
        columns = {
            r.column_name: (r.kind, r.type, r.position, r.clustering_order)
            for r in session.execute(
                "SELECT column_name, kind, type, position, clustering_order FROM system_schema.columns "
                f"WHERE keyspace_name = '{KEYSPACE}' AND table_name = '{table}'"
            )
        }
        assert columns["host"][0] == "partition_key" and columns["position"][0] == "clustering", table
        assert shape is None or (columns, row.gc_grace_seconds) == shape, f"{table} differs from {TABLE}"
        shape = (columns, row.gc_grace_seconds)
    repl = session.execute(f"SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = '{KEYSPACE}'").one()
    assert repl.replication["class"].endswith("NetworkTopologyStrategy")
    assert all(v == "3" for k, v in repl.replication.items() if k != "class")


def test_system_auth_replicated(nodes: list[Node], session_on) -> None:
    repl = (
        session_on(nodes[0])
        .execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'system_auth'")
        .one()
        .replication
    )
    assert repl["class"].endswith("NetworkTopologyStrategy"), repl
    assert sum(int(v) for k, v in repl.items() if k != "class") >= 3, repl


def test_root_cqlshrc_holds_the_admin_login(nodes: list[Node]) -> None:
    for node in nodes:
        rc = configparser.ConfigParser(interpolation=None)
        rc.read_string(node.host.file("/root/.cassandra/cqlshrc").content_string)
        assert rc.get("authentication", "username") not in ("", "cassandra")
        assert rc.getboolean("connection", "ssl") and rc.get("ssl", "certfile") == "/etc/ssl/iact/ca.crt", node.name
