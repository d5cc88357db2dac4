#!/usr/bin/python3
"""Encrypt, authenticate, verify and decrypt one iact-backup directory (iact-ops roles/backup).

Called by /usr/local/sbin/iact-backup; standard library and the ``age`` command only.

    backupdir.py encrypt DIR --recipients FILE [--clear NAME ...] [--cache DIR]   every file F becomes F.zst.age
    backupdir.py write-manifest DIR --key FILE --host HOST --id ID
    backupdir.py verify DIR --key FILE --host HOST --id ID
    backupdir.py decrypt DIR OUT --key FILE --host HOST --id ID --identity FILE
    backupdir.py sign-file FILE --key FILE --host HOST --name NAME
    backupdir.py check-file FILE --key FILE --host HOST --name NAME

A backup directory holds ``MANIFEST.sha256`` (``sha256sum`` format, every file but itself, its MAC and
``SUCCESS``), ``MANIFEST.hmac`` (HMAC-SHA256 over the host name, the backup id and the manifest, with this
host's manifest key, which the backup target never holds) and ``SUCCESS``. A single shipped file (a binary
log) carries ``<file>.auth`` instead: its sha256 and the HMAC over the host, its name on the target and that
sha256. ``verify`` refuses, before reading any data file, a manifest whose MAC does not match, anything that
is not a regular file or a directory (symlinks, devices, FIFOs, sockets), files the manifest does not list
and listed files that are missing; then every file's sha256.

``encrypt --cache DIR`` (Cassandra: SSTable files never change once written) keeps the ciphertext of every file
it encrypted in DIR (same file system as the backup directory), keyed by the file's relative path, size,
modification time and inode, and hard-links it into the next backup directory when the same file comes again
instead of encrypting it anew; entries of files no longer in the directory are removed, so the cache holds about
one encrypted copy of what the last backup held. It starts anew when the recipients change (a key rotation).
Reusing ciphertext across backups keeps them authentic: age binds nothing to a backup, and the manifest of each
backup (MAC over host, id and the sha256 of every file) authenticates the reused bytes under the new id. Reused
files keep the cache's modification time, so rsync's ``--link-dest`` on the target recognises them as unchanged.

Exit codes: 0 ok, 1 failure, 2 usage or configuration, 3 refused (not authentic, corrupt, unexpected content).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "MANIFEST.sha256"
MAC_FILE = "MANIFEST.hmac"
SUCCESS = "SUCCESS"
RESERVED = frozenset({MANIFEST, MAC_FILE, SUCCESS})
AUTH_SUFFIX = ".auth"
ENCRYPTED_SUFFIX = ".age"
COMPRESSED_SUFFIX = ".zst.age"  # zstd, then age: ciphertext does not compress (nor stay sparse) afterwards
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_SMALL_BYTES = 64 * 1024
MIN_KEY_BYTES = 32
LINE_RE = re.compile(r"^([0-9a-f]{64})  (.+)$")
MAC_RE = re.compile(r"^hmac-sha256 ([0-9a-f]{64})$")
SHA_RE = re.compile(r"^sha256 ([0-9a-f]{64})$")
RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
AGE, AGE_KEYGEN, ZSTD = "/usr/bin/age", "/usr/bin/age-keygen", "/usr/bin/zstd"
WORKERS = max(1, min(2, os.cpu_count() or 1))
EXIT_FAILURE, EXIT_USAGE, EXIT_REFUSED = 1, 2, 3


class Refused(Exception):
    """The directory or file must not be used: not authentic, corrupt, or unexpected content (exit 3)."""


class UsageError(Exception):
    """A wrong argument, key or identity (exit 2)."""


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} iact-backup: {message}", file=sys.stderr, flush=True)


# --- keys and MACs -----------------------------------------------------------------------------------------


def read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the manifest key {path}: {exc.strerror} (apply playbooks/backup.yml)") from exc
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"the manifest key {path} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def one_line(label: str, value: str) -> str:
    if not value or "\n" in value or "\0" in value:
        raise UsageError(f"{label} {value!r} is empty or holds a line break")
    return value


def manifest_mac(key: bytes, host: str, backup_id: str, manifest: bytes) -> str:
    head = f"iact-backup manifest v1\nhost={one_line('host', host)}\nid={one_line('id', backup_id)}\n"
    return hmac.new(key, head.encode() + manifest, hashlib.sha256).hexdigest()


def file_mac(key: bytes, host: str, name: str, sha256: str) -> str:
    msg = f"iact-backup file v1\nhost={one_line('host', host)}\nname={one_line('name', name)}\nsha256={sha256}\n"
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def read_small(path: Path, limit: int) -> bytes:
    """A regular file's bytes, refused when it is anything else or larger than ``limit``."""
    try:
        st = path.lstat()
    except OSError as exc:
        raise Refused(f"{path.name} is missing") from exc
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{path.name} is not a regular file")
    if st.st_size > limit:
        raise Refused(f"{path.name} is larger than {limit} bytes")
    return path.read_bytes()


# --- walking a directory without following anything ---------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    files: frozenset[str]
    others: tuple[str, ...]  # "path (kind)" of everything that is neither a regular file nor a directory


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def walk(top: Path) -> Tree:
    """Every entry under ``top`` by lstat: regular files (relative paths) and everything else."""
    st = top.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"{top} is not a directory ({kind_of(st.st_mode)})")
    files: set[str] = set()
    others: list[str] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(top / rel if rel else top) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append(path)
                elif stat.S_ISREG(mode):
                    files.add(path)
                else:
                    others.append(f"{path} ({kind_of(mode)})")
    return Tree(frozenset(files), tuple(sorted(others)))


def safe_relpath(path: str) -> bool:
    """A relative path of plain components: no '', '.', '..', no leading '/', printable, no backslash."""
    if not path or path.startswith("/") or "\\" in path or not path.isprintable():
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def parse_manifest(text: bytes) -> dict[str, str]:
    """``{path: sha256}`` of a manifest; raises Refused on any line that is not ``<sha256>  <safe path>``."""
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise Refused(f"{MANIFEST} is not UTF-8") from exc
    entries: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        m = LINE_RE.match(line)
        if not m or not safe_relpath(m.group(2)) or m.group(2) in RESERVED:
            raise Refused(f"{MANIFEST} line {number} is malformed")
        if m.group(2) in entries:
            raise Refused(f"{MANIFEST} lists {m.group(2)} twice")
        entries[m.group(2)] = m.group(1)
    if not entries:
        raise Refused(f"{MANIFEST} lists no file")
    return entries


def few(names: Iterable[str], limit: int = 5) -> str:
    items = sorted(names)
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return " ".join(items[:limit]) + more


# --- the commands -----------------------------------------------------------------------------------------------


def write_manifest(top: Path, key: bytes, host: str, backup_id: str) -> int:
    tree = walk(top)
    if tree.others:
        raise UsageError(f"{top} holds what a backup must not: {few(tree.others)}")
    names = sorted(tree.files - RESERVED)
    if not names:
        raise UsageError(f"{top} holds no file to back up")
    body = "".join(f"{sha256_of(top / name)}  {name}\n" for name in names).encode()
    mac = f"hmac-sha256 {manifest_mac(key, host, backup_id, body)}\n".encode()
    for name, content in ((MANIFEST, body), (MAC_FILE, mac)):
        tmp = top / f".{name}.tmp"
        tmp.write_bytes(content)
        tmp.replace(top / name)
    return len(names)


def authentic_manifest(top: Path, key: bytes, host: str, backup_id: str) -> dict[str, str]:
    """The manifest's entries once its MAC matches (no data file is read)."""
    body = read_small(top / MANIFEST, MAX_MANIFEST_BYTES)
    mac_line = read_small(top / MAC_FILE, MAX_SMALL_BYTES).decode("ascii", "replace").strip()
    m = MAC_RE.match(mac_line)
    if not m or not hmac.compare_digest(m.group(1), manifest_mac(key, host, backup_id, body)):
        raise Refused(f"{MANIFEST} of {backup_id} is not authentic (changed on the target, or not made by {host}"
                      " with this manifest key)")
    return parse_manifest(body)


def verify(top: Path, key: bytes, host: str, backup_id: str) -> int:
    tree = walk(top)
    if tree.others:
        raise Refused(f"not a regular file: {few(tree.others)}")
    if SUCCESS not in tree.files:
        raise Refused("no SUCCESS marker: the backup is incomplete")
    entries = authentic_manifest(top, key, host, backup_id)
    extra = tree.files - RESERVED - set(entries)
    if extra:
        raise Refused(f"file(s) not in the manifest: {few(extra)}")
    missing = set(entries) - tree.files
    if missing:
        raise Refused(f"missing file(s): {few(missing)}")
    with ThreadPoolExecutor(WORKERS) as pool:
        sums = dict(zip(entries, pool.map(lambda name: sha256_of(top / name), entries), strict=True))
    bad = [name for name, want in entries.items() if sums[name] != want]
    if bad:
        raise Refused(f"sha256 mismatch: {few(bad)}")
    return len(entries)


def run_age(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"age failed on {what}: {done.stderr.strip()[-300:]}")


def pipe(first: list[str], second: list[str], what: str) -> None:
    """``first | second``, both checked (the data never touches the disk in between)."""
    head = subprocess.Popen(first, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert head.stdout is not None
    try:
        tail = subprocess.run(second, stdin=head.stdout, capture_output=True, check=False)
    finally:
        head.stdout.close()
        head_err = head.stderr.read() if head.stderr else b""
        head.wait()
    for name, rc, err in ((first[0], head.returncode, head_err), (second[0], tail.returncode, tail.stderr)):
        if rc != 0:
            raise RuntimeError(f"{Path(name).name} failed on {what}: {err.decode(errors='replace').strip()[-300:]}")


@dataclass(frozen=True)
class Encrypted:
    new: int  # files compressed and encrypted by this run
    reused: int  # files whose cached ciphertext was hard-linked in


def cached_name(name: str, st: os.stat_result) -> str:
    """The cache's name for one version of a file that is never changed in place (an SSTable component): its
    relative path, size, modification time and inode, so a new version of a name is a different entry."""
    return f"{name}.{st.st_size}-{st.st_mtime_ns}-{st.st_ino}{COMPRESSED_SUFFIX}"


def prune_cache(files: Path, keep: set[str]) -> int:
    """Delete every regular file under ``files`` whose name is not in ``keep``, then the empty directories; the
    number of files deleted."""
    tree = walk(files)
    gone = tree.files - keep
    for name in gone:
        (files / name).unlink()
    for dirpath, dirnames, filenames in os.walk(files, topdown=False):
        if not dirnames and not filenames and Path(dirpath) != files:
            with contextlib.suppress(OSError):  # not empty after all: kept
                os.rmdir(dirpath)
    return len(gone)


def encrypt(top: Path, recipients: Path, clear: frozenset[str], cache: Path | None = None) -> Encrypted:
    """Replace every regular file (but the ``clear`` top-level names) with ``<file>.zst.age``: compressed with
    zstd, then encrypted with age to the recipients. With ``cache``, reuse (hard-link) the ciphertext of a file
    that was encrypted before and has not changed since (same relative path, size, mtime and inode), keep the
    ciphertext of the others there for the next run, and drop the entries of files that are gone."""
    lines = [ln.strip() for ln in recipients.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines or not all(RECIPIENT_RE.match(r) for r in lines):
        raise UsageError(f"{recipients} must list age recipients (age1...), one a line")
    tree = walk(top)
    if tree.others:
        raise UsageError(f"{top} holds what a backup must not: {few(tree.others)}")
    todo = sorted(n for n in tree.files if n not in clear and n not in RESERVED)
    files = Path()
    if cache is not None:
        files = cache / "files"
        # Ciphertext is only reused for the recipients it was made for: after a key rotation the cache starts anew
        # (a backup must be readable with the keys its meta.env names).
        stamp, want = cache / "recipients", "".join(f"{r}\n" for r in sorted(lines))
        if not stamp.is_file() or stamp.read_text() != want:
            shutil.rmtree(files, ignore_errors=True)
        files.mkdir(mode=0o700, parents=True, exist_ok=True)
        if files.stat().st_dev != top.stat().st_dev:
            raise UsageError(f"the cache {cache} must be on the file system of {top} (hard links)")
        stamp.write_text(want)
    keep: set[str] = set()

    def seal_one(src: Path, dest: Path, name: str) -> None:
        tmp = dest.with_name(f".{dest.name}.tmp")
        pipe([ZSTD, "-q", "-1", "-T1", "-c", "--", str(src)],
             [AGE, "--encrypt", "--recipients-file", str(recipients), "--output", str(tmp)], name)
        tmp.replace(dest)

    def one(name: str) -> bool:
        src, dest = top / name, top / (name + COMPRESSED_SUFFIX)
        if cache is None:
            seal_one(src, dest, name)
            src.unlink()
            return False
        entry = cached_name(name, src.lstat())
        cached = files / entry
        keep.add(entry)
        try:
            reused = stat.S_ISREG(cached.lstat().st_mode)  # anything else there is replaced below
        except FileNotFoundError:
            reused = False
        if not reused:
            cached.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            seal_one(src, cached, name)
        os.link(cached, dest)
        src.unlink()
        return reused

    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            reused = sum(pool.map(one, todo))
    finally:
        if cache is not None:
            # Entries of files no longer in the backup go (compacted SSTables), with anything half-written; what
            # this run encrypted stays, even when a later file failed.
            prune_cache(files, keep)
    return Encrypted(new=len(todo) - reused, reused=reused)


def identity_recipient(identity: Path) -> str:
    try:
        st = identity.lstat()
    except OSError as exc:
        raise UsageError(f"the private key {identity} is not on this host: restores run through"
                         " playbooks/ops/restore_*.yml (or the DR drill), which bring it from the vault") from exc
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise UsageError(f"the private key {identity} must be a regular file of this user, mode 0600")
    done = subprocess.run([AGE_KEYGEN, "-y", str(identity)], capture_output=True, text=True, check=False)
    recipient = done.stdout.strip()
    if done.returncode != 0 or not RECIPIENT_RE.match(recipient):
        raise UsageError(f"{identity} is not an age identity (age-keygen -y failed)")
    return recipient


def meta_value(meta: bytes, name: str) -> str:
    for line in meta.decode("utf-8", "replace").splitlines():
        if line.startswith(name + "="):
            return line[len(name) + 1:]
    return ""


def decrypt(top: Path, out: Path, key: bytes, host: str, backup_id: str, *, identity: Path) -> int:
    """Decrypt the authenticated files of ``top`` into the new directory ``out`` (names from the manifest)."""
    entries = authentic_manifest(top, key, host, backup_id)
    recipient = identity_recipient(identity)
    if "meta.env" in entries:
        listed = meta_value(read_small(top / "meta.env", MAX_SMALL_BYTES), "age_recipients").split()
        if recipient not in listed:
            raise UsageError(f"the private key opens {recipient}, not a recipient of {backup_id}"
                             f" ({' '.join(listed) or 'none recorded'}): use the vault's key of that time")
    out.mkdir(mode=0o700)

    def one(name: str) -> None:
        plain = name.removesuffix(COMPRESSED_SUFFIX).removesuffix(ENCRYPTED_SUFFIX)
        dest = out / plain
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if name.endswith(COMPRESSED_SUFFIX):
            pipe([AGE, "--decrypt", "--identity", str(identity), "--", str(top / name)],
                 [ZSTD, "-q", "-d", "-o", str(dest)], name)
        elif name.endswith(ENCRYPTED_SUFFIX):
            run_age([AGE, "--decrypt", "--identity", str(identity), "--output", str(dest), str(top / name)], name)
        else:
            shutil.copyfile(top / name, dest, follow_symlinks=False)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, sorted(entries)))
    return len(entries)


def sign_file(path: Path, key: bytes, host: str, name: str) -> None:
    digest = sha256_of(path)
    tmp = path.with_name(f".{path.name}{AUTH_SUFFIX}.tmp")
    tmp.write_text(f"sha256 {digest}\nhmac-sha256 {file_mac(key, host, name, digest)}\n")
    tmp.replace(path.with_name(path.name + AUTH_SUFFIX))


def check_file(path: Path, key: bytes, host: str, name: str) -> None:
    lines = read_small(path.with_name(path.name + AUTH_SUFFIX), MAX_SMALL_BYTES).decode("ascii", "replace").split("\n")
    sha = SHA_RE.match(lines[0]) if lines else None
    mac = MAC_RE.match(lines[1]) if len(lines) > 1 else None
    if not sha or not mac or not hmac.compare_digest(mac.group(1), file_mac(key, host, name, sha.group(1))):
        raise Refused(f"{name}{AUTH_SUFFIX} is not authentic (changed on the target, or not made by {host})")
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{name} is not a regular file ({kind_of(st.st_mode)})")
    if sha256_of(path) != sha.group(1):
        raise Refused(f"sha256 mismatch: {name}")


# --- command line ------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="backupdir.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def auth(sp: argparse.ArgumentParser, what: str) -> None:
        sp.add_argument("--key", type=Path, required=True, help="this host's manifest key file")
        sp.add_argument("--host", required=True, help="inventory name of the host the backup belongs to")
        sp.add_argument(f"--{what}", required=True)

    enc = sub.add_parser("encrypt")
    enc.add_argument("dir", type=Path)
    enc.add_argument("--recipients", type=Path, required=True)
    enc.add_argument("--clear", action="append", default=[], help="top-level file left in clear (meta.env)")
    enc.add_argument("--cache", type=Path, help="keep and reuse the ciphertext of unchanged files here")
    for name in ("write-manifest", "verify"):
        sp = sub.add_parser(name)
        sp.add_argument("dir", type=Path)
        auth(sp, "id")
    dec = sub.add_parser("decrypt")
    dec.add_argument("dir", type=Path)
    dec.add_argument("out", type=Path)
    dec.add_argument("--identity", type=Path, required=True)
    auth(dec, "id")
    for name in ("sign-file", "check-file"):
        sp = sub.add_parser(name)
        sp.add_argument("file", type=Path)
        auth(sp, "name")
    return p


def dispatch(args: argparse.Namespace) -> None:
    if args.cmd == "encrypt":
        done = encrypt(args.dir, args.recipients, frozenset(args.clear), args.cache)
        reused = f", reused the ciphertext of {done.reused} unchanged file(s) from {args.cache}" if args.cache else ""
        log(f"encrypted {done.new} file(s) of {args.dir.name} with age{reused}")
        return
    key = read_key(args.key)
    if args.cmd == "write-manifest":
        n = write_manifest(args.dir, key, args.host, args.id)
        log(f"{MANIFEST} of {args.id}: {n} files, authenticated ({MAC_FILE})")
    elif args.cmd == "verify":
        n = verify(args.dir, key, args.host, args.id)
        log(f"verified {args.dir}: {n} files match {MANIFEST}, whose MAC is authentic")
    elif args.cmd == "decrypt":
        n = decrypt(args.dir, args.out, key, args.host, args.id, identity=args.identity)
        log(f"decrypted {n} file(s) of {args.id} into {args.out}")
    elif args.cmd == "sign-file":
        sign_file(args.file, key, args.host, args.name)
    else:
        check_file(args.file, key, args.host, args.name)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        dispatch(args)
    except Refused as exc:
        what = getattr(args, "id", None) or getattr(args, "name", "")
        log(f"error: backup {what}: {exc} — refusing to restore from it")
        return EXIT_REFUSED
    except UsageError as exc:
        log(f"error: {exc}")
        return EXIT_USAGE
    except (OSError, RuntimeError) as exc:
        log(f"error: {exc}")
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
