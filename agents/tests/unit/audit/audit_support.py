"""Helpers of the audit's unit tests (a plain module: every test folder has its own).

:class:`Tree` builds a folder shaped like a host (``/proc`` entries, ``/var/lib/dpkg/status``, virtualenvs, unit
files, configuration files) for :class:`~iact_agents.audit.host.HostView` to read. The probes of the services
(MariaDB, Cassandra, HTTP) are given to :class:`~iact_agents.audit.facts.Facts` as facts; they are exercised
against the real services by ``tests/integration/audit``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iact_agents.audit.config import AuditConfig
from iact_agents.audit.facts import Facts
from iact_agents.audit.host import HostView
from iact_agents.health.checks import CommandOutput

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audit"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def web_settings_text() -> str:
    """The web layer's own settings module (what the role deploys), not a copy of it."""
    return (Path(__file__).resolve().parents[4] / "web" / "iact_web" / "settings.py").read_text(encoding="utf-8")


def tcp_line(index: int, address_hex: str, port: int, inode: int, state: str = "0A") -> str:
    return (f"{index:4d}: {address_hex}:{port:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000"
            f"     0        0 {inode} 1 0000000000000000 100 0 0 10 0")


TCP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode")


class Runner:
    """Answers the read-only commands by their argv (joined with spaces); records what was asked."""

    def __init__(self, answers: dict[str, CommandOutput | Exception] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandOutput:
        self.calls.append(list(argv))
        answer = self.answers.get(" ".join(argv), CommandOutput(1, "", f"{argv[0]}: not answered in this test"))
        if isinstance(answer, Exception):
            raise answer
        return answer


class Tree:
    """A folder shaped like a host. Every method returns ``self`` so a test reads as a description."""

    def __init__(self, root: Path, *, me: str = "root", my_group: str = "root") -> None:
        """``me``/``my_group``: the names the tree gives the uid and gid running the tests (the owner of every file
        it writes), so that ownership can be tested without changing owners."""
        self.root = root
        self._inode = 90000
        uid, gid = os.getuid(), os.getgid()
        users = [(me, uid)] + [(n, i) for n, i in (("root", 0), ("mysql", 60101), ("cassandra", 60102),
                                                   ("iact", 60999), ("iact-collector", 60998), ("nobody", 65534))
                                                   if n != me and i != uid]
        groups = [(my_group, gid)] + [(n, i) for n, i in (("root", 0), ("mysql", 60102), ("cassandra", 60103),
                                                          ("iact", 60999), ("staff", 50)) if n != my_group and i != gid]
        self.write("/etc/passwd", "".join(f"{n}:x:{i}:{i}::/nonexistent:/bin/false\n" for n, i in users))
        self.write("/etc/group", "".join(f"{n}:x:{i}:\n" for n, i in groups))
        self.write("/var/lib/dpkg/status", "")
        self.write("/proc/stat", "cpu 1 2 3\nbtime 1790000000\n")
        self.write("/proc/net/tcp", TCP_HEADER + "\n")
        self.write("/proc/net/tcp6", TCP_HEADER + "\n")

    def path(self, name: str) -> Path:
        return self.root / name.lstrip("/")

    def write(self, name: str, text: str, mode: int = 0o644, *, uid: int | None = None,
              gid: int | None = None) -> Tree:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        if uid is not None or gid is not None:
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        return self

    def mkdir(self, name: str, mode: int = 0o755) -> Tree:
        path = self.path(name)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        return self

    def executable(self, name: str) -> Tree:
        return self.write(name, "#!/bin/sh\n", 0o755)

    def package(self, name: str, version: str = "1.0", status: str = "install ok installed") -> Tree:
        path = self.path("/var/lib/dpkg/status")
        path.write_text(path.read_text() + f"Package: {name}\nStatus: {status}\nVersion: {version}\n\n")
        return self

    def venv(self, folder: str, *entries: str) -> Tree:
        self.write(f"{folder}/pyvenv.cfg", "home = /usr/bin\n")
        self.executable(f"{folder}/bin/python3")
        site = f"{folder}/lib/python3.11/site-packages"
        self.mkdir(site)
        for entry in entries:
            if entry.endswith(".py"):
                self.write(f"{site}/{entry}", "")
            else:
                self.mkdir(f"{site}/{entry}")
        return self

    def unit(self, name: str, folder: str = "/lib/systemd/system") -> Tree:
        return self.write(f"{folder}/{name}", "[Unit]\n")

    def process(self, pid: int, argv: Sequence[str], *, uid: int = 0, name: str | None = None,
                listen: Sequence[tuple[str, int]] = (), start_ticks: int = 1000, environ: Sequence[str] = ()) -> Tree:
        comm = (name or Path(argv[0]).name)[:15]
        base = f"/proc/{pid}"
        self.write(f"{base}/status", f"Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        self.path(f"{base}/cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        fields = ["S"] + ["0"] * 18 + [str(start_ticks)]
        self.write(f"{base}/stat", f"{pid} ({comm}) " + " ".join(fields) + " 0 0\n")
        self.path(f"{base}/environ").write_bytes(b"\0".join(e.encode() for e in environ) + (b"\0" if environ else b""))
        self.mkdir(f"{base}/fd")
        for i, (address, port) in enumerate(listen):
            self._inode += 1
            os.symlink(f"socket:[{self._inode}]", self.path(f"{base}/fd/{i + 3}"))
            self._listen(address, port, self._inode)
        return self

    def _listen(self, address: str, port: int, inode: int) -> None:
        if ":" in address:
            table, hexed = "/proc/net/tcp6", _hex6(address)
        else:
            table, hexed = "/proc/net/tcp", "".join(f"{int(o):02X}" for o in reversed(address.split(".")))
        path = self.path(table)
        lines = path.read_text().splitlines()
        lines.append(tcp_line(len(lines) - 1, hexed, port, inode))
        path.write_text("\n".join(lines) + "\n")


def _hex6(address: str) -> str:
    import ipaddress  # noqa: PLC0415

    raw = ipaddress.IPv6Address(address).packed
    return "".join(raw[i:i + 4][::-1].hex().upper() for i in range(0, 16, 4))


def facts_for(tree: Tree, runner: Runner | None = None, **config: Any) -> Facts:
    """Facts of the tree with a configuration built from ``config`` (the TOML sections as dicts)."""
    cfg = AuditConfig.model_validate({"host": "testhost", **config})
    return Facts(cfg, HostView(tree.root, runner or Runner()))


def snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes | str]]:
    """Every path under ``root`` with its mode, size, mtime and content (or link target)."""
    out: dict[str, tuple[int, int, int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            content: bytes | str = os.readlink(p) if p.is_symlink() else (p.read_bytes() if p.is_file() else b"")
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out
