"""What every part of `make bench` shares: the cluster to write to, input lines, /proc sampling, results.

The cluster is named by the same ``IACT_TEST_CASSANDRA_*`` variables as the collector's integration tests
(``source /root/labcreds/env.sh`` on this machine). Writes use a collector host's own account when
``IACT_TEST_CASSANDRA_COLLECTOR_USER`` and ``..._COLLECTOR_PASSWORD_FILE`` are set (a host's role, MODIFY on its
own table only: ``IACT_TEST_CASSANDRA_TABLE`` must then be that host's table; roles/cassandra README, "Log
integrity"), so the collector and the driver ceiling pay the same authentication and permission checks as
deployed; otherwise ``IACT_TEST_CASSANDRA_USER``. Clean-up (deleting the benchmark's partitions) uses
``IACT_TEST_CASSANDRA_USER``. Without the variables, bench/lab.py takes the first collector host's account,
table and CA from the host's own files.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "agents" / "tests" / "fixtures" / "collector"
RESULTS = REPO / "bench" / "results"
ENV = "IACT_TEST_CASSANDRA_"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the cluster ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    hosts: list[str]
    port: int
    dc: str
    keyspace: str
    table: str
    consistency: str
    user: str | None
    password_file: str | None
    admin_user: str | None
    admin_password_file: str | None
    ca_file: str | None = None
    """CA of the nodes' certificates (``IACT_TEST_CASSANDRA_CA``): TLS with certificate and address verified."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Target | None:
        env = dict(os.environ if environ is None else environ)
        hosts = [h.strip() for h in env.get(ENV + "HOSTS", "").split(",") if h.strip()]
        if not hosts:
            return None
        admin_user = env.get(ENV + "USER") or None
        admin_pw = env.get(ENV + "PASSWORD_FILE") or None
        collector_user = env.get(ENV + "COLLECTOR_USER") or None
        collector_pw = (env.get(ENV + "COLLECTOR_PASSWORD_FILE") or None) if collector_user else None
        return cls(
            hosts=hosts, port=int(env.get(ENV + "PORT", "9042")), dc=env.get(ENV + "DC", "dc1"),
            keyspace=env.get(ENV + "KEYSPACE", "iact_logs"), table=env.get(ENV + "TABLE", "infrastructure_logs"),
            consistency=env.get(ENV + "CONSISTENCY", "LOCAL_QUORUM"),
            user=collector_user if collector_pw else admin_user, password_file=collector_pw or admin_pw,
            admin_user=admin_user, admin_password_file=admin_pw, ca_file=env.get(ENV + "CA") or None,
        )

    def cassandra_settings(self, **over: Any) -> dict[str, Any]:
        """The ``[cassandra]`` table of a collector configuration writing to this cluster."""
        out: dict[str, Any] = {
            "contact_points": self.hosts, "port": self.port, "local_dc": self.dc, "keyspace": self.keyspace,
            "table": self.table, "consistency": self.consistency,
        }
        if self.user and self.password_file:
            out |= {"username": self.user, "password_file": self.password_file}
        if self.ca_file:
            out["ssl_ca_file"] = self.ca_file
        return out | over

    def connect(self, *, admin: bool = False) -> tuple[Any, Any]:
        """(cluster, session) with the collector's routing: token-aware inside the local DC."""
        from cassandra import ConsistencyLevel  # noqa: PLC0415 - the parse part runs without the driver set up
        from cassandra.auth import PlainTextAuthProvider  # noqa: PLC0415
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile  # noqa: PLC0415
        from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy  # noqa: PLC0415

        user, pw_file = (self.admin_user, self.admin_password_file) if admin else (self.user, self.password_file)
        auth = PlainTextAuthProvider(user, Path(pw_file).read_text().strip()) if user and pw_file else None
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=self.dc)),
            consistency_level=ConsistencyLevel.name_to_value[self.consistency], request_timeout=30,
        )
        tls = None
        if self.ca_file:
            from iact_agents.config import verifying_context  # noqa: PLC0415 - the agents' own TLS context
            tls = verifying_context(Path(self.ca_file))
        cluster = Cluster(self.hosts, port=self.port, auth_provider=auth, protocol_version=5,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile}, ssl_context=tls)
        return cluster, cluster.connect()


def delete_partitions(target: Target, host: str, sources: Sequence[str], days: Sequence[date]) -> None:
    """Remove the benchmark's rows (partition deletes: one tombstone per partition)."""
    if not target.admin_user:
        return
    cluster, session = target.connect(admin=True)
    try:
        stmt = session.prepare(f"DELETE FROM {target.keyspace}.{target.table} "  # noqa: S608 - checked names
                               "WHERE host = ? AND source = ? AND day = ?")
        for source in sources:
            for day in days:
                session.execute(stmt, (host, source, day))
    finally:
        cluster.shutdown()


def bench_host(kind: str) -> str:
    """A ``host`` value of its own for every measurement: no run sees another's rows."""
    return f"bench-{kind}-{uuid.uuid4().hex[:8]}"


# --- input ---------------------------------------------------------------------------------------------

def fixture_lines(*names: str) -> list[str]:
    return [ln for name in names for ln in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if ln]


SYSLOG_FIXTURES = ("syslog_traditional.log", "syslog_rfc3339.log", "auth.log")
RFC5424_FIXTURES = ("rfc5424.log",)
JSON_FIXTURES = ("app.json.log",)
JOURNAL_FIXTURES = ("journal.json", "journal_special.json")


def repeat_to(path: Path, lines: Sequence[str], n: int) -> int:
    """Write ``n`` lines cycling through ``lines`` (each made unique by a counter); returns the size."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(f"{lines[i % len(lines)]} #{i}\n")
    return path.stat().st_size


class JsonLines:
    """JSON application log lines of the shape the fixtures show, stamped with the current time (so the rows
    land in today's partition, as a live host's would)."""

    MESSAGES = ("ingested 12 events", "cass2 answered in 2.3s", "connection refused", "job finished",
                "request served", "cache miss for key user:4242")
    LEVELS = ("INFO", "WARNING", "ERROR", "DEBUG")

    def __init__(self, seed: int = 17) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
        self.count = 0

    def make(self, n: int, at: datetime | None = None) -> str:
        at = at or datetime.now(UTC)
        out = []
        for _ in range(n):
            i = self.count
            self.count += 1
            doc = {"ts": (at + timedelta(microseconds=i % 1000)).isoformat(), "level": self.LEVELS[i % 4],
                   "logger": f"iact_agents.bench.m{i % 7}", "message": f"{self.MESSAGES[i % 6]} #{i}",
                   "request_id": uuid.UUID(int=self.rng.getrandbits(128)).hex, "duration_ms": i % 997}
            out.append(json.dumps(doc) + "\n")
        return "".join(out)


def json_file(path: Path, n: int) -> int:
    gen = JsonLines()
    with path.open("w", encoding="utf-8") as fh:
        for start in range(0, n, 10_000):
            fh.write(gen.make(min(10_000, n - start)))
    return path.stat().st_size


# --- /proc ---------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included (the driver's event loop too)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, KiB: resident memory now and its peak so far."""
    now = peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1])
    return now, peak


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# --- results -------------------------------------------------------------------------------------------

@dataclass
class Row:
    part: str
    what: str
    value: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Results:
    name: str
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    data: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def add(self, part: str, what: str, value: str, *, ratio: str = "", target: str = "",
            met: bool | None = None) -> None:
        self.rows.append(Row(part, what, value, ratio, target, met))

    def markdown(self) -> str:
        out = [f"`make bench` {self.name}, {self.started} (load before/after: "
               f"{self.data.get('load_before', '?')} / {self.data.get('load_after', '?')}, "
               f"{os.cpu_count()} CPUs)", "",
               "| part | measurement | value | ratio | target | met |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            met = "" if r.met is None else ("yes" if r.met else "**no**")
            out.append(f"| {r.part} | {r.what} | {r.value} | {r.ratio} | {r.target} | {met} |")
        return "\n".join(out)

    def write(self, out_dir: Path = RESULTS) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = out_dir / f"{self.name}-{stamp}.json"
        doc = {"name": self.name, "started": self.started, "cpus": os.cpu_count(), **self.data,
               "table": [r.__dict__ for r in self.rows]}
        path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        return path


def wait_until(pred: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
