"""Cluster safety of the ops playbooks, on this scenario's three nodes (the stack scenario runs the
ordinary Cassandra suite; this one exercises what only a disposable cluster may go through):

- the rolling restart restarts every node, strictly one after the other: a node stops only after the
  previous one is back (systemd's timestamps of each unit prove the order);
- with one node down, the rolling restart refuses before touching any node, and names the override.

Runs from the controller: testinfra for the hosts, ansible-playbook on molecule's inventory.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "ops" / "cassandra_rolling_restart.yml"
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
NODES = ["cc-cass1", "cc-cass2", "cc-cass3"]

pytestmark = pytest.mark.skipif(not INVENTORY, reason="runs inside `molecule verify -s cassandra_cluster`")


def host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY)


def unit_times(name: str) -> tuple[int, int]:
    """(last stop, last start) of cassandra.service in µs since the epoch (0: never)."""
    out = host(name).check_output(
        "systemctl show cassandra.service -p ActiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic")
    props = dict(line.split("=", 1) for line in out.splitlines())
    return int(props["ActiveExitTimestampMonotonic"]), int(props["ActiveEnterTimestampMonotonic"])


def up_normal(name: str = NODES[0]) -> int:
    out = host(name).run("iact-agent cassandra status --json").stdout  # the ring reader the playbooks use
    return int(json.loads(out)["up_normal"]) if out.startswith("{") else 0


def wait_all_up(timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if up_normal() == len(NODES):
            return
        time.sleep(5)
    raise AssertionError(f"not every node UN after {timeout:.0f} s")


def playbook(*extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(["ansible-playbook", "-i", INVENTORY, str(PLAYBOOK), *extra], capture_output=True,
                          text=True, env=env, timeout=1800, check=False)


def test_rolling_restart_goes_one_node_at_a_time() -> None:
    wait_all_up()
    # Monotonic clocks are per boot; the containers share the VM's kernel, so their values compare.
    before = {n: unit_times(n) for n in NODES}
    run = playbook()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    after = {n: unit_times(n) for n in NODES}
    for n in NODES:
        assert after[n][1] > before[n][1], f"{n} was not restarted"
    # Node i+1 went down only after node i had started again (and the playbook saw every node UN).
    for prev, nxt in itertools.pairwise(NODES):
        assert after[nxt][0] > after[prev][1], f"{nxt} stopped before {prev} was back: {after}"
    assert up_normal() == len(NODES)


def test_rolling_restart_refuses_an_unhealthy_cluster() -> None:
    wait_all_up()
    down = NODES[-1]
    host(down).check_output("systemctl stop cassandra")
    try:
        deadline = time.monotonic() + 120
        while up_normal() != len(NODES) - 1 and time.monotonic() < deadline:
            time.sleep(3)
        before = {n: unit_times(n) for n in NODES[:-1]}
        run = playbook()
        assert run.returncode != 0, "the rolling restart ran on a cluster with a node down"
        said = run.stdout + run.stderr  # ansible-core prints the failure on stderr
        assert "The cluster is not healthy" in said, said[-3000:]
        assert "cassandra_force_unhealthy" in said
        assert {n: unit_times(n) for n in NODES[:-1]} == before, "a node was restarted despite the refusal"
    finally:
        host(down).check_output("systemctl start cassandra")
        wait_all_up()
