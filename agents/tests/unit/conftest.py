"""Fixtures shared by the agents' unit tests."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

import pytest


@pytest.fixture
def sync_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every ``os.fsync`` ("fsync file" / "fsync dir") and ``os.replace`` ("replace"), in order; the
    real calls still run. Durability cannot be observed without crashing the machine: the order of these
    calls is what a test can check (tmp + fsync + rename + fsync of the folder)."""
    seen: list[str] = []
    real_fsync: Callable[[int], None] = os.fsync
    real_replace = os.replace

    def fsync(fd: int) -> None:
        seen.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return seen
