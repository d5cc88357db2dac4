"""The real collector command (``python -m iact_agents.cli collect``) as a measured subprocess.

Progress is read from its own state file (``positions.json``): an offset there is committed only after
Cassandra acknowledged every row before it, so "every offset at the end of its file" is the end-to-end
finish line. CPU (utime + stime of every thread) and resident memory come from ``/proc/<pid>``.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import CLK_TCK, Target, cpu_seconds, rss_kib


def line_ends(path: Path) -> list[int]:
    """Offsets just past every line of a file (to turn a committed byte offset into a line count)."""
    ends = []
    pos = 0
    with path.open("rb") as fh:
        for line in fh:
            pos += len(line)
            ends.append(pos)
    return ends


@dataclass
class Sample:
    at: float
    lines: int
    cpu_s: float
    rss_kib: int


@dataclass
class Shipped:
    """One measured stretch: rows shipped between two samples, their wall and CPU time."""

    rows: int
    wall_s: float
    cpu_s: float
    peak_rss_kib: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def rows_per_cpu_s(self) -> float:
        return self.rows / self.cpu_s if self.cpu_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3),
                "rows_per_s": round(self.rows_per_s), "rows_per_cpu_s": round(self.rows_per_cpu_s),
                "peak_rss_mib": round(self.peak_rss_kib / 1024, 1)}


@dataclass
class CollectorProc:
    workdir: Path
    target: Target
    host: str
    files: list[tuple[Path, str]]
    settings: dict[str, Any] = field(default_factory=dict)
    cassandra: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _ends: dict[str, list[int]] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def write_config(self) -> Path:
        top: dict[str, Any] = {"host": self.host, "state_dir": str(self.state_dir), "poll_interval_s": 0.05,
                               "rescan_interval_s": 1.0, "rotate_wait_s": 1.0, "drain_timeout_s": 10,
                               "retry_initial_s": 0.5, "retry_max_s": 5} | self.settings

        def value(v: Any) -> str:
            return json.dumps(v) if not isinstance(v, bool) else str(v).lower()

        text = "".join(f"{k} = {value(v)}\n" for k, v in top.items())
        text += "[cassandra]\n" + "".join(f"{k} = {value(v)}\n"
                                          for k, v in self.target.cassandra_settings(**self.cassandra).items())
        for path, fmt in self.files:
            text += f"[[files]]\npaths = [{json.dumps(str(path))}]\nformat = {json.dumps(fmt)}\n"
        cfg = self.workdir / "collector.toml"
        cfg.write_text(text)
        return cfg

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.write_config()
        log = (self.workdir / "collector.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "iact_agents.cli", "collect", "--config", str(cfg)],
                                     stdout=log, stderr=log, env={**os.environ, **self.env})
        log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def committed_lines(self) -> int:
        """Lines of the measured files behind the committed offsets."""
        try:
            doc = json.loads((self.state_dir / "positions.json").read_text())
        except (OSError, ValueError):
            return 0
        total = 0
        for path, _ in self.files:
            state = doc.get("sources", {}).get(f"file:{path}")
            if not state:
                continue
            ends = self._ends.get(str(path))
            if ends is None or (ends and state["offset"] > ends[-1]):
                ends = self._ends[str(path)] = line_ends(path)
            total += bisect.bisect_right(ends, state["offset"])
        return total

    def sample(self) -> Sample:
        lines = self.committed_lines()
        return Sample(time.monotonic(), lines, cpu_seconds(self.pid), rss_kib(self.pid)[1])

    def wait_lines(self, n: int, timeout: float, interval: float = 0.02) -> Sample | None:
        """The first sample with at least ``n`` lines committed (None on timeout or exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            s = self.sample()
            if s.lines >= n:
                return s
            time.sleep(interval)
        return None

    def ship(self, total: int, timeout: float = 900) -> Shipped:
        """Measure from the first committed batch to the last: steady state, start-up and connection excluded."""
        first = self.wait_lines(1, 120)
        if first is None:
            raise RuntimeError(f"the collector committed nothing; log:\n{self.tail()}")
        last = self.wait_lines(total, timeout)
        if last is None:
            raise RuntimeError(f"the collector did not ship {total} lines in {timeout}s; log:\n{self.tail()}")
        return Shipped(last.lines - first.lines, last.at - first.at, last.cpu_s - first.cpu_s, last.rss_kib)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def tail(self, n: int = 3000) -> str:
        try:
            return (self.workdir / "collector.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def clean(self) -> None:
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (utime + stime) of every thread of a process, by thread id (py-spy names threads by it)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    """Sample a running process with py-spy if it is installed: only the thread holding the GIL (``--gil``:
    a thread waiting for the GIL would otherwise look busy), so the samples show where Python code spends CPU;
    time outside the GIL (the driver's C event loop, system calls) is in :func:`thread_cpu`."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.path.exists(exe):
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
                             "--duration", str(max(1, int(seconds))), "--rate", "200", "--nonblocking",
                             "--threads", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
