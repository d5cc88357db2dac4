"""The health agent's memory between runs: one small JSON file, ``<state_dir>/state.json``.

Most of what the agent remembers lives in MySQL (results, alerts); this file holds what must work when
MySQL does not: how many checks in a row a unit was not steadily active (``services``), and an ongoing
outage of the metrics store with the last notification sent about it (``mysql_outage``).

Each part is read and written in one :meth:`LocalState.section`: an exclusive ``flock`` on
``state.lock`` (so that a run started by hand beside cron's does not lose an update or send a second
notification), the whole file read, the section handed to the caller, the file replaced atomically
(:func:`iact_agents.fsutil.replace_atomically`). Reading is total: a missing file is an empty memory, and
a file that is not the JSON object this module writes is set aside as empty, with a note. What cannot be
read or written at all raises :class:`StateUnavailable`; the caller turns it into the ``health:state``
result and carries on without memory.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import storable
from ..errors import AgentError
from ..fsutil import replace_atomically
from .models import CheckResult, Status

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
VERSION = 1
MAX_BYTES = 1 << 20
"""A state file larger than this is not ours (ours holds a few lines per unit): set aside, not read."""


class StateUnavailable(AgentError):
    """The state folder or file cannot be used (missing parent, permissions, another run holding the lock)."""


class LocalState:
    def __init__(self, directory: Path, *, write: bool = True, lock_timeout_s: float = 10.0) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self.write = write
        self.lock_timeout_s = lock_timeout_s
        self.notes: list[str] = []
        """Why the memory was incomplete in this run (one line each): what ``health:state`` reports."""

    # --- the one way in --------------------------------------------------------------------------

    @contextmanager
    def section(self, name: str) -> Iterator[dict[str, Any]]:
        """The mutable section ``name`` (empty when missing or unreadable); written back when the block ends
        without an exception. Raises :class:`StateUnavailable` (and records the reason in ``notes``)."""
        try:
            with self._locked():
                doc = self._read()
                raw = doc.get(name)
                part: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
                yield part
                if self.write:
                    doc[name] = part
                    self._save(doc)
        except StateUnavailable as exc:
            self.notes.append(str(exc))
            raise

    def result(self, host: str) -> CheckResult:
        """``health:state``: whether this run could remember what the previous one saw."""
        detail = {"path": str(self.path), "notes": list(self.notes)}
        if self.notes:
            return CheckResult("health", "state", host, Status.WARNING,
                               "; ".join(self.notes)[:900] + " (crash loops are not escalated and a MySQL outage is"
                               " notified at every run until this is fixed)", None, detail)
        how = "kept" if self.write else "read (not written: --no-record)"
        return CheckResult("health", "state", host, Status.OK, f"local state {how} in {self.path}", None, detail)

    # --- details ---------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self.write:  # read-only runs take no lock and create nothing: the file is replaced atomically
            yield
            return
        self._ensure_directory()
        lock = self.directory / LOCK_FILE
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateUnavailable(f"{lock}: cannot open the lock file: {exc.strerror}") from None
        try:
            try:
                self._hand_back(fd)
            except OSError as exc:
                raise StateUnavailable(f"{lock}: cannot hand the lock file back: {exc.strerror}") from None
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise StateUnavailable(f"{lock}: cannot lock: {exc.strerror}") from None
                if time.monotonic() >= deadline:
                    raise StateUnavailable(
                        f"{lock}: still locked by another health run after {self.lock_timeout_s:g} s")
                time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o750, exist_ok=True)
        except OSError as exc:
            raise StateUnavailable(f"{self.directory}: cannot create the state folder: {exc.strerror}") from None

    def _read(self) -> dict[str, Any]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return {"version": VERSION}
        except OSError as exc:
            raise StateUnavailable(f"{self.path}: cannot read: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise StateUnavailable(f"{self.path}: cannot read: {exc.strerror}") from None
        problem = None
        doc: Any = None
        if len(data) > MAX_BYTES:
            problem = f"larger than {MAX_BYTES} bytes"
        else:
            try:
                doc = storable.loads(data)
            except storable.InvalidJson as exc:
                problem = f"not JSON ({exc})"[:200]
        if problem is None and not (isinstance(doc, dict) and doc.get("version") == VERSION):
            problem = f"not a version {VERSION} state object"
        if problem is not None:
            # Not ours, or damaged: start again from an empty memory (the next write replaces it).
            log.warning("%s: %s; starting from an empty state", self.path, problem)
            self.notes.append(f"{self.path} was {problem}: started from an empty state")
            return {"version": VERSION}
        assert isinstance(doc, dict)
        return doc

    def _save(self, doc: dict[str, Any]) -> None:
        data = (json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n").encode()
        try:
            replace_atomically(self.path, data, 0o640)
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                self._hand_back(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StateUnavailable(f"{self.path}: cannot write: {exc.strerror}") from None

    def _hand_back(self, fd: int) -> None:
        """A run by hand as root must not leave files that the agent's own user cannot open next time: they
        go to the owner of the state folder."""
        if os.geteuid() == 0:
            st = os.stat(self.directory)
            os.fchown(fd, st.st_uid, st.st_gid)
