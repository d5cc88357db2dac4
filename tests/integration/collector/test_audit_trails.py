"""The databases' audit trails are shipped (issue 14): a failed login to Cassandra is written by its audit log
(FileAuditLogger -> logback -> the journal -> rsyslog's /var/log/syslog) and a failed login to MariaDB by its
server_audit plugin (syslog authpriv -> /var/log/auth.log); each line reaches the host's own log table through
its collector.

The failed logins use a user name made for the test; the rows are read back as test_hostile_input.py does
(the admin login of a Cassandra node's root cqlshrc, the host's own table found by its comment).
"""

from __future__ import annotations

import shlex
import ssl
import time
import uuid
from typing import Any

import pytest
import testinfra
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable
from test_hostile_input import SYSLOG, _inventory, collector_host, cql, node, own_table, rows, wait_rows
from testinfra.utils.ansible_runner import AnsibleRunner

__all__ = ["cql", "node"]  # fixtures of test_hostile_input.py, used here

AUTH_LOG = "/var/log/auth.log"


def test_a_failed_cassandra_login_is_audited_and_shipped(node: Any, cql: Any) -> None:
    user = f"itest_audit_{uuid.uuid4().hex[:10]}"
    conf = node.file("/etc/cassandra/cassandra.yaml").content_string
    assert "class_name: FileAuditLogger" in conf and "included_categories: AUTH,DDL,DCL" in conf, conf[-600:]
    tls = ssl.create_default_context(cadata=node.file("/etc/ssl/iact/ca.crt").content_string)
    rpc = next(line.split(":", 1)[1].strip() for line in conf.splitlines() if line.startswith("rpc_address:"))
    cluster = Cluster([rpc], auth_provider=PlainTextAuthProvider(user, "not-a-password"), protocol_version=5,
                      ssl_context=tls, connect_timeout=10)
    with pytest.raises(NoHostAvailable):
        cluster.connect()
    cluster.shutdown()
    host = collector_host(node)
    found = wait_rows(cql, own_table(cql, node), host, SYSLOG, user, 1)
    assert found, f"no line naming {user} from {host} reached its table from {SYSLOG}"
    line = found[0].raw or found[0].message
    assert "AUDIT" in line and "LOGIN_ERROR" in line and "category:AUTH" in line, line


def test_a_failed_mariadb_login_is_audited_and_shipped(pytestconfig: pytest.Config, cql: Any) -> None:
    inventory = _inventory(pytestconfig)
    runner = AnsibleRunner.get_runner(inventory)
    [name] = runner.get_hosts("mysql")[:1]
    db = testinfra.get_host(f"ansible://{name}" + (f"?ansible_inventory={inventory}" if inventory else ""))
    user = f"itest_audit_{uuid.uuid4().hex[:10]}"
    failed = db.run(f"mysql --no-defaults --ssl --protocol=TCP -h 127.0.0.1 -u {shlex.quote(user)} "
                    "--password=not-a-password -e 'SELECT 1'")
    assert failed.rc != 0
    host = collector_host(db)
    # server_audit writes two lines for the refused connection, FAILED_CONNECT and a DISCONNECT with the same
    # time; the table orders them by its own key, so the test waits for the FAILED_CONNECT line by name.
    table = own_table(cql, db)
    deadline = time.monotonic() + 90
    failed_rows: list[Any] = []
    found: list[Any] = []
    while not failed_rows and time.monotonic() < deadline:
        found = rows(cql, table, host, AUTH_LOG, user)
        failed_rows = [r for r in found if "FAILED_CONNECT" in (r.message or "")]
        if not failed_rows:
            time.sleep(1)
    assert failed_rows, f"no FAILED_CONNECT line naming {user} from {host} reached its table from {AUTH_LOG}: {found}"
    assert all(r.program == "mariadb-audit" for r in failed_rows), failed_rows
