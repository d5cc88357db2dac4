"""`iact-agent job run`: the one wrapper every cron job goes through.

- ``flock`` on a per-job lock file: a second run while one is still going refuses to start
  (exit code 75, logged to syslog), so runs never overlap;
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
import re
import signal
import socket
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
EXIT_TIMEOUT = 124  # as coreutils timeout(1)
JOB_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DEFAULT_LOCK_DIR = Path("/run/lock")  # world-writable and sticky: root and iact jobs share it


class JobOverlap(AgentError):
    exit_code = EXIT_OVERLAP


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
def job_lock(lock_dir: Path, name: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking flock for ``name`` or raise :class:`JobOverlap`."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_dir / f"iact-job-{name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise JobOverlap(f"job {name} is already running (lock {lock}); not starting") from None
            raise
        yield
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
    with job_lock(args.lock_dir, name):
        syslog.syslog(syslog.LOG_INFO, f"start: {' '.join(command)}")
        result = run_command(name, command, timeout=args.timeout, to_syslog=not args.no_syslog)
        level = syslog.LOG_INFO if result.exit_code == 0 else syslog.LOG_ERR
        syslog.syslog(level, f"end: {result.status}, {result.message}, {result.output_bytes} bytes of output")
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
    run.add_argument("--lock-dir", type=Path, default=DEFAULT_LOCK_DIR, help="folder of the per-job lock files")
    run.add_argument("--mysql-defaults", type=Path, help="MySQL option file used to record the run")
    run.add_argument("--no-syslog", action="store_true", help="log the job's output to stderr instead")
    run.add_argument("job_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    run.set_defaults(func=cmd_run)
