"""The canary rollout of the agents (drill/rollout.py) on the deployed stack, through this run's inventory.

- A good build (the agents source with one changed comment, so a new release) reaches every host: each
  host's ``current`` names it and its collector ships.
- A deliberately broken build (its collector exits at start), built here and never shipped elsewhere, stops
  at the canary: the canary is rolled back to the good release, no other host gets the broken release, and
  every collector is active and shipping afterwards.

Whatever happens, every host is switched back to the release it ran before the test (and its agents
restarted), and the test's release folders are removed.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "drill"))
os.environ.setdefault("IACT_PYINFRA_INVENTORY_SKIP", "1")

import pyinfra_fleet as fleet  # noqa: E402
import rollout  # noqa: E402

BROKEN = 'raise SystemExit("deliberately broken build: the collector exits at start (rollout test)")\n'


@pytest.fixture(scope="module")
def inventory(request: pytest.FixtureRequest) -> str:
    inv = request.config.getoption("ansible_inventory", None) or os.environ.get("IACT_INVENTORY")
    if not inv:
        pytest.skip("needs the stack's inventory (--ansible-inventory, as molecule/default/verify.yml passes)")
    return str(inv)


@pytest.fixture(scope="module")
def cluster(inventory: str) -> Iterator[fleet.Cluster]:
    c = fleet.connect(inventory)
    yield c
    rollout.disconnect_all(c.state)


def source(dest: Path, token: str, *, broken: bool) -> Path:
    src = rollout.source_variant(dest, f"rollout test {token}")
    if broken:
        daemon = src / "iact_agents" / "collector" / "daemon.py"
        daemon.write_text(BROKEN + daemon.read_text())
    return src


@pytest.fixture(scope="module")
def builds(inventory: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("rollout")
    token = uuid.uuid4().hex[:8]
    return {name: rollout.build(inventory, source(tmp / name, token, broken=name == "broken"),
                                cache_dir=tmp / "wheels")
            for name in ("good", "broken")}


@pytest.fixture(scope="module")
def original(cluster: fleet.Cluster, builds: dict[str, Path]) -> Iterator[dict[str, str]]:
    before = {h: rollout.current_release(cluster, h) for h in cluster.groups["all"]}
    assert all(before.values()), f"a host is not on the release layout: {before}"
    yield before
    tested = {(b / "RELEASE").read_text().strip() for b in builds.values()}
    for host, release in before.items():
        if rollout.current_release(cluster, host) != release:
            rollout.link(cluster, host, release)
            rollout.restart(cluster, host)
        for name in tested - {release}:
            cluster.run(host, f"rm -rf {rollout.PREFIX}/releases/{name}")


def run_rollout(inventory: str, wheelhouse: Path, report: Path) -> tuple[int, dict]:
    rc = rollout.main(["--inventory", inventory, "--wheelhouse", str(wheelhouse), "--report", str(report)])
    assert report.exists(), f"the rollout wrote no report (exit {rc})"
    doc = json.loads(report.read_text())
    print(json.dumps({k: doc[k] for k in ("release", "status", "seconds", "reason", "waves")}))
    return rc, doc


def test_good_build_reaches_every_host(cluster, inventory, builds, original, tmp_path):
    release = (builds["good"] / "RELEASE").read_text().strip()
    rc, doc = run_rollout(inventory, builds["good"], tmp_path / "good.json")
    assert rc == 0, doc["reason"]
    assert doc["status"] == "success"
    assert sorted(h for w in doc["waves"] for h in w) == sorted(cluster.groups["all"])
    for host in cluster.groups["all"]:
        assert rollout.current_release(cluster, host) == release, host
        assert doc["hosts"][host]["gate_ok"] is True
        assert doc["hosts"][host]["previous"] == original[host]
    for host in cluster.groups.get("collectors", []):
        assert cluster.run(host, "systemctl is-active iact-collector", check=False).strip() == "active", host


def test_broken_build_stops_at_the_canary_and_rolls_it_back(cluster, inventory, builds, original, tmp_path):
    good = (builds["good"] / "RELEASE").read_text().strip()
    broken = (builds["broken"] / "RELEASE").read_text().strip()
    before = {h: rollout.current_release(cluster, h) for h in cluster.groups["all"]}
    rc, doc = run_rollout(inventory, builds["broken"], tmp_path / "broken.json")
    assert rc == 1
    assert doc["status"] == "failure"
    canary = doc["waves"][0][0]
    assert list(doc["hosts"]) == [canary], "the rollout went past the canary"
    assert doc["hosts"][canary]["gate_ok"] is False
    assert doc["hosts"][canary]["rolled_back"] is True
    assert "collector" in doc["reason"]
    for host in cluster.groups["all"]:
        assert rollout.current_release(cluster, host) == before[host] == good, host
        if host != canary:
            assert cluster.run(host, f"test -e {rollout.PREFIX}/releases/{broken} || echo absent").strip() == "absent"
    # Every collector is active and ships again (the canary's, on the good release after the rollback).
    for host in cluster.groups.get("collectors", []):
        assert rollout.gate(cluster, host, 90) == [], host
