"""Helpers of the Cassandra cluster checks (imported by conftest.py and the tests)."""

from __future__ import annotations

import os
import ssl
import time
from dataclasses import dataclass, field

import pytest
import testinfra
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import WhiteListRoundRobinPolicy


@dataclass
class Node:
    name: str
    host: testinfra.host.Host
    address: str
    port: int
    tls: ssl.SSLContext | None = field(default=None, repr=False)
    """How clients reach the node: TLS verifying its certificate and address (as root's cqlshrc says), or None."""

    def journal(self, lines: int = 80) -> str:
        return self.host.run(f"journalctl -u cassandra.service --no-pager -n {lines}").stdout

    def nodetool(self, *args: str) -> str:
        result = self.host.run("/usr/local/bin/nodetool " + " ".join(args))
        assert result.rc == 0, f"nodetool {' '.join(args)} failed on {self.name}: {result.stderr}\n{self.journal()}"
        return result.stdout


def inventory_path(config: pytest.Config) -> str | None:
    return (
        getattr(config.option, "ansible_inventory", None)
        or os.environ.get("MOLECULE_INVENTORY_FILE")
        or os.environ.get("ANSIBLE_INVENTORY")
    )


def verifying_context(ca_pem: str) -> ssl.SSLContext:
    """TLS that trusts only ``ca_pem`` and checks the node's address against its certificate."""
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = True
    return context


def connect(
    node: Node, username: str, password: str, tls: ssl.SSLContext | bool | None = True
) -> tuple[Cluster, Session]:
    """A session pinned to ``node``; ``tls=True``: the node's own client TLS, else the given context (None: plain)."""
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node.address]), request_timeout=60)
    cluster = Cluster(
        [node.address],
        port=node.port,
        auth_provider=PlainTextAuthProvider(username=username, password=password),
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=20,
        control_connection_timeout=20,
        ssl_context=node.tls if tls is True else (tls or None),
    )
    return cluster, cluster.connect()


def ring(node: Node) -> dict[str, str]:
    """address -> two-letter state from `nodetool status`."""
    states = {}
    for line in node.nodetool("status").splitlines():
        parts = line.split()
        if len(parts) > 1 and len(parts[0]) == 2 and parts[0][0] in "UD" and parts[0][1] in "NLJM":
            states[parts[1]] = parts[0]
    return states


def wait_all_up(node: Node, expected: int, timeout: float = 600) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = ring(node)
        if len(states) >= expected and set(states.values()) == {"UN"}:
            return states
        time.sleep(5)
    raise AssertionError(f"not every node is UN after {timeout}s: {states}\n{node.journal()}")
