"""fsutil.replace_atomically: content, exact mode, no leftover on failure, and the order of the syncs
(``sync_calls`` in conftest.py): a durable write syncs the file before the rename and the folder after it; a
write that only has to survive the process syncs nothing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from iact_agents.fsutil import replace_atomically


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def test_replaces_the_content_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    replace_atomically(path, b"one")
    replace_atomically(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


@pytest.mark.parametrize("mask", [0o000, 0o077])
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
def test_mode_is_exact_whatever_the_umask(tmp_path: Path, umask: Callable[[int], None], mask: int,
                                          mode: int) -> None:
    umask(mask)
    path = tmp_path / "f"
    replace_atomically(path, b"x", mode=mode)
    assert oct(path.stat().st_mode & 0o777) == oct(mode)


def test_durable_write_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path: Path,
                                                                             sync_calls: list[str]) -> None:
    replace_atomically(tmp_path / "f", b"x")
    assert sync_calls == ["fsync file", "replace", "fsync dir"]


def test_write_without_sync_only_renames(tmp_path: Path, sync_calls: list[str]) -> None:
    replace_atomically(tmp_path / "f", b"x", sync=False)
    assert sync_calls == ["replace"]
    assert (tmp_path / "f").read_bytes() == b"x"


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "d"
    target.mkdir()
    (target / "inside").write_text("keep")  # renaming a file over a non-empty folder fails
    with pytest.raises(OSError):
        replace_atomically(target, b"x")
    assert (target / "inside").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_a_missing_folder_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replace_atomically(tmp_path / "missing" / "f", b"x")
