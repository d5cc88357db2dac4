"""A rolling restart that clients do not notice (issue 18): `playbooks/ops/cassandra_rolling_restart.yml` runs
while a client that never retries writes single rows at LOCAL_QUORUM (writeload.py: cassandra-driver defaults,
FallthroughRetryPolicy, non-idempotent prepared inserts, paced and bounded). Every node must have been restarted
and every acknowledged write must be readable afterwards at LOCAL_QUORUM. No write may fail, except in the one
way no server-side sequence removes on Cassandra 5.0 (measured on the lab, issue 18): while a node stops its
native transport (`nodetool disablebinary`, or drain) it answers the requests still arriving on its open client
connections with `Overloaded: Server is shutting down` and then closes those connections at once, failing the
requests in flight with ConnectionShutdown (graceful disconnect is CEP-59, after 5.0), and cassandra-driver ignores
the node's DOWN event while it holds connections to it. Those two are counted and printed, not failed; any other
failure (Overloaded for another reason, e.g. too many hints in flight, timeouts, Unavailable, NoHostAvailable)
fails the test. Tighten to 0 once clients can be moved off a node before its connections close.

The same rolling restart proves the order: a node stops only after the previous one is back (systemd's
timestamps of each unit). Then, with one node stopped, the playbook refuses before touching any node and names
the override. (Both ran on a scenario of their own, molecule/cassandra_cluster, which converged a second cluster
for them; they run on the stack's cluster now, which saves that converge.) The summary of the load (counts,
failures by type, each failure's time) is printed, so a failing run shows which step the failures belong to.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import writeload
from cassandra_testlib import Node, inventory_path, ring, wait_all_up

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = "playbooks/ops/cassandra_rolling_restart.yml"
RATE, CONCURRENCY = 200, 16  # writes per second, writes in flight at most


def unit_times(node: Node) -> tuple[int, int]:
    """(last stop, last start) of cassandra.service in µs (0: never). Monotonic clocks are per boot; the lab's and
    molecule's containers share the VM's kernel, so the values of different nodes compare."""
    out = node.host.check_output(
        "systemctl show cassandra.service -p ActiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic")
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return int(props.get("ActiveExitTimestampMonotonic") or 0), int(props.get("ActiveEnterTimestampMonotonic") or 0)


def started_at(node: Node) -> int:
    """When cassandra.service last became active (µs, monotonic clock of the shared kernel)."""
    return unit_times(node)[1]


def native_transport_stopping(failure: writeload.Failure) -> bool:
    """A failure of a write sent to a node whose native transport is stopping (module docstring)."""
    return failure.error == "ConnectionShutdown" or (
        failure.error == "OverloadedErrorMessage" and "Server is shutting down" in failure.message)


def rolling_restart(inventory: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_FORCE_COLOR": "0"}
    exe = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run([str(exe), "-i", inventory, PLAYBOOK], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1500, check=False)


@pytest.mark.timeout(1800)
def test_rolling_restart_under_a_non_retrying_write_load(
    nodes: list[Node], admin_login: tuple[str, str], pytestconfig: pytest.Config
) -> None:
    inventory = inventory_path(pytestconfig)
    assert inventory, "needs the inventory (--ansible-inventory) to run the rolling restart"
    wait_all_up(nodes[0], len(nodes))
    before = {n.name: started_at(n) for n in nodes}
    cluster = writeload.connect([n.address for n in nodes], nodes[0].port, *admin_login, nodes[0].tls)
    try:
        session = cluster.connect()
        writeload.create_table(session)
        load = writeload.WriteLoad(session, rate=RATE, concurrency=CONCURRENCY).start()
        time.sleep(10)  # the load runs before the first node stops ...
        run = rolling_restart(inventory)
        time.sleep(10)  # ... and after the last one is back
        result = load.stop()
        missing = load.verify()
    finally:
        cluster.shutdown()
    summary = result.summary()
    print("write load during the rolling restart:", json.dumps(summary, indent=1))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    after = {n.name: unit_times(n) for n in nodes}
    not_restarted = [n.name for n in nodes if after[n.name][1] <= before[n.name]]
    assert not not_restarted, f"not restarted by the playbook: {not_restarted}"
    # One node at a time: in the order they came back, each node went down only after the previous one was back.
    order = sorted(after, key=lambda name: after[name][1])
    for prev, nxt in itertools.pairwise(order):
        assert after[nxt][0] > after[prev][1], f"{nxt} stopped before {prev} was back: {after}"
    assert len(result.acknowledged) > 0, summary
    others = [f for f in result.failures if not native_transport_stopping(f)]
    assert not others, f"{len(others)} of {result.attempted} writes failed otherwise: {summary}"
    assert not missing, f"{len(missing)} acknowledged writes not found afterwards (first: {missing[:10]})"
    wait_all_up(nodes[0], len(nodes))


def test_rolling_restart_refuses_an_unhealthy_cluster(nodes: list[Node], pytestconfig: pytest.Config) -> None:
    inventory = inventory_path(pytestconfig)
    assert inventory, "needs the inventory (--ansible-inventory) to run the rolling restart"
    wait_all_up(nodes[0], len(nodes))
    down, others = nodes[-1], nodes[:-1]
    down.host.check_output("systemctl stop cassandra")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and list(ring(others[0]).values()).count("UN") != len(others):
            time.sleep(3)
        states = ring(others[0])
        assert list(states.values()).count("UN") == len(others), f"{down.name} stopped, yet the ring says {states}"
        before = {n.name: unit_times(n) for n in others}
        run = rolling_restart(inventory)
        said = run.stdout + run.stderr  # ansible-core prints the failure on stderr
        assert run.returncode != 0, "the rolling restart ran on a cluster with a node down: " + said[-3000:]
        assert "The cluster is not healthy" in said, said[-3000:]
        assert "cassandra_force_unhealthy" in said, said[-3000:]
        assert {n.name: unit_times(n) for n in others} == before, "a node was restarted despite the refusal"
    finally:
        down.host.check_output("systemctl start cassandra")
        wait_all_up(nodes[0], len(nodes))
