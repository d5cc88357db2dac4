"""Helpers shared by the collector's unit tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from iact_agents.collector.config import CollectorConfig
from iact_agents.collector.records import Record
from iact_agents.collector.tailer import FileTailer


def crash_loop(script: str, cfg: CollectorConfig, out: Path, tries: int = 8) -> list[int]:
    """Run ``python -c script <config JSON> <out>`` again after every failure, as systemd's Restart=on-failure
    would, at most ``tries`` times and until it exits 0; the exit codes in order."""
    codes: list[int] = []
    for _ in range(tries):
        proc = subprocess.run([sys.executable, "-c", script, cfg.model_dump_json(), str(out)],
                              capture_output=True, text=True, timeout=120, check=False)
        codes.append(proc.returncode)
        if proc.returncode == 0:
            break
    return codes


def read_all(tailer: FileTailer, max_batches: int) -> list[Record]:
    """Every record ``tailer`` hands out until it has nothing new (each batch acknowledged), then closed."""
    records: list[Record] = []
    try:
        for _ in range(max_batches):
            batch = tailer.read_batch()
            if batch is None:
                break
            records += batch.records
            tailer.ack(batch)
    finally:
        tailer.close()
    return records
