"""Repository guard tests: they read the tree, run nothing on hosts, and need no services."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
