"""Part 1, parse: lines/s of each reader + parser over real captured lines, / a bare read loop over the same
bytes, both timed in CPU seconds of this process (``time.process_time``: a loaded machine steals wall time
from both, CPU time far less), best of ``repeat`` interleaved runs.

Formats: the syslog file format rsyslog writes (traditional and high-precision RFC 3339 lines, auth.log),
RFC 5424 lines (same reader), JSON lines, and journal entries (``journalctl -o json``, read by the collector's
journal reader through a stand-in journalctl that prints the file).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import JOURNAL_FIXTURES, JSON_FIXTURES, RFC5424_FIXTURES, SYSLOG_FIXTURES, fixture_lines, repeat_to

FORMATS: dict[str, tuple[tuple[str, ...], str, bool]] = {
    # name: (fixtures, reader format, lines made unique with a counter)
    "syslog file format": (SYSLOG_FIXTURES, "syslog", True),
    "RFC 5424": (RFC5424_FIXTURES, "syslog", True),
    "JSON lines": (JSON_FIXTURES, "json", False),
    "journal JSON": (JOURNAL_FIXTURES, "journal", False),
}


def bare_loop(path: Path) -> int:
    count = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for _line in fh:
            count += 1
    return count


def file_reader(path: Path, fmt: str) -> int:
    from iact_agents.collector.tailer import FileTailer, TailParams  # noqa: PLC0415

    tailer = FileTailer(str(path), fmt, state=None, params=TailParams(batch_lines=500))  # type: ignore[arg-type]
    count = 0
    while (batch := tailer.read_batch()) is not None:
        count += len(batch.records)
        tailer.ack(batch)
    tailer.close()
    return count


def journal_reader(path: Path, n: int) -> int:
    from iact_agents.collector.tailer import JournalReader  # noqa: PLC0415

    fake = path.with_name("journalctl")
    fake.write_text(f"#!/bin/sh\nexec cat {path}\n")
    fake.chmod(0o755)
    reader = JournalReader(source="journal", state=None, journalctl=str(fake), follow=False, batch_lines=500)
    count = 0
    idle = 0
    while count < n and idle < 10_000:
        batch = reader.read_batch()
        if batch is None:
            idle += 1
            if not reader.busy():
                break
            time.sleep(0)
            continue
        count += len(batch.records)
        reader.ack(batch)
    reader.close()
    return count


def cpu_time(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.process_time()
    got = fn()
    return time.process_time() - t0, got


def bench_format(name: str, workdir: Path, n: int, repeat: int) -> dict[str, Any]:
    fixtures, fmt, unique = FORMATS[name]
    lines = fixture_lines(*fixtures)
    path = workdir / f"{fmt}-{len(fixtures)}.log"
    if unique:
        size = repeat_to(path, lines, n)
    else:
        with path.open("w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(lines[i % len(lines)] + "\n")
        size = path.stat().st_size
    best_bare = best_ours = float("inf")
    for _ in range(repeat):
        t, got = cpu_time(lambda: bare_loop(path))
        assert got == n, got
        best_bare = min(best_bare, t)
        if fmt == "journal":
            t, got = cpu_time(lambda: journal_reader(path, n))
        else:
            t, got = cpu_time(lambda: file_reader(path, fmt))
        assert got == n, f"{name}: read {got} of {n} lines"
        best_ours = min(best_ours, t)
    return {"lines": n, "bytes": size, "bare_loop_lines_per_cpu_s": round(n / best_bare),
            "reader_lines_per_cpu_s": round(n / best_ours), "ratio": round(best_bare / best_ours, 4)}


def run(n: int = 200_000, repeat: int = 5, formats: tuple[str, ...] = tuple(FORMATS)) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="iact-bench-parse-") as tmp:
        return {name: bench_format(name, Path(tmp), n, repeat) for name in formats}


if __name__ == "__main__":
    import json

    sys.path.insert(0, os.path.dirname(__file__))
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000), indent=2))
