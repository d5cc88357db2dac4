"""DR drill: marker writes, backup, disaster, restore, verification, RPO/RTO, over the Ansible inventory.

Host operations go through pyinfra (``drill/inventory.py`` turns the Ansible inventory into pyinfra hosts:
SSH for the lab, ``@docker/<name>`` for molecule). The backup and restore steps run the very commands that
roles/backup installs and that the restore playbooks call (``/usr/local/sbin/iact-backup``).

    .venv/bin/python drill/drill.py [--inventory inventory/lab] [--report-dir .lab/reports]
                                    [--cassandra-node NAME] [--markers N] [--force]

Backups are encrypted on their sources (age); the drill brings the private key of the backups from the inventory
(``backup_age_identity``, the vault) to each restored host for its restore command only, as the restore
playbooks do, and removes it afterwards whatever happens.

Steps: preflight (MariaDB answers, every Cassandra node UN) → marker batch A (MySQL iact_drill.markers, Cassandra
iact_drill.markers at consistency ALL) → backup (MariaDB full + binary logs, the victim node's snapshot) →
marker batch B → pre-disaster manifest (row count and CHECKSUM TABLE of every table of `iact` and
`iact_drill`, taken under FLUSH TABLES WITH READ LOCK) and binary-log shipment → DISASTER (MariaDB stopped
and its data directory wiped; the victim Cassandra node stopped and its data wiped) → restore MariaDB to the
manifest's point in time, verify every marker and every table's count and checksum → restore the node from
its snapshot, check its own SSTables hold batch A, repair, check batch B → report (JSON + Markdown, a
job_runs row and a dr_drills row when migration 0012 is applied). Exit 0 only when everything verified.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("IACT_PYINFRA_INVENTORY_SKIP", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyinfra.api.command import StringCommand
from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.host import Host
from pyinfra.api.inventory import Inventory
from pyinfra.api.state import State

import inventory as ansible_inv

ROOT = Path(__file__).resolve().parents[1]
BACKUP = "/usr/local/sbin/iact-backup"
IDENTITY_DIR = "/run/iact-backup"
IDENTITY = f"{IDENTITY_DIR}/age-identity"
# Uploaded here first (root's own folder, on the root file system), then moved into the tmpfs: pyinfra's docker
# connector copies with `docker cp`, which cannot write into a tmpfs such as /run ("Could not find the file").
IDENTITY_STAGING = "/root/.iact-restore-identity"
IDENTITY_RE = re.compile(r"^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$")
CQL_HELPER = "/root/iact-drill-cql_markers.py"
MYSQL_SCHEMAS = ("iact", "iact_drill")


class DrillError(Exception):
    """A step failed or a verification did not match: the drill fails with this message."""


@dataclass
class Cluster:
    state: State
    hosts: dict[str, Host]
    groups: dict[str, list[str]]

    def run(self, name: str, command: str, *, check: bool = True, timeout: int = 3600) -> str:
        host = self.hosts[name]
        args: dict[str, Any] = {"_timeout": timeout}
        if host.data.get("_sudo"):
            args["_sudo"] = True
        ok, out = host.run_shell_command(StringCommand(command), **args)
        if check and not ok:
            raise DrillError(f"{name}: `{command[:120]}` failed: {out.stderr.strip()[-800:] or out.stdout[-800:]}")
        return str(out.stdout)

    def ring(self, name: str) -> dict[str, Any]:
        """The ring as ``name`` sees it, judged by ``iact-agent cassandra status`` (agents/iact_agents/ring.py)."""
        out = self.run(name, "iact-agent cassandra status --json", check=False)
        try:
            doc = json.loads(out)
        except ValueError:
            raise DrillError(f"{name}: iact-agent cassandra status printed no verdict: {out[-300:]!r}") from None
        return doc if isinstance(doc, dict) else {"ok": False, "reason": "not a JSON object", "not_up_normal": []}

    def put(self, name: str, local: Path | io.StringIO, remote: str) -> None:
        if not self.hosts[name].put_file(local if isinstance(local, io.StringIO) else str(local), remote):
            raise DrillError(f"{name}: cannot upload {local} to {remote}")

    def variable(self, name: str, var: str) -> Any:
        """An inventory variable of the host, its Jinja references (e.g. to the vault) resolved."""
        hv: dict[str, Any] = self.hosts[name].data.get("ansible_vars", {})
        return ansible_inv.render(hv, hv.get(var))


@contextmanager
def restore_key(c: Cluster, hosts: list[str]) -> Iterator[None]:
    """The backups' private key (inventory: backup_age_identity) on the hosts for the restores only (root-only
    tmpfs), removed afterwards whatever happens."""
    try:
        bring_identity(c, hosts)
        yield
    finally:
        for host in hosts:
            c.run(host, f"rm -f {IDENTITY} {IDENTITY_STAGING}", check=False)


def bring_identity(c: Cluster, hosts: list[str]) -> None:
    for host in hosts:
        key = str(c.variable(host, "backup_age_identity") or "").strip()
        if not IDENTITY_RE.match(key):
            raise DrillError(f"{host}: backup_age_identity (the vault's age private key of the backups) is not set in"
                             " the inventory: encrypted backups cannot be restored without it")
        c.run(host, f"install -d -m 0700 {IDENTITY_DIR}")
        c.put(host, io.StringIO(key + "\n"), IDENTITY_STAGING)
        c.run(host, f"install -m 0600 {IDENTITY_STAGING} {IDENTITY}; status=$?; rm -f {IDENTITY_STAGING}; exit $status")


def connect(inventory_path: str) -> Cluster:
    groups = ansible_inv.load(inventory_path)
    specs = groups.get("all", [])
    if not specs:
        raise DrillError(f"inventory {inventory_path} has no hosts")
    inv = Inventory((specs, {}), **{g: (hs, {}) for g, hs in groups.items() if g != "all"})
    state = State(inv, Config(CONNECT_TIMEOUT=20))
    connect_all(state)
    hosts = {h.data.get("ansible_name", h.name): h for h in inv}
    missing = [h[1]["ansible_name"] for h in specs if h[1]["ansible_name"] not in hosts]
    if missing or len(state.failed_hosts):
        raise DrillError(f"cannot connect to {missing or [h.name for h in state.failed_hosts]}")
    return Cluster(state, hosts, {g: [h[1]["ansible_name"] for h in hs] for g, hs in groups.items()})


def now() -> datetime:
    return datetime.now(UTC)


def mysql(c: Cluster, host: str, sql: str) -> list[list[str]]:
    """Run SQL as root through the mariadb client on the host (no bind parameters there: every value in the
    drill's SQL is generated by the drill itself or read from information_schema, never user input)."""
    out = c.run(host, f"mariadb -N -B -e {shlex.quote(sql)}")
    return [line.split("\t") for line in out.splitlines() if line]


@dataclass
class Report:
    drill_id: str
    inventory: str
    started_at: str = ""
    finished_at: str = ""
    status: str = "failure"
    error: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    mysql: dict[str, Any] = field(default_factory=dict)
    cassandra: dict[str, Any] = field(default_factory=dict)
    rpo_s: dict[str, float] = field(default_factory=dict)
    rto_s: dict[str, float] = field(default_factory=dict)
    throughput_mb_s: dict[str, float] = field(default_factory=dict)

    def step(self, name: str, t0: float, **detail: Any) -> None:
        self.steps.append({"step": name, "seconds": round(time.monotonic() - t0, 2), **detail})
        print(f"drill: {name} ({self.steps[-1]['seconds']} s)", flush=True)


BINLOG_FILE = re.compile(r"^[\w.-]+\.\d{6}$")


def table_manifest(c: Cluster, host: str) -> tuple[dict[str, dict[str, int]], datetime, str]:
    """Count and CHECKSUM TABLE of every base table of MYSQL_SCHEMAS, consistent (read lock), the time and the
    binary-log coordinates (FILE:POS) of that state. The restore replays up to the coordinates, not the time:
    a statement that waited for the read lock is stamped with the second it began, so a restore "until the
    next second" would replay it although it committed after the manifest."""
    schemas = ", ".join(f"'{s}'" for s in MYSQL_SCHEMAS)
    listing = ("SELECT table_schema, table_name FROM information_schema.tables"  # noqa: S608 - see mysql()
               f" WHERE table_schema IN ({schemas}) AND table_type = 'BASE TABLE' ORDER BY 1, 2")
    tables = [f"{r[0]}.{r[1]}" for r in mysql(c, host, listing)]
    parts = ["FLUSH TABLES WITH READ LOCK", "SELECT 'now', DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s')",
             "SHOW MASTER STATUS"]
    parts += [f"SELECT 'count', '{t}', COUNT(*) FROM {t}" for t in tables]  # noqa: S608 - see mysql()
    parts += [f"CHECKSUM TABLE {t}" for t in tables]
    # Writes wait for the lock: nothing else is stamped with this second, so a restore up to the next
    # second reproduces exactly the state counted here.
    parts += ["DO SLEEP(1.2)", "UNLOCK TABLES"]
    rows = mysql(c, host, "; ".join(parts))
    found: dict[str, dict[str, int]] = {t: {} for t in tables}
    at = None
    position = None
    for r in rows:
        if BINLOG_FILE.match(r[0]) and len(r) > 1 and r[1].isdigit() and r[0] not in found:
            position = f"{r[0]}:{r[1]}"
        elif r[0] == "now":
            at = datetime.strptime(r[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        elif r[0] == "count":
            found[r[1]]["rows"] = int(r[2])
        elif r[0] in found:
            found[r[0]]["checksum"] = int(r[1]) if r[1] not in ("NULL", "") else -1
    if at is None or position is None:
        raise DrillError("the manifest query returned no time or no binary-log position")
    return found, at, position


def cql(c: Cluster, node: str, *args: str) -> dict[str, Any]:
    out = c.run(node, " ".join(["/usr/bin/python3", CQL_HELPER, *map(shlex.quote, args)]))
    return json.loads(out.strip().splitlines()[-1]) if out.strip() else {}


def node_has_partition(c: Cluster, node: str, drill_id: str, batch: str) -> int:
    out = c.run(node, f"nodetool getsstables iact_drill markers {shlex.quote(drill_id + ':' + batch)}")
    return len([line for line in out.splitlines() if line.strip().endswith("-Data.db")])


def run_drill(args: argparse.Namespace) -> tuple[Report, Path]:
    """The drill, then its report in ``args.report_dir`` whatever happened: the report and its JSON file."""
    drill_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    rep = Report(drill_id, args.inventory, started_at=now().isoformat())
    c = connect(args.inventory)
    try:
        execute(c, rep, args)
        rep.status = "success"
    except DrillError as exc:
        rep.error = str(exc)
    finally:
        rep.finished_at = now().isoformat()
        path = record(c, rep, Path(args.report_dir))
        disconnect_all(c.state)
    return rep, path


@dataclass(frozen=True)
class Plan:
    """Who plays which part in one drill."""

    drill_id: str
    db: str
    """The MariaDB host: wiped and restored to the manifest's binary-log position."""
    coord: str
    """A Cassandra node that stays up: writes and reads the markers."""
    victim: str
    """The Cassandra node that is wiped and restored from its snapshot."""
    markers: int
    """Marker rows per batch (A before the backup, B after it)."""


def make_plan(c: Cluster, drill_id: str, args: argparse.Namespace) -> Plan:
    nodes = c.groups["cassandra"]
    victim = args.cassandra_node or nodes[-1]
    return Plan(drill_id, c.groups["mysql"][0], next(n for n in nodes if n != victim), victim, args.markers)


def execute(c: Cluster, rep: Report, args: argparse.Namespace) -> None:
    """The steps of the module docstring, in order; raises DrillError at the first failed step or check."""
    p = make_plan(c, rep.drill_id, args)
    preflight(c, rep, p, force=args.force)
    write_markers(c, rep, p, "A")
    back_up(c, rep, p)
    write_markers(c, rep, p, "B")
    position, cass_expected = take_manifest(c, rep, p)
    disaster = declare_disaster(c, rep, p)
    # A failed MySQL verification is reported after the Cassandra node is restored too: a drill must never
    # leave its victim node wiped.
    mysql_error, t_mysql = restore_mysql(c, rep, p, position, disaster)
    t_cass = restore_cassandra_node(c, rep, p.victim, cass_expected, p.markers)
    rep.rpo_s["cassandra_node_from_snapshot"] = round(
        (disaster.at - datetime.fromisoformat(cass_expected["A"]["newest"])).total_seconds(), 3)
    rep.rto_s["cassandra_node"] = round(t_cass - disaster.clock, 2)
    rep.rto_s["total"] = round(max(t_mysql, t_cass) - disaster.clock, 2)
    if mysql_error is not None:
        raise mysql_error
    rep.throughput_mb_s = throughput(rep)
    # Scratch data of the drill: the report keeps what was measured.
    mysql(c, p.db, "DROP DATABASE IF EXISTS iact_drill")
    cql(c, p.coord, "drop")
    c.run(p.db, "rm -rf /var/lib/mysql.pre-restore")


def preflight(c: Cluster, rep: Report, p: Plan, *, force: bool) -> None:
    """MariaDB answers, the ring is healthy (unless ``force``), the backup tool is there; the marker tables."""
    t0 = time.monotonic()
    mysql(c, p.db, "SELECT 1")
    ring = c.ring(p.coord)
    if not ring["ok"] and not force:
        raise DrillError(f"the Cassandra cluster is not healthy ({ring['reason']}); fix it or pass --force")
    for host in [p.db, p.victim]:
        c.run(host, f"test -x {BACKUP}")
    c.put(p.coord, ROOT / "drill" / "remote" / "cql_markers.py", CQL_HELPER)
    c.put(p.victim, ROOT / "drill" / "remote" / "cql_markers.py", CQL_HELPER)
    cql(c, p.coord, "setup")
    mysql(c, p.db, "CREATE DATABASE IF NOT EXISTS iact_drill; CREATE TABLE IF NOT EXISTS iact_drill.markers ("
                   " id BIGINT AUTO_INCREMENT PRIMARY KEY, drill_id VARCHAR(64) NOT NULL, batch CHAR(1) NOT NULL,"
                   " seq INT NOT NULL, payload CHAR(64) NOT NULL, written_at DATETIME(6) NOT NULL,"
                   " UNIQUE KEY uq_marker (drill_id, batch, seq)) ENGINE=InnoDB")
    rep.step("preflight", t0, mysql_host=p.db, cassandra_victim=p.victim)


def write_markers(c: Cluster, rep: Report, p: Plan, batch: str) -> None:
    """``p.markers`` rows of ``batch`` into MySQL and Cassandra."""
    t0 = time.monotonic()
    did, n = p.drill_id, p.markers
    values = ", ".join(f"('{did}', '{batch}', {i}, SHA2('{did}/{batch}/{i}', 256), NOW(6))" for i in range(n))
    insert = "INSERT INTO iact_drill.markers (drill_id, batch, seq, payload, written_at) VALUES "
    mysql(c, p.db, insert + values)
    cql(c, p.coord, "write", did, batch, str(n))
    rep.step(f"markers_{batch.lower()}", t0, rows=n)


def back_up(c: Cluster, rep: Report, p: Plan) -> None:
    """A MariaDB backup and the victim node's snapshot, with ``iact-backup run``; no snapshot left behind."""
    for kind, host, part in (("mysql", p.db, rep.mysql), ("cassandra", p.victim, rep.cassandra)):
        t0 = time.monotonic()
        line = c.run(host, f"{BACKUP} run {kind}").strip().splitlines()[-1].split()
        dt = time.monotonic() - t0
        part.update(backup_id=line[0], backup_bytes=int(line[1]), backup_wall_s=round(dt, 2))
        rep.step(f"backup_{kind}", t0, id=line[0])
    if c.run(p.victim, "nodetool listsnapshots | grep -c ' iact-' || true").strip() not in ("0", ""):
        raise DrillError(f"the backup left a snapshot on {p.victim}")


def take_manifest(c: Cluster, rep: Report, p: Plan) -> tuple[str, dict[str, dict[str, Any]]]:
    """The pre-disaster state (table manifest, binary-log position, both Cassandra batches) and the last
    binary-log shipment: the MySQL recovery position and what Cassandra must hold after the restore."""
    t0 = time.monotonic()
    manifest, at, position = table_manifest(c, p.db)
    until = (at + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    c.run(p.db, f"{BACKUP} binlogs")
    cass_expected = {b: cql(c, p.coord, "read", p.drill_id, b) for b in ("A", "B")}
    for b, r in cass_expected.items():
        if r["count"] != p.markers:
            raise DrillError(f"Cassandra batch {b}: {r['count']} rows written, {p.markers} expected (before the"
                             " disaster)")
    rep.mysql["manifest"] = manifest
    rep.mysql["recovery_point"] = until
    rep.mysql["recovery_position"] = position
    rep.cassandra["manifest"] = cass_expected
    rep.step("manifest", t0, tables=len(manifest))
    return position, cass_expected


@dataclass(frozen=True)
class Disaster:
    at: datetime
    """Wall-clock time, for the RPOs (against the rows' timestamps)."""
    clock: float
    """time.monotonic(), for the RTOs."""


def declare_disaster(c: Cluster, rep: Report, p: Plan) -> Disaster:
    """MariaDB stopped and its data directory wiped, the victim node stopped and its data wiped."""
    disaster = Disaster(now(), time.monotonic())
    rep.steps.append({"step": "disaster_declared", "at": disaster.at.isoformat()})
    print(f"drill: DISASTER declared at {disaster.at.isoformat()}", flush=True)
    c.run(p.db, "systemctl stop mariadb && find /var/lib/mysql -mindepth 1 -delete && ls -A /var/lib/mysql | wc -l")
    c.run(p.victim, "systemctl stop cassandra && for d in data commitlog hints saved_caches; do"
                    " find /var/lib/cassandra/$d -mindepth 1 -delete; done")
    return disaster


def restore_mysql(c: Cluster, rep: Report, p: Plan, position: str,
                  disaster: Disaster) -> tuple[DrillError | None, float]:
    """Restore MariaDB to ``position`` and verify it while no client can write (markers, every table's count
    and checksum against the manifest); the verification's failure (returned, not raised: the Cassandra node
    must be restored first) and the time (monotonic) MariaDB was released."""
    n, manifest = p.markers, rep.mysql["manifest"]
    t0 = time.monotonic()
    with restore_key(c, [p.db]):
        c.run(p.db, f"{BACKUP} restore-mysql --backup {rep.mysql['backup_id']}"
                    f" --until-position {shlex.quote(position)} --hold")
    rep.mysql["restore_s"] = round(time.monotonic() - t0, 2)
    rep.mysql["encryption"] = encryption(c, p.db, f"/var/backups/iact-backup/restore/{rep.mysql['backup_id']}")
    rep.step("restore_mysql", t0)
    t0 = time.monotonic()
    got, _, _ = table_manifest(c, p.db)
    diffs = {t: {"before": manifest.get(t), "after": got.get(t)} for t in set(manifest) | set(got)
             if manifest.get(t) != got.get(t)}
    markers = mysql(c, p.db, "SELECT batch, COUNT(*), MAX(written_at) FROM iact_drill.markers"  # noqa: S608
                             f" WHERE drill_id = '{p.drill_id}' GROUP BY batch")
    counts = {r[0]: int(r[1]) for r in markers}
    rep.mysql["markers_restored"] = counts
    rep.mysql["table_differences"] = diffs
    c.run(p.db, f"{BACKUP} release-mysql")
    t_mysql = time.monotonic()
    if counts != {"A": n, "B": n}:
        return DrillError(f"MySQL markers after the restore: {counts}, expected {{'A': {n}, 'B': {n}}}"), t_mysql
    if diffs:
        return DrillError(f"MySQL tables differ from the pre-disaster manifest: {sorted(diffs)}"), t_mysql
    newest = datetime.strptime(max(r[2] for r in markers), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    rep.rpo_s["mysql"] = round((disaster.at - newest).total_seconds(), 3)
    rep.rto_s["mysql"] = round(t_mysql - disaster.clock, 2)
    rep.step("verify_mysql", t0, tables=len(got), markers=counts)
    return None, t_mysql


def throughput(rep: Report) -> dict[str, float]:
    """MB/s of each backup and restore, from the sizes and wall times in the report."""
    mb = 1024 * 1024
    return {
        "mysql_backup": round(rep.mysql["backup_bytes"] / mb / rep.mysql["backup_wall_s"], 2),
        "mysql_restore": round(rep.mysql["backup_bytes"] / mb / rep.mysql["restore_s"], 2),
        "cassandra_backup": round(rep.cassandra["backup_bytes"] / mb / rep.cassandra["backup_wall_s"], 2),
        "cassandra_restore": round(rep.cassandra["backup_bytes"] / mb / rep.cassandra["restore_s"], 2),
    }


def restore_cassandra_node(c: Cluster, rep: Report, victim: str, cass_expected: dict[str, dict[str, Any]],
                           n: int) -> float:
    """Restore the victim node from its snapshot, check its own SSTables, repair, check every marker row;
    returns the time (monotonic) the node was verified."""
    did = rep.drill_id
    t0 = time.monotonic()
    with restore_key(c, [victim]):
        c.run(victim, f"{BACKUP} restore-cassandra --backup {rep.cassandra['backup_id']}", timeout=1800)
    rep.cassandra["restore_s"] = round(time.monotonic() - t0, 2)
    rep.cassandra["encryption"] = encryption(
        c, victim, f"/var/lib/cassandra/iact-restore/{rep.cassandra['backup_id']}")
    rep.step("restore_cassandra", t0)
    t0 = time.monotonic()
    local_a = node_has_partition(c, victim, did, "A")
    if local_a < 1:
        raise DrillError(f"{victim}: batch A is not in the node's own SSTables after the restore")
    c.run(victim, "nodetool repair -full iact_drill", timeout=1800)
    c.run(victim, "nodetool flush iact_drill")
    local_b = node_has_partition(c, victim, did, "B")
    got_c = {b: cql(c, victim, "read", did, b) for b in ("A", "B")}
    rep.cassandra["markers_restored"] = {b: r["count"] for b, r in got_c.items()}
    rep.cassandra["node_sstables_with_batch"] = {"A": local_a, "B": local_b}
    for b in ("A", "B"):
        if got_c[b]["count"] != n or got_c[b]["sha256"] != cass_expected[b]["sha256"]:
            raise DrillError(f"Cassandra batch {b} after the restore: {got_c[b]['count']} rows"
                             f" (checksum {'ok' if got_c[b]['sha256'] == cass_expected[b]['sha256'] else 'differs'}),"
                             f" expected {n}")
    if local_b < 1:
        raise DrillError(f"{victim}: batch B is not in the node's own SSTables after the repair")
    ring = c.ring(victim)
    if not ring["ok"]:
        raise DrillError(f"the cluster is not all UN after the restore: {ring['reason']}")
    t_cass = time.monotonic()
    rep.rpo_s["cassandra_cluster"] = 0.0 if got_c["B"]["count"] == n else -1.0
    rep.step("verify_cassandra", t0, node_sstables={"A": local_a, "B": local_b})
    return t_cass


def encryption(c: Cluster, host: str, download: str) -> str:
    """How the restored backup was stored on the target, from its (authenticated) meta.env: 'age' or 'none'."""
    out = c.run(host, f"sed -n 's/^encryption=//p' {shlex.quote(download)}/meta.env", check=False).strip()
    return out or "none"


def record(c: Cluster, rep: Report, out: Path) -> Path:
    """JSON + Markdown report files in ``out`` (the JSON file's path is returned), a job_runs row and (when
    migration 0012 is applied) a dr_drills row."""
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"drill-{rep.drill_id}"
    base.with_suffix(".json").write_text(json.dumps(rep.__dict__, indent=2, default=str) + "\n")
    md = [f"# DR drill {rep.drill_id}: {rep.status.upper()}", "",
          f"- inventory: `{rep.inventory}`", f"- started {rep.started_at}, finished {rep.finished_at}"]
    if rep.error:
        md.append(f"- **error**: {rep.error}")
    md += ["", "| measure | value |", "|---|---|"]
    md += [f"| RPO {k} | {v} s |" for k, v in rep.rpo_s.items()]
    md += [f"| RTO {k} | {v} s |" for k, v in rep.rto_s.items()]
    md += [f"| throughput {k} | {v} MB/s |" for k, v in rep.throughput_mb_s.items()]
    md += [f"| backup storage {k} | {getattr(rep, k).get('encryption', '?')} |" for k in ("mysql", "cassandra")]
    md += ["", "| step | seconds | detail |", "|---|---|---|"]
    for s in rep.steps:
        detail = {k: v for k, v in s.items() if k not in ("step", "seconds")}
        md.append(f"| {s['step']} | {s.get('seconds', '')} | {json.dumps(detail, default=str)} |")
    base.with_suffix(".md").write_text("\n".join(md) + "\n")
    db = c.groups.get("mysql", [None])[0]
    if db is not None:
        record_in_mysql(c, rep, db)
    return base.with_suffix(".json")


def record_in_mysql(c: Cluster, rep: Report, db: str) -> None:
    """A job_runs row, and a dr_drills row when migration 0012 is applied (a failure is only printed)."""
    summary = json.dumps({"rpo_s": rep.rpo_s, "rto_s": rep.rto_s, "throughput_mb_s": rep.throughput_mb_s,
                          "error": rep.error[:300]})
    st, fin = rep.started_at[:26].replace("T", " "), rep.finished_at[:26].replace("T", " ")
    msg = f"drill {rep.drill_id}: RPO {rep.rpo_s} RTO {rep.rto_s}"[:1000]
    code = 0 if rep.status == "success" else 1
    sql = ("INSERT INTO iact.job_runs (job_name, host, started_at, finished_at, status, exit_code, message)"  # noqa: S608
           f" VALUES ('dr_drill', 'controller', '{st}', '{fin}', '{rep.status}', {code}, {sql_str(msg)})")
    try:
        mysql(c, db, sql)
        if mysql(c, db, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'iact'"
                        " AND table_name = 'dr_drills'")[0][0] == "1":
            rpo, rto = rep.rpo_s.get("mysql", "NULL"), rep.rto_s.get("total", "NULL")
            mysql(c, db, "INSERT INTO iact.dr_drills (drill_id, started_at, finished_at, status, rpo_mysql_s,"  # noqa: S608
                         f" rto_total_s, report) VALUES ({sql_str(rep.drill_id)}, '{st}', '{fin}', '{rep.status}',"
                         f" {rpo}, {rto}, {sql_str(summary)})")
    except DrillError as exc:
        print(f"drill: could not record the drill in MySQL: {exc}", file=sys.stderr)


def sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inventory", default=os.environ.get("IACT_INVENTORY", "inventory/lab"))
    p.add_argument("--report-dir", default=os.environ.get("IACT_DRILL_REPORT_DIR", str(ROOT / ".lab" / "reports")))
    p.add_argument("--cassandra-node", default=os.environ.get("IACT_DRILL_CASSANDRA_NODE"))
    p.add_argument("--markers", type=int, default=int(os.environ.get("IACT_DRILL_MARKERS", "200")))
    p.add_argument("--force", action="store_true", help="run even when the Cassandra cluster is not all UN")
    args = p.parse_args(argv)
    try:
        rep, path = run_drill(args)
    except DrillError as exc:
        print(f"drill: error: {exc}", file=sys.stderr)
        return 1
    print(f"drill: {rep.status.upper()}  RPO {rep.rpo_s}  RTO {rep.rto_s}  MB/s {rep.throughput_mb_s}")
    print(f"drill: report {path} (and .md)")
    if rep.error:
        print(f"drill: error: {rep.error}", file=sys.stderr)
    return 0 if rep.status == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
