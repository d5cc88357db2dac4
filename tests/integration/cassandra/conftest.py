"""Fixtures for the Cassandra cluster checks: the nodes of the inventory's `cassandra` group.

Works with any inventory whose `cassandra` group has at least three hosts: molecule passes
`--ansible-inventory`; by hand, `pytest --ansible-inventory=inventory/lab tests/integration/cassandra`.
The admin login and each node's CQL address are read from the node itself (root's 0600 cqlshrc and
cassandra.yaml), so no secret has to be handed to the tests; so is TLS (the cqlshrc's ssl and CA file). The
CQL client is cassandra-driver on the controller, pinned to one node at a time.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator

import pytest
import testinfra
import yaml
from cassandra.cluster import Cluster, Session
from cassandra_testlib import Node, connect, inventory_path, verifying_context
from testinfra.utils.ansible_runner import AnsibleRunner

GROUP = "cassandra"
CQLSHRC = "/root/.cassandra/cqlshrc"
CONF = "/etc/cassandra/cassandra.yaml"


@pytest.fixture(scope="session")
def nodes(pytestconfig: pytest.Config) -> list[Node]:
    inventory = inventory_path(pytestconfig)
    names = AnsibleRunner.get_runner(inventory).get_hosts(GROUP)
    if len(names) < 3:
        pytest.skip(f"inventory group '{GROUP}' has {len(names)} host(s); these checks need at least 3")
    out = []
    for name in names:
        spec = f"ansible://{name}" + (f"?ansible_inventory={inventory}" if inventory else "")
        host = testinfra.get_host(spec)
        conf = yaml.safe_load(host.file(CONF).content_string)
        rc = configparser.ConfigParser(interpolation=None)
        rc.read_string(host.file(CQLSHRC).content_string)
        tls = None
        if rc.getboolean("connection", "ssl", fallback=False):  # as the node's own clients do (roles/pki's CA)
            tls = verifying_context(host.file(rc.get("ssl", "certfile")).content_string)
        out.append(Node(name, host, str(conf["rpc_address"]), int(conf.get("native_transport_port", 9042)), tls))
    return out


@pytest.fixture(scope="session")
def admin_login(nodes: list[Node]) -> tuple[str, str]:
    rc = configparser.ConfigParser(interpolation=None)
    rc.read_string(nodes[0].host.file(CQLSHRC).content_string)
    return rc.get("authentication", "username"), rc.get("authentication", "password")


@pytest.fixture(scope="session")
def session_on(admin_login: tuple[str, str]) -> Iterator:
    """session_on(node) -> an admin session that talks only to that node."""
    clusters: list[Cluster] = []

    def factory(node: Node) -> Session:
        cluster, session = connect(node, *admin_login)
        clusters.append(cluster)
        return session

    yield factory
    for cluster in clusters:
        cluster.shutdown()


@pytest.fixture(scope="session")
def role_password(nodes: list[Node]):
    """The password of a role variable, resolved by Ansible from the same inventory (or the environment)."""

    def lookup(variable: str) -> str:
        env = os.environ.get("IACT_" + variable.upper())
        if env:
            return env
        result = nodes[0].host.ansible("ansible.builtin.debug", f"msg={{{{ {variable} }}}}", check=False)
        value = result.get("msg", "")
        if not value or "{{" in value:
            pytest.skip(f"cannot resolve {variable} from the inventory; set IACT_{variable.upper()}")
        return value

    return lookup
