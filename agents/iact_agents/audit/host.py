"""Read-only view of a host: files, ``/proc``, packages, virtualenvs, unit files, and a few read-only commands.

Everything the audit learns about the host it audits comes through :class:`HostView`, which has no method
that writes: files are opened read-only, directories are listed, ``/proc`` is read, and only the commands of
:data:`READ_ONLY_COMMANDS` may run (each one only reports). ``root`` is ``/`` on a host; the unit tests
point it at a tree shaped like one. The scheduled audit also runs in a unit whose whole file system is
read-only (``roles/audit``), so a write would fail even if one were attempted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path, PurePosixPath

from ..health.checks import CommandOutput, Runner, run_program
from . import parsers
from .parsers import Listener

log = logging.getLogger(__name__)

READ_MAX = 4 << 20
"""Bytes read of one file at most: configuration files are small; a larger one is read up to here."""

READ_ONLY_COMMANDS: dict[str, tuple[tuple[str, ...], ...]] = {
    # program -> the argument prefixes it may be run with; each of these only reports.
    "systemd-analyze": (("security",),),
    "systemctl": (("show",), ("cat",)),
    "my_print_defaults": (("--mysqld",),),
}


class NotAllowed(Exception):
    """A command outside :data:`READ_ONLY_COMMANDS` was asked for: refused, never run."""


def allowed(argv: Sequence[str]) -> bool:
    if not argv:
        return False
    prefixes = READ_ONLY_COMMANDS.get(PurePosixPath(argv[0]).name, ())
    return any(tuple(argv[1:1 + len(p)]) == p for p in prefixes)


@dataclass(frozen=True)
class Process:
    pid: int
    uid: int
    name: str
    """The kernel's name of the process (``comm``, at most 15 characters)."""
    argv: tuple[str, ...]
    start_ticks: int | None = None
    """Start time in clock ticks after boot (``/proc/<pid>/stat`` field 22)."""
    socket_inodes: frozenset[int] = field(default=frozenset(), compare=False)

    @property
    def program(self) -> str:
        """Base name of ``argv[0]`` (kernel threads have no argv: their ``comm``)."""
        return PurePosixPath(self.argv[0]).name if self.argv and self.argv[0] else self.name

    @property
    def names(self) -> set[str]:
        """Every name the process goes by: ``comm``, ``argv[0]``, and for an interpreter (``python3 -m x``,
        ``python3 /venv/bin/x``, ``java -jar x.jar`` / ``-javaagent:x.jar``) what it runs."""
        found = {self.name, self.program}
        if re.match(r"^(python[0-9.]*|java|node|perl|ruby)$", self.program):
            found |= _interpreted(self.program, self.argv[1:])
        return {n for n in found if n}

    def describe(self, users: dict[int, str]) -> str:
        command = " ".join(self.argv)[:160] or f"[{self.name}]"
        return f"pid {self.pid} ({users.get(self.uid, self.uid)}): {command}"


# Options of the interpreters that take the next word as their value.
_VALUE_OPTIONS = {"-W", "-X", "-cp", "-classpath", "--class-path", "-p", "--module-path", "-e", "-I", "-r"}


def _interpreted(program: str, args: Sequence[str]) -> set[str]:
    """What an interpreter runs: ``-m module``, the script, ``-jar``/``-javaagent:`` jars, Java's main class."""
    found: set[str] = set()
    skip = False
    for i, word in enumerate(args):
        if skip:
            skip = False
            continue
        if word.startswith("-javaagent:"):
            found.add(PurePosixPath(word.split(":", 1)[1].split("=", 1)[0]).name)
        elif word in ("-m", "-jar") and i + 1 < len(args):
            target = args[i + 1]
            found.add(target.split(".")[0] if word == "-m" else PurePosixPath(target).name)
            break
        elif word == "-c" and program.startswith("python"):
            break
        elif word in _VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            found.add(PurePosixPath(word).name)
            if program == "java":
                found.add(word.rsplit(".", 1)[-1])  # org.apache.x.CassandraDaemon -> CassandraDaemon
            break
    return found


@dataclass(frozen=True)
class Venv:
    """A Python environment and the distributions and top-level modules installed in it."""

    path: str
    packages: frozenset[str]
    bin_names: frozenset[str] = frozenset()


class HostView:
    """The host as the audit may see it: read-only."""

    def __init__(self, root: Path = Path("/"), run: Runner = run_program, *, command_timeout_s: float = 60.0) -> None:
        self.root = root
        self._run = run
        self.command_timeout_s = command_timeout_s

    # --- files ---------------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """``name`` (an absolute path on the host) under this view's root."""
        return self.root / name.lstrip("/")

    def read_bytes(self, name: str, limit: int = READ_MAX) -> bytes | None:
        """Up to ``limit`` bytes of the file (None when it is missing or unreadable)."""
        try:
            with open(self.path(name), "rb") as fh:  # read-only
                return fh.read(limit)
        except OSError:
            return None

    def read_text(self, name: str, limit: int = READ_MAX) -> str | None:
        data = self.read_bytes(name, limit)
        return None if data is None else data.decode("utf-8", "replace")

    def stat(self, name: str, *, follow: bool = True) -> os.stat_result | None:
        try:
            return os.stat(self.path(name), follow_symlinks=follow)
        except (OSError, ValueError):
            return None

    def listdir(self, name: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(name)))
        except (OSError, ValueError):
            return []

    def is_dir(self, name: str) -> bool:
        st = self.stat(name)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def glob(self, pattern: str) -> list[str]:
        """Host paths matching ``pattern``; ``**`` matches any number of folders (bounded depth)."""
        parts = PurePosixPath(pattern).parts[1:]
        found: list[str] = []

        def walk(base: str, rest: tuple[str, ...], depth: int) -> None:
            if not rest or depth > 12:
                if not rest:
                    found.append(base or "/")
                return
            head, tail = rest[0], rest[1:]
            if head == "**":
                walk(base, tail, depth + 1)
                for entry in self.listdir(base or "/"):
                    child = f"{base}/{entry}"
                    st = self.stat(child, follow=False)
                    if st is not None and stat.S_ISDIR(st.st_mode):
                        walk(child, rest, depth + 1)
                return
            if not any(c in head for c in "*?["):
                child = f"{base}/{head}"
                if self.stat(child, follow=False) is not None:
                    walk(child, tail, depth + 1)
                return
            for entry in self.listdir(base or "/"):
                if fnmatchcase(entry, head):
                    walk(f"{base}/{entry}", tail, depth + 1)

        walk("", parts, 0)
        return sorted(set(found))

    # --- commands ------------------------------------------------------------------------------------

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandOutput:
        """Run one of :data:`READ_ONLY_COMMANDS`; anything else raises :class:`NotAllowed`."""
        if not allowed(argv):
            raise NotAllowed(f"{' '.join(argv)[:80]}: not one of the audit's read-only commands")
        return self._run(list(argv), self.command_timeout_s if timeout is None else timeout)

    # --- accounts ------------------------------------------------------------------------------------

    @cached_property
    def users(self) -> dict[int, str]:
        return parsers.parse_id_names(self.read_text("/etc/passwd") or "")

    @cached_property
    def groups(self) -> dict[int, str]:
        return parsers.parse_id_names(self.read_text("/etc/group") or "")

    def user_name(self, uid: int) -> str:
        return self.users.get(uid, str(uid))

    def group_name(self, gid: int) -> str:
        return self.groups.get(gid, str(gid))

    # --- processes and sockets -----------------------------------------------------------------------

    @cached_property
    def processes(self) -> list[Process]:
        found = []
        for entry in self.listdir("/proc"):
            if entry.isdigit():
                proc = self._process(int(entry))
                if proc is not None:
                    found.append(proc)
        return found

    def _process(self, pid: int) -> Process | None:
        base = f"/proc/{pid}"
        status = self.read_text(f"{base}/status", 64 << 10)
        if status is None:
            return None  # gone since the listing
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        name = fields.get("Name", "").strip()
        try:
            uid = int(fields.get("Uid", "").split()[1])  # effective uid
        except (IndexError, ValueError):
            return None
        raw = self.read_bytes(f"{base}/cmdline", 64 << 10) or b""
        argv = tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)
        start: int | None = None
        stat_text = self.read_text(f"{base}/stat", 8 << 10) or ""
        after_comm = stat_text.rpartition(")")[2].split()
        with contextlib.suppress(IndexError, ValueError):
            start = int(after_comm[19])  # field 22 counted from 1; the first two end with ")"
        return Process(pid, uid, name, argv, start, frozenset(self._socket_inodes(pid)))

    def _socket_inodes(self, pid: int) -> Iterator[int]:
        fd_dir = f"/proc/{pid}/fd"
        for fd in self.listdir(fd_dir):
            try:
                target = os.readlink(self.path(f"{fd_dir}/{fd}"))
            except OSError:
                continue
            m = re.fullmatch(r"socket:\[(\d+)\]", target)
            if m:
                yield int(m.group(1))

    def environ_names(self, pid: int) -> set[str]:
        """Names (never values) of the variables in a process's environment (empty when unreadable)."""
        raw = self.read_bytes(f"/proc/{pid}/environ", 256 << 10) or b""
        return {part.split(b"=", 1)[0].decode("utf-8", "replace") for part in raw.split(b"\0") if b"=" in part}

    @cached_property
    def listeners(self) -> list[Listener]:
        found: list[Listener] = []
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            found += parsers.parse_proc_net_tcp(self.read_text(name) or "")
        return found

    def listeners_of(self, proc: Process) -> list[Listener]:
        return [li for li in self.listeners if li.inode in proc.socket_inodes]

    def owner_of(self, listener: Listener) -> Process | None:
        return next((p for p in self.processes if listener.inode in p.socket_inodes), None)

    @cached_property
    def boot_time(self) -> int | None:
        """``btime`` of ``/proc/stat`` (epoch seconds), to date process start times."""
        m = re.search(r"^btime\s+(\d+)", self.read_text("/proc/stat") or "", re.MULTILINE)
        return int(m.group(1)) if m else None

    def started_at(self, proc: Process) -> float | None:
        """Epoch seconds at which ``proc`` started (None when ``/proc`` does not say)."""
        if proc.start_ticks is None or self.boot_time is None:
            return None
        return self.boot_time + proc.start_ticks / os.sysconf("SC_CLK_TCK")

    # --- packages, programs, environments, units -----------------------------------------------------

    @cached_property
    def packages(self) -> dict[str, str]:
        return parsers.parse_dpkg_status(self.read_text("/var/lib/dpkg/status", 64 << 20) or "")

    def executables(self, folder: str) -> set[str]:
        names = set()
        for entry in self.listdir(folder):
            st = self.stat(f"{folder}/{entry}")
            if st is not None and stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                names.add(entry)
        return names

    def venvs(self, roots: Sequence[str], skip: Sequence[str], max_depth: int,
              max_dirs: int) -> tuple[list[Venv], bool]:
        """Virtualenvs (folders with ``pyvenv.cfg``) below ``roots`` and the system site folders. The
        second value is False when the search stopped at ``max_dirs`` folders."""
        found: list[Venv] = []
        seen_dirs = 0
        complete = True
        for site in self._system_site_dirs():
            found.append(Venv(site, frozenset(self._site_packages([site]))))
        stack = [(r.rstrip("/") or "/", 0) for r in roots]
        visited: set[str] = set()
        while stack:
            folder, depth = stack.pop()
            if folder in visited or any(folder == s or folder.startswith(s.rstrip("/") + "/") for s in skip):
                continue
            visited.add(folder)
            seen_dirs += 1
            if seen_dirs > max_dirs:
                complete = False
                break
            entries = self.listdir(folder)
            if "pyvenv.cfg" in entries:
                sites = [f"{folder}/lib/{d}/site-packages" for d in self.listdir(f"{folder}/lib") if d.startswith("py")]
                found.append(Venv(folder, frozenset(self._site_packages(sites)),
                                  frozenset(self.executables(f"{folder}/bin"))))
                continue
            if depth >= max_depth:
                continue
            for entry in entries:
                child = f"{folder.rstrip('/')}/{entry}"
                st = self.stat(child, follow=False)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    stack.append((child, depth + 1))
        return found, complete

    def _system_site_dirs(self) -> list[str]:
        dirs = ["/usr/lib/python3/dist-packages"]
        for base in ("/usr/local/lib", "/usr/lib"):
            for d in self.listdir(base):
                if d.startswith("python3"):
                    dirs += [f"{base}/{d}/dist-packages", f"{base}/{d}/site-packages"]
        return [d for d in dict.fromkeys(dirs) if self.is_dir(d)]

    def _site_packages(self, sites: Sequence[str]) -> set[str]:
        names = set()
        for site in sites:
            for entry in self.listdir(site):
                name = parsers.distribution_name(entry)
                if name:
                    names.add(name)
        return names

    UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
                 "/usr/lib/systemd/system", "/lib/systemd/system", "/etc/init.d")

    @cached_property
    def unit_files(self) -> dict[str, str]:
        """Unit files and init scripts: name -> the folder it is in (the first folder wins, as in systemd)."""
        units: dict[str, str] = {}
        for folder in self.UNIT_DIRS:
            for entry in self.listdir(folder):
                st = self.stat(f"{folder}/{entry}")
                if st is not None and stat.S_ISREG(st.st_mode):
                    units.setdefault(entry, folder)
        return units
