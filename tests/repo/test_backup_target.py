"""roles/backup iact-backup-target: the retention by arrival time, the seal, and the prune on real directories."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import stat
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "backup" / "files" / "usr" / "local" / "sbin" / "iact-backup-target"
DAY = 86400.0
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()
SOURCE_UID = 54321


def load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("iact_backup_target", str(SCRIPT))
    spec = importlib.util.spec_from_loader("iact_backup_target", loader)
    assert spec
    module = importlib.util.module_from_spec(spec)
    sys.modules["iact_backup_target"] = module
    loader.exec_module(module)
    return module


tgt = load()
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sealing chowns to root (CI and the lab run as root)")


def bid(kind: str, when: float) -> str:
    return f"{kind}-{datetime.fromtimestamp(when, UTC):%Y%m%dT%H%M%SZ}"


def backup(kind: str, arrived: float, complete: bool = True, name_time: float | None = None) -> object:
    return tgt.Backup(bid(kind, arrived if name_time is None else name_time), complete, arrived)


# --- the pure retention ---------------------------------------------------------------------------------------


def test_keeps_the_newest_of_each_of_the_last_days_and_weeks() -> None:
    daily = [backup("mysql", NOW - d * DAY) for d in range(40)]
    extra_today = backup("mysql", NOW - 3600)  # an older one of today: not the newest of its day
    gone = tgt.expired([*daily, extra_today], NOW, keep_daily=7, keep_weekly=4, incomplete_max_age_s=DAY)
    kept = {b.id for b in daily} - gone
    assert extra_today.id in gone
    assert {b.id for b in daily[:7]} <= kept
    assert 7 <= len(kept) <= 7 + 4
    assert all(b.id in gone for b in daily[35:])


def test_kinds_are_kept_separately() -> None:
    items = [backup("mysql", NOW - DAY), backup("cassandra", NOW - 2 * DAY)]
    assert tgt.expired(items, NOW, keep_daily=1, keep_weekly=0, incomplete_max_age_s=DAY) == set()


def test_backups_named_in_the_future_do_not_push_good_ones_out() -> None:
    """A compromised source names 10 backups as if made on later days: they all ARRIVED today, so they share
    today's slot and the good backups of the previous days stay."""
    good = [backup("mysql", NOW - d * DAY) for d in range(1, 7)]
    forged = [backup("mysql", NOW - 60, name_time=NOW + d * DAY) for d in range(1, 11)]
    gone = tgt.expired(good + forged, NOW, keep_daily=7, keep_weekly=0, incomplete_max_age_s=DAY)
    assert not {b.id for b in good} & gone
    assert len({b.id for b in forged} - gone) == 1


def test_incomplete_backups_go_once_idle_for_the_limit() -> None:
    fresh = backup("mysql", NOW - 3600, complete=False)
    stale = backup("cassandra", NOW - 2 * DAY, complete=False)
    assert tgt.expired([fresh, stale], NOW, 7, 4, DAY) == {stale.id}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["mysql", "cassandra"]), st.floats(0, 90 * DAY), st.booleans()),
                max_size=40),
       st.integers(1, 10), st.integers(0, 6))
def test_the_newest_complete_backup_of_each_kind_always_stays(items: list[tuple[str, float, bool]], daily: int,
                                                                weekly: int) -> None:
    backups = {}
    for kind, age, complete in items:
        b = tgt.Backup(bid(kind, NOW - age) + f"{len(backups)}", complete, NOW - age)
        backups[b.id] = b
    gone = tgt.expired(backups.values(), NOW, daily, weekly, DAY)
    for kind in ("mysql", "cassandra"):
        complete = [b for b in backups.values() if b.complete and b.id.startswith(kind)]
        if complete:
            newest = max(complete, key=lambda b: (b.arrived, b.id))
            assert newest.id not in gone
        kept_days = {datetime.fromtimestamp(b.arrived, UTC).date() for b in complete if b.id not in gone}
        assert len(kept_days) >= min(daily, len({datetime.fromtimestamp(b.arrived, UTC).date() for b in complete}))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_meta_and_log_name_parsers_are_total(text: str) -> None:
    fields = tgt.meta_fields(text)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    seq = tgt.log_seq(text)
    assert seq is None or seq >= 0


@pytest.mark.parametrize(("name", "seq"), [
    ("mysql-bin.000012.zst.age", 12), ("mysql-bin.000012.zst.age.auth", 12), ("mysql-bin.000012.sha256", 12),
    ("mysql-bin.000012", 12), ("mysql-bin.index", None), (".mysql-bin.000012.zst.age.Xa1b2c", None),
])
def test_log_seq(name: str, seq: int | None) -> None:
    assert tgt.log_seq(name) == seq


@pytest.mark.parametrize("text", [
    "", "root = 3", 'root = "/srv"\nincomplete_max_age_h = 0', 'root = "srv"\nincomplete_max_age_h = 24',
    'root = "/srv"\nincomplete_max_age_h = 24\n[sources.a]\nuser = "u"\nkeep_daily = 0\nkeep_weekly = 1',
    'root = "/srv"\nincomplete_max_age_h = 24\n[sources."../x"]\nuser = "u"\nkeep_daily = 1\nkeep_weekly = 1',
    "not toml [",
])
def test_a_wrong_configuration_is_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(tgt.ConfigError):
        tgt.load_config(tmp_path / "c.toml")


# --- seal and prune on a real tree ------------------------------------------------------------------------------------


def make_tree(tmp_path: Path) -> tuple[object, object, Path]:
    root = tmp_path / "srv"
    data = root / "mysql1" / "data"
    data.mkdir(parents=True)
    (tmp_path / "c.toml").write_text(
        f'root = "{root}"\nincomplete_max_age_h = 24\n'
        '[sources.mysql1]\nuser = "root"\nkeep_daily = 2\nkeep_weekly = 0\n')
    cfg = tgt.load_config(tmp_path / "c.toml")
    return cfg, cfg.sources[0], data


def put_backup(data: Path, backup_id: str, timeline: str = "tl1", first: str = "mysql-bin.000010",
               complete: bool = True) -> Path:
    top = data / backup_id
    (top / "data").mkdir(parents=True)
    (top / "data" / "ibdata1.age").write_bytes(b"x" * 10)
    (top / "meta.env").write_text(f"kind=mysql\nbinlog_file={first}\ntimeline={timeline}\n")
    if complete:
        (top / "SUCCESS").write_text("ok\n")
    for path in [top, *top.rglob("*")]:
        os.chown(path, SOURCE_UID, SOURCE_UID, follow_symlinks=False)
    return top


@needs_root
def test_seal_makes_a_complete_backup_root_owned_and_read_only(tmp_path: Path) -> None:
    cfg, src, data = make_tree(tmp_path)
    top = put_backup(data, "mysql-20261126T020000Z")
    (top / "data" / "link").symlink_to("/etc/shadow")
    os.chown(top / "data" / "link", SOURCE_UID, SOURCE_UID, follow_symlinks=False)
    shadow = os.stat("/etc/shadow")
    incomplete = put_backup(data, "mysql-20261127T020000Z", complete=False)
    report = tgt.Report()
    tgt.seal_source(cfg, src, report)
    assert report.sealed == 1
    for path in [top, *top.rglob("*")]:
        st_ = path.lstat()
        assert st_.st_uid == 0, path
        if stat.S_ISDIR(st_.st_mode):
            assert stat.S_IMODE(st_.st_mode) == 0o555
        elif stat.S_ISREG(st_.st_mode):
            assert stat.S_IMODE(st_.st_mode) == 0o444
    # The link was not followed: /etc/shadow keeps its owner and mode.
    assert os.stat("/etc/shadow")[:4] == shadow[:4]
    assert incomplete.stat().st_uid == SOURCE_UID  # not complete: not sealed
    # A second run seals nothing more.
    again = tgt.Report()
    tgt.seal_source(cfg, src, again)
    assert again.sealed == 0


@needs_root
def test_prune_deletes_by_arrival_and_keeps_the_logs_kept_backups_need(tmp_path: Path) -> None:
    cfg, src, data = make_tree(tmp_path)
    ids = ["mysql-20261120T020000Z", "mysql-20261121T020000Z", "mysql-20261122T020000Z"]
    firsts = ["mysql-bin.000010", "mysql-bin.000020", "mysql-bin.000030"]
    for i, f in zip(ids, firsts, strict=True):
        put_backup(data, i, first=f)
    tl = data / "binlog-tl1"
    tl.mkdir()
    for n in (5, 15, 25, 35):
        for suffix in (".zst.age", ".zst.age.auth"):
            (tl / f"mysql-bin.{n:06d}{suffix}").write_bytes(b"l")
    old_tl = data / "binlog-tl0"
    old_tl.mkdir()
    (old_tl / "mysql-bin.000001.zst.age").write_bytes(b"l")
    tgt.seal_source(cfg, src, tgt.Report())
    # Arrival is the sealed directory's mtime: one backup per day, the oldest first. Change times cannot be
    # set, so "now" is two days after this very moment (the unused timeline then idled for two days).
    now = time.time() + 2 * DAY
    for d, i in enumerate(ids):
        os.utime(data / i, (now - (3 - d) * DAY, now - (3 - d) * DAY))
    report = tgt.Report()
    tgt.prune_source(cfg, src, now, report)
    left = sorted(p.name for p in data.iterdir())
    assert left == ["binlog-tl1", ids[1], ids[2]]  # keep_daily = 2; the unused timeline idled > 24 h
    logs = sorted(p.name for p in tl.iterdir())
    assert logs == [f"mysql-bin.{n:06d}{s}" for n in (25, 35) for s in (".zst.age", ".zst.age.auth")]


@needs_root
def test_seal_links_the_files_a_backup_shares_with_the_previous_one(tmp_path: Path) -> None:
    cfg, src, data = make_tree(tmp_path)
    first = put_backup(data, "cassandra-20261126T020000Z")
    sstable = os.urandom(5000)
    (first / "data" / "ks").mkdir()
    (first / "data" / "ks" / "nb-1-big-Data.db.zst.age").write_bytes(sstable)
    (first / "data" / "outside").mkdir()
    tgt.seal_source(cfg, src, tgt.Report())
    second = put_backup(data, "cassandra-20261127T020000Z")
    (second / "data" / "ks").mkdir()
    (second / "data" / "ks" / "nb-1-big-Data.db.zst.age").write_bytes(sstable)  # a copy: the same bytes
    (second / "data" / "ks" / "nb-2-big-Data.db.zst.age").write_bytes(os.urandom(3000))  # new
    (second / "meta.env").write_text("kind=cassandra\nother=1\n")  # the same size as the first's, other bytes
    (second / "data" / "outside").mkdir()
    (second / "data" / "outside" / "shadow").write_bytes(Path("/etc/shadow").read_bytes())
    # A symlink in the basis is not followed, even to a file with the same bytes.
    os.chmod(first / "data", 0o755)
    os.rmdir(first / "data" / "outside")
    (first / "data" / "outside").symlink_to("/etc")
    os.chmod(first / "data", 0o555)
    mysql = put_backup(data, "mysql-20261127T030000Z")  # another kind: never a basis for cassandra
    arrived = (second / "SUCCESS").lstat().st_ctime
    report = tgt.Report()
    tgt.seal_source(cfg, src, report)
    assert report.sealed == 2
    def ino(path: Path) -> int:
        return path.stat().st_ino

    shared = Path("data") / "ks" / "nb-1-big-Data.db.zst.age"
    assert ino(second / shared) == ino(first / shared)
    assert ino(second / "data" / "ibdata1.age") == ino(first / "data" / "ibdata1.age")
    assert (second / shared).read_bytes() == sstable
    assert ino(second / "meta.env") != ino(first / "meta.env")
    assert (second / "meta.env").read_text() == "kind=cassandra\nother=1\n"
    assert (second / "data" / "outside" / "shadow").stat().st_ino != os.stat("/etc/shadow").st_ino
    assert ino(mysql / "data" / "ibdata1.age") != ino(second / "data" / "ibdata1.age")
    assert not list(second.rglob(".*iact-link"))
    # The arrival (the sealed directory's mtime) is not moved by the links.
    assert second.stat().st_mtime == arrived
