"""roles/backup backupdir.py: authenticated manifests and what a restore refuses, on real directories.

No `age` here (the stack tests under tests/integration/backup and tests/drill encrypt and decrypt for real):
these check the manifest, its MAC, the walk that refuses symlinks, devices, FIFOs and unlisted files, and the
per-file .auth of the binary logs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "backup" / "files" / "usr" / "local" / "lib" / "iact-backup" / "backupdir.py"
KEY = b"k" * 40
HOST, BID = "mysql1", "mysql-20261127T020000Z"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("backupdir", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["backupdir"] = module
    spec.loader.exec_module(module)
    return module


bd = load()


def make_backup(top: Path) -> Path:
    (top / "data" / "mysql").mkdir(parents=True)
    (top / "data" / "ibdata1.age").write_bytes(b"age-encryption.org/v1\n" + os.urandom(300))
    (top / "data" / "mysql" / "user.MAD.age").write_bytes(os.urandom(200))
    (top / "meta.env").write_text(f"kind=mysql\nid={BID}\nencryption=age\n")
    assert bd.write_manifest(top, KEY, HOST, BID) == 3
    (top / "SUCCESS").write_text(f"id={BID}\n")
    return top


def refused(top: Path, *, key: bytes = KEY, host: str = HOST, backup_id: str = BID) -> str:
    with pytest.raises(bd.Refused) as info:
        bd.verify(top, key, host, backup_id)
    return str(info.value)


def test_a_fresh_backup_verifies(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    assert bd.verify(top, KEY, HOST, BID) == 3
    lines = (top / "MANIFEST.sha256").read_text().splitlines()
    assert [ln.split("  ", 1)[1] for ln in lines] == ["data/ibdata1.age", "data/mysql/user.MAD.age", "meta.env"]


def test_a_changed_file_is_a_sha256_mismatch(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    with (top / "data" / "ibdata1.age").open("r+b") as fh:
        fh.write(b"X")
    assert "sha256 mismatch: data/ibdata1.age" in refused(top)


def test_a_manifest_edited_to_match_a_changed_file_is_not_authentic(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    (top / "meta.env").write_text("kind=mysql\nbinlog_file=mysql-bin.999999\n")
    body = (top / "MANIFEST.sha256").read_text().splitlines()
    body[-1] = f"{bd.sha256_of(top / 'meta.env')}  meta.env"
    (top / "MANIFEST.sha256").write_text("\n".join(body) + "\n")
    assert "is not authentic" in refused(top)


@pytest.mark.parametrize(("host", "backup_id", "key"), [
    ("mysql2", BID, KEY),                            # another host's backup
    (HOST, "mysql-20261128T020000Z", KEY),           # an old backup under a newer id
    (HOST, BID, b"z" * 40),                          # another manifest key
])
def test_the_mac_binds_host_id_and_key(tmp_path: Path, host: str, backup_id: str, key: bytes) -> None:
    top = make_backup(tmp_path / BID)
    assert "is not authentic" in refused(top, key=key, host=host, backup_id=backup_id)


def test_a_planted_symlink_is_refused(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    (top / "data" / "mysql" / "passwd").symlink_to("/etc/passwd")
    assert "not a regular file: data/mysql/passwd (symlink)" in refused(top)


def test_a_listed_file_replaced_by_a_symlink_is_refused(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    real = tmp_path / "elsewhere"
    (top / "data" / "ibdata1.age").rename(real)
    (top / "data" / "ibdata1.age").symlink_to(real)
    assert "data/ibdata1.age (symlink)" in refused(top)


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    os.mkfifo(top / "data" / "pipe")
    assert "data/pipe (FIFO)" in refused(top)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root (CI and the lab run as root)")
def test_a_device_is_refused(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    os.mknod(top / "data" / "null", 0o600 | 0o020000, os.makedev(1, 3))
    assert "data/null (character device)" in refused(top)


def test_an_extra_file_is_refused(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    (top / "data" / "mysql" / "extra.ibd").write_bytes(b"planted")
    assert "not in the manifest: data/mysql/extra.ibd" in refused(top)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    (top / "data" / "mysql" / "user.MAD.age").unlink()
    assert "missing file(s): data/mysql/user.MAD.age" in refused(top)


@pytest.mark.parametrize("name", ["SUCCESS", "MANIFEST.hmac", "MANIFEST.sha256"])
def test_a_missing_marker_or_manifest_is_refused(tmp_path: Path, name: str) -> None:
    top = make_backup(tmp_path / BID)
    (top / name).unlink()
    assert refused(top)


def test_the_manifest_itself_as_a_symlink_is_refused(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    (top / "MANIFEST.sha256").rename(tmp_path / "m")
    (top / "MANIFEST.sha256").symlink_to(tmp_path / "m")
    assert "MANIFEST.sha256 (symlink)" in refused(top)


def test_write_manifest_refuses_a_stage_with_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "f").write_text("x")
    (tmp_path / "s" / "l").symlink_to("/etc/passwd")
    with pytest.raises(bd.UsageError):
        bd.write_manifest(tmp_path / "s", KEY, HOST, BID)


@pytest.mark.parametrize("line", [
    "0" * 64 + "  ../../etc/passwd", "0" * 64 + "  /etc/passwd", "0" * 64 + "  data//x", "0" * 64 + "  ./x",
    "0" * 64 + " x", "0" * 63 + "  x", "0" * 64 + "  SUCCESS", "0" * 64 + "  a\\b",
])
def test_manifest_lines_that_name_unsafe_paths_are_refused(line: str) -> None:
    with pytest.raises(bd.Refused):
        bd.parse_manifest((line + "\n").encode())


def test_a_path_listed_twice_is_refused() -> None:
    line = "0" * 64 + "  x\n"
    with pytest.raises(bd.Refused, match="twice"):
        bd.parse_manifest((line * 2).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_manifest_is_total(raw: bytes) -> None:
    """Any bytes: a dict of safe relative paths, or Refused; nothing else ever escapes."""
    try:
        entries = bd.parse_manifest(raw)
    except bd.Refused:
        return
    assert entries
    for path, digest in entries.items():
        assert bd.safe_relpath(path) and ".." not in path.split("/") and len(digest) == 64


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_safe_relpath_never_lets_a_path_out(path: str) -> None:
    if bd.safe_relpath(path):
        resolved = (Path("/base") / path).resolve(strict=False)
        assert str(resolved).startswith("/base/")


def test_a_signed_file_checks_and_refuses_changes(tmp_path: Path) -> None:
    log = tmp_path / "mysql-bin.000012.age"
    log.write_bytes(os.urandom(500))
    name = "binlog-20261127T020000Z-abcdef/mysql-bin.000012.age"
    bd.sign_file(log, KEY, HOST, name)
    bd.check_file(log, KEY, HOST, name)
    with pytest.raises(bd.Refused, match="not authentic"):
        bd.check_file(log, KEY, HOST, name.replace("000012", "000013"))  # moved under another name
    with pytest.raises(bd.Refused, match="not authentic"):
        bd.check_file(log, KEY, "mysql2", name)
    with log.open("r+b") as fh:
        fh.write(b"X")
    with pytest.raises(bd.Refused, match="sha256 mismatch"):
        bd.check_file(log, KEY, HOST, name)
    # A recomputed sha256 in the .auth (as someone on the target could write) breaks its MAC.
    auth = log.with_name(log.name + ".auth")
    lines = auth.read_text().splitlines()
    auth.write_text(f"sha256 {bd.sha256_of(log)}\n{lines[1]}\n")
    with pytest.raises(bd.Refused, match="not authentic"):
        bd.check_file(log, KEY, HOST, name)


def test_a_log_replaced_by_a_symlink_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "mysql-bin.000012.age"
    log.write_bytes(b"x" * 100)
    bd.sign_file(log, KEY, HOST, "n")
    real = tmp_path / "real"
    log.rename(real)
    log.symlink_to(real)
    with pytest.raises(bd.Refused, match="not a regular file"):
        bd.check_file(log, KEY, HOST, "n")


def test_decrypt_refuses_before_the_identity_is_read(tmp_path: Path) -> None:
    """An unauthentic manifest stops decrypt before it looks for the private key or writes anything."""
    top = make_backup(tmp_path / BID)
    (top / "MANIFEST.hmac").write_text("hmac-sha256 " + "0" * 64 + "\n")
    out = tmp_path / "plain"
    with pytest.raises(bd.Refused):
        bd.decrypt(top, out, KEY, HOST, BID, identity=tmp_path / "no-such-key")
    assert not out.exists()


def test_decrypt_without_the_private_key_names_the_restore_playbooks(tmp_path: Path) -> None:
    top = make_backup(tmp_path / BID)
    with pytest.raises(bd.UsageError, match="restore_"):
        bd.decrypt(top, tmp_path / "plain", KEY, HOST, BID, identity=tmp_path / "no-such-key")


def test_a_group_readable_private_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "age-identity"
    key.write_text("AGE-SECRET-KEY-1" + "Q" * 58 + "\n")
    key.chmod(0o640)
    with pytest.raises(bd.UsageError, match="0600"):
        bd.identity_recipient(key)


def test_a_short_manifest_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("short\n")
    with pytest.raises(bd.UsageError, match="shorter"):
        bd.read_key(tmp_path / "key")


def test_main_exits_3_and_says_refusing_to_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = make_backup(tmp_path / BID)
    (top / "extra").write_text("x")
    (tmp_path / "key").write_bytes(KEY)
    rc = bd.main(["verify", str(top), "--key", str(tmp_path / "key"), "--host", HOST, "--id", BID])
    err = capsys.readouterr().err
    assert rc == 3
    assert "error: backup mysql-20261127T020000Z: file(s) not in the manifest: extra" in err
    assert "refusing to restore" in err


# --- encrypt --cache: the ciphertext of unchanged files is reused (real zstd and age) ---------------------------

needs_age = pytest.mark.skipif(not all(Path(p).exists() for p in (bd.AGE, bd.AGE_KEYGEN, bd.ZSTD)),
                               reason="age, age-keygen and zstd (Debian packages age, zstd) are not installed")


def age_keys(tmp_path: Path) -> tuple[Path, Path]:
    identity, recipients = tmp_path / "identity", tmp_path / "recipients"
    bd.subprocess.run([bd.AGE_KEYGEN, "-o", str(identity)], check=True, capture_output=True)
    recipients.write_text(bd.identity_recipient(identity) + "\n")
    return identity, recipients


def stage_from(data: Path, stage: Path, recipients: Path) -> Path:
    """A stage as iact-backup makes it: the snapshot's files hard-linked, plus a new meta file."""
    shutil.copytree(data, stage / "data", copy_function=os.link)
    (stage / "meta").mkdir()
    (stage / "meta" / "info.txt").write_text(f"stage {stage.name}\n")
    (stage / "meta.env").write_text(f"kind=cassandra\nage_recipients={recipients.read_text().strip()}\n")
    return stage


@needs_age
def test_a_second_backup_reuses_the_ciphertext_of_unchanged_files_and_verifies(tmp_path: Path) -> None:
    identity, recipients = age_keys(tmp_path)
    data, cache = tmp_path / "live", tmp_path / "cache"
    (data / "ks" / "t-1").mkdir(parents=True)
    (data / "ks" / "t-1" / "nb-1-big-Data.db").write_bytes(os.urandom(4000))
    (data / "ks" / "t-1" / "nb-2-big-Data.db").write_bytes(os.urandom(3000))
    first = stage_from(data, tmp_path / "s1", recipients)
    assert bd.encrypt(first, recipients, frozenset({"meta.env"}), cache) == bd.Encrypted(new=3, reused=0)
    (data / "ks" / "t-1" / "nb-3-big-Data.db").write_bytes(os.urandom(2000))  # flushed since
    second = stage_from(data, tmp_path / "s2", recipients)
    assert bd.encrypt(second, recipients, frozenset({"meta.env"}), cache) == bd.Encrypted(new=2, reused=2)
    old = second / "data" / "ks" / "t-1" / "nb-1-big-Data.db.zst.age"
    assert old.stat().st_ino == (first / "data" / "ks" / "t-1" / "nb-1-big-Data.db.zst.age").stat().st_ino
    assert old.stat().st_mtime_ns == (first / "data" / "ks" / "t-1" / "nb-1-big-Data.db.zst.age").stat().st_mtime_ns
    sid = "cassandra-20261130T160000Z"
    bd.write_manifest(second, KEY, "cass1", sid)
    (second / "SUCCESS").write_text("done\n")
    assert bd.verify(second, KEY, "cass1", sid) == 5
    assert bd.decrypt(second, tmp_path / "plain", KEY, "cass1", sid, identity=identity) == 5
    for name in ("nb-1-big-Data.db", "nb-2-big-Data.db", "nb-3-big-Data.db"):
        plain = tmp_path / "plain" / "data" / "ks" / "t-1" / name
        assert plain.read_bytes() == (data / "ks" / "t-1" / name).read_bytes()


@needs_age
def test_the_cache_forgets_compacted_files_and_a_changed_file_is_encrypted_anew(tmp_path: Path) -> None:
    _, recipients = age_keys(tmp_path)
    data, cache = tmp_path / "live", tmp_path / "cache"
    (data / "ks" / "t-1").mkdir(parents=True)
    (data / "ks" / "t-1" / "nb-1-big-Data.db").write_bytes(os.urandom(4000))
    (data / "ks" / "t-1" / "nb-2-big-Data.db").write_bytes(os.urandom(3000))
    bd.encrypt(stage_from(data, tmp_path / "s1", recipients), recipients, frozenset({"meta.env"}), cache)
    # Compaction: 1 and 2 become 3. A file rewritten under an old name (a restore moves new inodes in) is new.
    (data / "ks" / "t-1" / "nb-1-big-Data.db").unlink()
    (data / "ks" / "t-1" / "nb-2-big-Data.db").unlink()
    (data / "ks" / "t-1" / "nb-3-big-Data.db").write_bytes(os.urandom(5000))
    (data / "ks" / "t-1" / "nb-2-big-Data.db").write_bytes(os.urandom(3000))
    (cache / "files" / "stray.tmp").write_bytes(b"half-written")
    done = bd.encrypt(stage_from(data, tmp_path / "s2", recipients), recipients, frozenset({"meta.env"}), cache)
    assert done == bd.Encrypted(new=3, reused=0)
    names = sorted(p.relative_to(cache / "files").as_posix().split(".")[0] for p in (cache / "files").rglob("*")
                   if p.is_file())
    assert names == ["data/ks/t-1/nb-2-big-Data", "data/ks/t-1/nb-3-big-Data", "meta/info"]


@needs_age
def test_without_a_cache_nothing_is_kept(tmp_path: Path) -> None:
    _, recipients = age_keys(tmp_path)
    top = tmp_path / "s"
    (top / "d").mkdir(parents=True)
    (top / "d" / "f").write_bytes(os.urandom(100))
    assert bd.encrypt(top, recipients, frozenset(), None) == bd.Encrypted(new=1, reused=0)
    assert sorted(p.name for p in top.rglob("*")) == ["d", "f.zst.age"]


@needs_age
def test_the_cache_is_not_reused_for_other_recipients_after_a_key_rotation(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    _, old_recipients = age_keys(tmp_path / "old")
    new_identity, new_recipients = age_keys(tmp_path / "new")
    data, cache = tmp_path / "live", tmp_path / "cache"
    (data / "ks" / "t-1").mkdir(parents=True)
    (data / "ks" / "t-1" / "nb-1-big-Data.db").write_bytes(os.urandom(4000))
    bd.encrypt(stage_from(data, tmp_path / "s1", old_recipients), old_recipients, frozenset({"meta.env"}), cache)
    second = stage_from(data, tmp_path / "s2", new_recipients)
    assert bd.encrypt(second, new_recipients, frozenset({"meta.env"}), cache) == bd.Encrypted(new=2, reused=0)
    sid = "cassandra-20261130T170000Z"
    bd.write_manifest(second, KEY, "cass1", sid)
    (second / "SUCCESS").write_text("done\n")
    assert bd.decrypt(second, tmp_path / "plain", KEY, "cass1", sid, identity=new_identity) == 3
    plain = tmp_path / "plain" / "data" / "ks" / "t-1" / "nb-1-big-Data.db"
    assert plain.read_bytes() == (data / "ks" / "t-1" / "nb-1-big-Data.db").read_bytes()
