"""Pure parsers of tool output (``nodetool status``, ``nodetool describecluster``, ``chronyc tracking``,
``systemctl show``) and of the numbers in the JSON state files the agent reads.

Tested with captured output under ``agents/tests/fixtures/health/``. They never raise on odd input:
lines they do not recognise are skipped, and the caller judges an empty result.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# "UN  172.18.0.2  104.33 KiB  16  100.0%  6c1a...-...  rack1": the load has a unit and may be "?",
# ownership may be "?" when keyspaces differ in replication; Cassandra 4.x/5.x print a Host ID (UUID).
_NODE_LINE = re.compile(
    r"^(?P<status>[UD])(?P<state>[NLJM])\s+(?P<address>\S+)\s+(?P<load>\?|[\d.,]+\s*[KMGTP]?i?B|\S+)\s+"
    r"(?:(?P<tokens>\d+)\s+)?(?P<owns>\?|[\d.]+%)\s+(?P<host_id>[0-9a-f]{8}-[0-9a-f-]{27})\s+(?P<rack>\S.*?)\s*$"
)
_DATACENTER = re.compile(r"^Datacenter:\s*(?P<dc>\S+)")

STATE_NAMES = {"N": "normal", "L": "leaving", "J": "joining", "M": "moving"}


@dataclass(frozen=True)
class NodeStatus:
    datacenter: str
    address: str
    up: bool
    state: str
    """``N`` normal, ``L`` leaving, ``J`` joining, ``M`` moving."""
    load: str
    owns: str
    host_id: str
    rack: str

    @property
    def code(self) -> str:
        """The two letters ``nodetool status`` prints (``UN``, ``DN``, ``UJ``...)."""
        return ("U" if self.up else "D") + self.state


def parse_nodetool_status(text: str) -> list[NodeStatus]:
    """Every node line of ``nodetool status``, in the order printed."""
    nodes: list[NodeStatus] = []
    dc = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        m_dc = _DATACENTER.match(line)
        if m_dc:
            dc = m_dc.group("dc")
            continue
        m = _NODE_LINE.match(line)
        if m:
            nodes.append(
                NodeStatus(
                    datacenter=dc,
                    address=m.group("address"),
                    up=m.group("status") == "U",
                    state=m.group("state"),
                    load=m.group("load"),
                    owns=m.group("owns"),
                    host_id=m.group("host_id"),
                    rack=m.group("rack"),
                )
            )
    return nodes


@dataclass(frozen=True)
class ClusterDescription:
    name: str | None
    schema_versions: dict[str, list[str]] = field(default_factory=dict)
    """Schema version -> endpoints reporting it; nodes that cannot be asked are under ``UNREACHABLE``."""

    @property
    def unreachable(self) -> list[str]:
        return self.schema_versions.get("UNREACHABLE", [])

    @property
    def versions(self) -> list[str]:
        return sorted(v for v in self.schema_versions if v != "UNREACHABLE")

    @property
    def agreement(self) -> bool:
        return len(self.versions) == 1 and not self.unreachable


_SCHEMA_LINE = re.compile(r"^\s+(?P<version>[0-9a-fA-F-]{36}|UNREACHABLE):\s*\[(?P<endpoints>[^\]]*)\]\s*$")


def parse_describecluster(text: str) -> ClusterDescription:
    """Cluster name and the ``Schema versions:`` block of ``nodetool describecluster``."""
    name: str | None = None
    versions: dict[str, list[str]] = {}
    in_schema = False
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("Name:") and name is None:
            name = stripped.partition(":")[2].strip()
            continue
        if stripped == "Schema versions:":
            in_schema = True
            continue
        if in_schema:
            if not stripped:  # nodetool prints a blank line after each version
                continue
            m = _SCHEMA_LINE.match(raw)
            if m:
                endpoints = [e.strip() for e in m.group("endpoints").split(",") if e.strip()]
                versions.setdefault(m.group("version"), []).extend(endpoints)
                continue
            in_schema = False
    return ClusterDescription(name=name, schema_versions=versions)


@dataclass(frozen=True)
class ChronyTracking:
    leap_status: str | None
    system_time_offset_s: float | None
    """Positive: the system clock is fast (``slow`` in chrony's words means the reverse sign)."""


_CHRONY_SYSTEM_TIME = re.compile(r"^System time\s*:\s*(?P<v>[\d.]+) seconds (?P<dir>fast|slow)")


def parse_chrony_tracking(text: str) -> ChronyTracking:
    leap: str | None = None
    offset: float | None = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Leap status":
            leap = value.strip()
        m = _CHRONY_SYSTEM_TIME.match(line)
        if m:
            offset = float(m.group("v")) * (1 if m.group("dir") == "fast" else -1)
    return ChronyTracking(leap_status=leap, system_time_offset_s=offset)


@dataclass(frozen=True)
class UnitState:
    """What ``systemctl show`` says about one unit."""

    active: str
    sub: str = ""
    load: str = ""
    n_restarts: int | None = None


def parse_systemctl_show(text: str) -> UnitState | None:
    """``Key=Value`` lines of ``systemctl show``; None without an ``ActiveState`` line."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    active = props.get("ActiveState", "")
    if not active:
        return None
    restarts = props.get("NRestarts", "")
    n_restarts = int(restarts) if restarts.isascii() and restarts.isdigit() else None
    return UnitState(active, props.get("SubState", ""), props.get("LoadState", ""), n_restarts)


def json_count(value: Any) -> int | None:
    """A non-negative integer read from JSON, or None for anything else (booleans included)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def json_seconds(value: Any) -> float | None:
    """Epoch (or elapsed) seconds read from JSON: a finite number, or None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return seconds if math.isfinite(seconds) else None
