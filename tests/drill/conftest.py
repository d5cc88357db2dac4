"""The DR drill and restore-refusal tests: DESTRUCTIVE (they stop and wipe MariaDB and one Cassandra node,
then restore them). They only run when IACT_INVENTORY names the inventory to use, e.g.

    IACT_INVENTORY=inventory/lab .venv/bin/pytest -q tests/drill

(molecule/default/verify.yml passes the stack scenario's inventory as the last step).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "drill"))
os.environ.setdefault("IACT_PYINFRA_INVENTORY_SKIP", "1")

import drill  # noqa: E402


@pytest.fixture(scope="session")
def inventory() -> str:
    inv = os.environ.get("IACT_INVENTORY")
    if not inv:
        pytest.skip("set IACT_INVENTORY to the inventory these destructive drill tests may use")
    return inv


@pytest.fixture(scope="session")
def cluster(inventory: str) -> Iterator[drill.Cluster]:
    c = drill.connect(inventory)
    yield c
    drill.disconnect_all(c.state)
