"""Helpers of the Cassandra cluster checks (imported by conftest.py and the tests)."""

from __future__ import annotations

import json
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

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


def ring_verdict(node: Node, *options: str) -> dict[str, Any]:
    """`iact-agent cassandra status --json` on the node: the ring as the roles and the drill judge it."""
    result = node.host.run("/usr/local/bin/iact-agent cassandra status --json " + " ".join(options))
    assert result.stdout.startswith("{"), f"iact-agent cassandra status on {node.name}: {result.stderr}"
    return dict(json.loads(result.stdout))


def ring(node: Node) -> dict[str, str]:
    """address -> two-letter state (UN, DN, UJ...)."""
    return {n["address"]: n["code"] for n in ring_verdict(node)["nodes"]}


def wait_all_up(node: Node, expected: int, timeout: float = 600) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = ring(node)
        if len(states) >= expected and set(states.values()) == {"UN"}:
            return states
        time.sleep(5)
    raise AssertionError(f"not every node is UN after {timeout}s: {states}\n{node.journal()}")
