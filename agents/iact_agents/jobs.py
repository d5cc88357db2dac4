"""`iact-agent job run`: the one wrapper every cron job goes through.

- ``flock`` on a per-job lock file: a second run while one is still going refuses to start
  (exit code 75, logged to syslog), so runs never overlap. The lock files live in a folder of the running
  user, ``/run/iact-jobs/<user>`` (0700, created at boot by the cron role's tmpfiles.d entry; root's is
  created on demand): not in a world-writable folder such as ``/run/lock``, where any local user could
  pre-create a job's lock file and block it. A folder or lock file that another user owns, that others
  may write, or that is a symbolic link is refused (exit code 77, logged to syslog);
- a timeout: the job's whole process group gets SIGTERM, then SIGKILL after a grace period;
- the job's output goes to syslog line by line (tag ``iact-job/<name>``), so the collector ships it;
- one ``job_runs`` row per run (start, end, status, exit code, output size) through the MySQL option
  file given with ``--mysql-defaults``. A database that cannot be reached never stops the job: the
  failure to record is logged and the job's own exit code is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import logging
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import syslog
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pymysql

from . import mysqlconn
from .errors import AgentError, InputError

log = logging.getLogger(__name__)

EXIT_OVERLAP = 75  # EX_TEMPFAIL: another run holds the lock
EXIT_UNSAFE_LOCK = 77  # EX_NOPERM: the lock folder or file is not the running user's alone
EXIT_TIMEOUT = 124  # as coreutils timeout(1)
JOB_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LOCK_ROOT = Path("/run/iact-jobs")
"""Parent of the per-user lock folders (root:root 0755); roles/cron/templates/etc/tmpfiles.d/iact-jobs.conf.j2."""


class JobOverlap(AgentError):
    exit_code = EXIT_OVERLAP


class UnsafeLock(AgentError):
    """The lock folder or file could be controlled by another user: the job does not start."""

    exit_code = EXIT_UNSAFE_LOCK


def default_lock_dir(uid: int | None = None) -> Path:
    """``/run/iact-jobs/<user name>`` of ``uid`` (default: the effective user); the uid itself if it has no name."""
    uid = os.geteuid() if uid is None else uid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return LOCK_ROOT / name


def _refuse_unsafe(what: str, path: Path, st: os.stat_result, uid: int, *, may_be_root: bool = False) -> None:
    """Raise :class:`UnsafeLock` unless ``st`` is owned by ``uid`` (or root, when allowed) and writable by its
    owner only."""
    owners = {uid, 0} if may_be_root else {uid}
    if st.st_uid not in owners:
        raise UnsafeLock(f"{what} {path} is owned by uid {st.st_uid}, not by uid {uid} that runs the job: not using it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeLock(f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}):"
                         " not using it")


def _open_lock_dir(lock_dir: Path, uid: int) -> int:
    """An O_DIRECTORY descriptor of ``lock_dir`` after checking it and its parent; root creates what is missing."""
    if uid == 0 and lock_dir.parent == LOCK_ROOT:
        # Only root can create these two levels in /run; the tmpfiles.d entry does it at boot.
        for folder, mode in ((LOCK_ROOT, 0o755), (lock_dir, 0o700)):
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=mode)
                folder.chmod(mode)  # whatever the umask: the other users' folders must stay reachable
    try:
        parent = os.stat(lock_dir.parent)
        fd = os.open(lock_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnsafeLock(f"lock folder {lock_dir} does not exist: the cron role's tmpfiles.d entry creates it at boot"
                         " (systemd-tmpfiles --create /etc/tmpfiles.d/iact-jobs.conf)") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeLock(f"lock folder {lock_dir} is a symbolic link or not a folder: not using it") from None
        raise UnsafeLock(f"lock folder {lock_dir}: {exc.strerror}") from None
    try:
        # Whoever may write the parent could swap the folder for another (a sticky parent prevents that).
        if not parent.st_mode & stat.S_ISVTX:
            _refuse_unsafe("parent of the lock folder", lock_dir.parent, parent, uid, may_be_root=True)
        _refuse_unsafe("lock folder", lock_dir, os.fstat(fd), uid)
    except UnsafeLock:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True)
class JobResult:
    name: str
    started_at: datetime
    finished_at: datetime
    exit_code: int
    output_bytes: int
    timed_out: bool

    @property
    def status(self) -> str:
        return "success" if self.exit_code == 0 else "failure"

    @property
    def message(self) -> str:
        if self.timed_out:
            return f"timed out after {(self.finished_at - self.started_at).total_seconds():.0f} s"
        return f"exit code {self.exit_code}"


@contextlib.contextmanager
def job_lock(lock_dir: Path, name: str, *, uid: int | None = None) -> Iterator[Path]:
    """Hold an exclusive, non-blocking flock for ``name`` or raise :class:`JobOverlap`.

    ``lock_dir`` and the lock file in it must belong to ``uid`` (default: the effective user) and be writable
    by it alone, and neither may be a symbolic link: otherwise :class:`UnsafeLock`. Yields the lock file path.
    """
    uid = os.geteuid() if uid is None else uid
    lock = lock_dir / f"iact-job-{name}.lock"
    dir_fd = _open_lock_dir(lock_dir, uid)
    try:
        try:
            fd = os.open(lock.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafeLock(f"lock file {lock} is a symbolic link: not using it") from None
            raise UnsafeLock(f"lock file {lock}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeLock(f"lock file {lock} is not a regular file: not using it")
        _refuse_unsafe("lock file", lock, st, uid)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise JobOverlap(f"job {name} is already running (lock {lock}); not starting") from None
            raise
        yield lock
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _pump(stream: IO[bytes], name: str, to_syslog: bool) -> int:
    total = 0
    for raw in stream:
        total += len(raw)
        if to_syslog:
            syslog.syslog(syslog.LOG_INFO, raw.decode("utf-8", "replace").rstrip("\n"))
        else:
            log.info("%s: %s", name, raw.decode("utf-8", "replace").rstrip("\n"))
    return total


def run_command(
    name: str, command: Sequence[str], *, timeout: float, grace: float = 10.0, to_syslog: bool = True
) -> JobResult:
    """Run ``command`` in its own process group with a timeout; count and forward its output."""
    if not command:
        raise InputError("no command given after --")
    started = datetime.now(UTC)
    deadline = time.monotonic() + timeout
    try:
        proc = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
    except OSError as exc:
        raise InputError(f"cannot start {command[0]}: {exc.strerror}") from None
    stdout = proc.stdout
    assert stdout is not None
    # Output is read in a thread so that the timeout is enforced even when the job prints nothing.
    counted: list[int] = []
    reader = threading.Thread(target=lambda: counted.append(_pump(stdout, name, to_syslog)), daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=grace)
    code = EXIT_TIMEOUT if timed_out else proc.returncode
    if code < 0:  # killed by a signal: report as the shell does
        code = 128 - code
    return JobResult(name, started, datetime.now(UTC), code, counted[0] if counted else 0, timed_out)


def record(defaults_file: Path, result: JobResult, host: str) -> None:
    """Insert the run into ``job_runs`` (one row: start, end, status, exit code, output size)."""
    conn = mysqlconn.connect(defaults_file)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO job_runs (job_name, host, started_at, finished_at, status, exit_code,"
                " output_bytes, message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    result.name,
                    host,
                    result.started_at.replace(tzinfo=None),
                    result.finished_at.replace(tzinfo=None),
                    result.status,
                    result.exit_code,
                    result.output_bytes,
                    result.message,
                ),
            )
    finally:
        conn.close()


def cmd_run(args: argparse.Namespace) -> int:
    name: str = args.name
    if not JOB_NAME.match(name):
        raise InputError(f"--name {name!r}: use lower-case letters, digits and _ (at most 64)")
    command = list(args.job_command)
    if command and command[0] == "--":
        command = command[1:]
    syslog.openlog(f"iact-job/{name}", syslog.LOG_PID, syslog.LOG_CRON)
    lock_dir = default_lock_dir() if args.lock_dir is None else args.lock_dir
    try:
        with job_lock(lock_dir, name):
            syslog.syslog(syslog.LOG_INFO, f"start: {' '.join(command)}")
            result = run_command(name, command, timeout=args.timeout, to_syslog=not args.no_syslog)
            level = syslog.LOG_INFO if result.exit_code == 0 else syslog.LOG_ERR
            syslog.syslog(level, f"end: {result.status}, {result.message}, {result.output_bytes} bytes of output")
    except (JobOverlap, UnsafeLock) as exc:
        # cron would only mail this to nobody: the journal and syslog (shipped by the collector) keep it.
        syslog.syslog(syslog.LOG_WARNING if isinstance(exc, JobOverlap) else syslog.LOG_ERR, f"not started: {exc}")
        raise
    if args.mysql_defaults is not None:
        try:
            record(args.mysql_defaults, result, socket.getfqdn())
        except (AgentError, pymysql.MySQLError) as exc:
            # Recording is best effort: the job's own exit code is what cron and the caller see.
            if isinstance(exc, pymysql.MySQLError):
                exc = AgentError(f"MySQL error {exc.args[0]}: {exc.args[-1]}" if exc.args else repr(exc))
            syslog.syslog(syslog.LOG_ERR, f"could not record the run in job_runs: {exc}")
            log.error("could not record the run in job_runs: %s", exc)
    return result.exit_code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    job = sub.add_parser("job", help="run a scheduled job (lock, timeout, syslog, job_runs)")
    job_sub = job.add_subparsers(dest="job_action", metavar="ACTION", required=True)
    run = job_sub.add_parser("run", help="run COMMAND as job NAME")
    run.add_argument("--name", required=True, help="job name, e.g. session_cleanup")
    run.add_argument("--timeout", type=float, default=3600.0, help="seconds before the job is stopped")
    run.add_argument("--lock-dir", type=Path, default=None,
                     help=f"folder of the per-job lock files (default {LOCK_ROOT}/<user>; the user's own, 0700)")
    run.add_argument("--mysql-defaults", type=Path, help="MySQL option file used to record the run")
    run.add_argument("--no-syslog", action="store_true", help="log the job's output to stderr instead")
    run.add_argument("job_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    run.set_defaults(func=cmd_run)
