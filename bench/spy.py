"""Summaries of py-spy's raw (collapsed-stack) output: where the CPU samples of a process went."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "iact_agents/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def summarize(raw: Path, top: int = 20) -> dict[str, Any]:
    """Total samples, samples per thread, the functions with the most samples on top of the stack (self)
    and in the stack at all (inclusive), each as a share of all samples."""
    threads: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith(("thread", "process")) else "?"
        frames = [f for f in frames if not f.startswith(("thread", "process"))]
        total += n
        threads[thread] += n
        if frames:
            self_[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(v / total, 3)) for k, v in c.most_common(top)] if total else []

    return {"samples": total, "threads": share(threads), "self": share(self_), "inclusive": share(incl)}
