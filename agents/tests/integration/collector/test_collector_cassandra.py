"""The collector against a real Cassandra: write N known lines, then count exactly N distinct rows.

Each scenario runs the real command (``python -m iact_agents.cli collect``) in a subprocess, checks that
every line arrived once (0 lost, 0 extra: same count, same message set) and that the collector's peak
RSS stayed bounded. See conftest.py for the environment variables.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from cassandra import OperationTimedOut, ReadTimeout, Unavailable
from cassandra.cluster import NoHostAvailable

pytestmark = pytest.mark.integration

MAX_RSS_KB = 200 * 1024  # the driver and interpreter take ~60 MB; the collector must not grow with N
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "collector"


class Lines:
    """Known syslog lines (RFC 3339 timestamps) and the days they fall on."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.written: list[str] = []
        self.days: set[date] = set()

    def make(self, n: int) -> str:
        out = []
        for _ in range(n):
            i = len(self.written)
            ts = datetime.now(UTC)
            self.days.add(ts.date())
            msg = f"{self.tag} line {i:06d}"
            self.written.append(msg)
            out.append(f"{ts.isoformat()} cass1 itest[{os.getpid()}]: {msg}\n")
        return "".join(out)

    def append(self, path: Path, n: int) -> None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(self.make(n))


class Collector:
    def __init__(self, tmp_path: Path, target: Any, host: str, *, sources: str, extra: str = "") -> None:
        self.config = tmp_path / "collector.toml"
        top = {"host": f'"{host}"', "state_dir": f'"{tmp_path / "state"}"', "poll_interval_s": "0.05",
               "rotate_wait_s": "0.5", "rescan_interval_s": "0.5", "drain_timeout_s": "5", "retry_initial_s": "0.2"}
        for kv in extra.splitlines():  # extra top-level keys override these
            key, _, value = kv.partition("=")
            top[key.strip()] = value.strip()
        self.config.write_text("".join(f"{k} = {v}\n" for k, v in top.items()) + target.toml() + sources)
        self.proc: subprocess.Popen[str] | None = None
        self.max_rss_kb = 0
        self.log = tmp_path / "collector.log"

    def _cmd(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "iact_agents.cli", "-v", "collect", "--config", str(self.config), *extra]

    def _wait(self, proc: subprocess.Popen[str], timeout: float) -> int:
        # The collector's own high-water mark (VmHWM), read while it runs: wait4's ru_maxrss also counts the
        # memory of this pytest process, which the child held between fork and exec (Linux keeps the larger).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.max_rss_kb = max(self.max_rss_kb, proc_kb(proc.pid, "VmHWM"))
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return proc.returncode
            time.sleep(0.05)
        proc.kill()
        raise AssertionError(f"collector did not exit within {timeout}s; log:\n{self.log.read_text()[-3000:]}")

    def once(self, timeout: float = 120) -> None:
        with self.log.open("a") as log:
            proc = subprocess.Popen(self._cmd("--once"), stdout=log, stderr=log, text=True)
        assert self._wait(proc, timeout) == 0, self.log.read_text()[-3000:]

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(self._cmd(), stdout=log, stderr=log, text=True)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self._wait(self.proc, 60)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def make_collector(tmp_path: Path, cassandra_target: Any, test_host: str) -> Iterator[type]:
    made: list[Collector] = []

    class Bound(Collector):
        def __init__(self, sources: str, extra: str = "") -> None:
            super().__init__(tmp_path, cassandra_target, test_host, sources=sources, extra=extra)
            made.append(self)

    yield Bound
    for c in made:
        c.kill()


def file_source(path: Path, fmt: str = "syslog") -> str:
    return f'[[files]]\npaths = ["{path}"]\nformat = "{fmt}"\n'


def wait_for_rows(counter: Any, source: str, lines: Lines, timeout: float = 90) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    rows: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        try:
            rows = counter.rows(source, lines.days)
        except (NoHostAvailable, OperationTimedOut, Unavailable, ReadTimeout):  # a node is coming back
            time.sleep(1)
            continue
        if len(rows) >= len(lines.written):
            return rows
        time.sleep(0.5)
    return rows


def wait_until_shipping(counter: Any, source: str, lines: Lines, timeout: float = 60) -> None:
    """Wait for the first rows: a collector that never saw a file cannot know its rotated copy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not counter.rows(source, lines.days):
        time.sleep(0.05)


def assert_exactly(rows: list[tuple[str, str]], lines: Lines) -> None:
    positions = [p for p, _ in rows]
    assert len(set(positions)) == len(positions)
    messages = sorted(m for _, m in rows)
    assert len(rows) == len(lines.written), f"{len(rows)} rows for {len(lines.written)} lines"
    assert messages == sorted(lines.written)


def test_steady_state_and_replay(tmp_path: Path, counter: Any, make_collector: type) -> None:
    log = tmp_path / "syslog"
    lines = Lines("steady")
    lines.append(log, 2000)
    c = make_collector(file_source(log))
    c.once()
    assert_exactly(counter.rows(str(log), lines.days), lines)
    lines.append(log, 500)
    c.once()
    assert_exactly(counter.rows(str(log), lines.days), lines)
    (tmp_path / "state" / "positions.json").unlink()  # lose the offsets: everything is replayed ...
    c.once()
    assert_exactly(counter.rows(str(log), lines.days), lines)  # ... and overwrites the same rows
    assert c.max_rss_kb < MAX_RSS_KB


def test_rename_rotation(tmp_path: Path, counter: Any, make_collector: type) -> None:
    log = tmp_path / "syslog"
    lines = Lines("rename")
    lines.append(log, 300)
    c = make_collector(file_source(log))
    c.start()
    wait_until_shipping(counter, str(log), lines)
    lines.append(log, 100)
    log.rename(tmp_path / "syslog.1")
    lines.append(tmp_path / "syslog.1", 50)  # the writer had the old file open until it was told
    lines.append(log, 300)
    rows = wait_for_rows(counter, str(log), lines)
    time.sleep(1)
    assert c.stop() == 0
    rows = counter.rows(str(log), lines.days)
    assert_exactly(rows, lines)
    assert len({p.split(":")[0] for p, _ in rows}) == 2
    assert c.max_rss_kb < MAX_RSS_KB


def test_copytruncate(tmp_path: Path, counter: Any, make_collector: type) -> None:
    log = tmp_path / "syslog"
    lines = Lines("copytruncate")
    lines.append(log, 400)
    c = make_collector(file_source(log), extra="batch_lines = 50\n")
    c.start()
    wait_until_shipping(counter, str(log), lines)
    shutil.copyfile(log, tmp_path / "syslog.1")
    with log.open("r+") as fh:
        fh.truncate(0)
    lines.append(log, 300)
    wait_for_rows(counter, str(log), lines)
    time.sleep(1)
    assert c.stop() == 0
    assert_exactly(counter.rows(str(log), lines.days), lines)
    # While the collector is stopped: more lines, then copytruncate; the unread tail is in the copy.
    lines.append(log, 200)
    shutil.copyfile(log, tmp_path / "syslog.1")
    with log.open("r+") as fh:
        fh.truncate(0)
    lines.append(log, 100)
    c.once()
    assert_exactly(counter.rows(str(log), lines.days), lines)
    assert "continuing" in c.log.read_text()


def test_rename_rotation_while_stopped(tmp_path: Path, counter: Any, make_collector: type) -> None:
    log = tmp_path / "syslog"
    lines = Lines("rename-stopped")
    lines.append(log, 300)
    c = make_collector(file_source(log), extra="rotate_wait_s = 0\n")
    c.once()
    lines.append(log, 100)
    log.rename(tmp_path / "syslog.1")
    lines.append(log, 100)
    c.once()
    assert_exactly(counter.rows(str(log), lines.days), lines)


def test_truncation(tmp_path: Path, counter: Any, make_collector: type) -> None:
    log = tmp_path / "app.log"
    lines = Lines("truncate")
    lines.append(log, 300)
    c = make_collector(file_source(log))
    c.start()
    wait_for_rows(counter, str(log), lines)
    with log.open("r+") as fh:
        fh.truncate(0)
    lines.append(log, 200)
    wait_for_rows(counter, str(log), lines)
    time.sleep(1)
    assert c.stop() == 0
    assert_exactly(counter.rows(str(log), lines.days), lines)


def test_sigkill_mid_batch_then_restart(tmp_path: Path, counter: Any, make_collector: type) -> None:
    log = tmp_path / "syslog"
    lines = Lines("sigkill")
    lines.append(log, 20000)
    c = make_collector(file_source(log), extra="batch_lines = 500\n")
    c.start()
    state = tmp_path / "state" / "positions.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill right after the second batch is committed (cheap to watch)
        with contextlib.suppress(OSError, ValueError, KeyError):
            if json.loads(state.read_text())["sources"][f"file:{log}"]["offset"] > 0:
                time.sleep(0.05)
                break
        time.sleep(0.005)
    c.stop(signal.SIGKILL)
    partial = len(counter.rows(str(log), lines.days))
    assert 0 < partial < len(lines.written), "kill the collector while it is still shipping"
    c.once(timeout=300)
    assert_exactly(counter.rows(str(log), lines.days), lines)
    assert c.max_rss_kb < MAX_RSS_KB


def test_json_lines_and_glob(tmp_path: Path, counter: Any, make_collector: type) -> None:
    app_dir = tmp_path / "iact"
    app_dir.mkdir()
    shutil.copyfile(FIXTURES / "app.json.log", app_dir / "dora.json.log")
    c = make_collector(f'[[files]]\npaths = ["{app_dir}/*.json.log"]\nformat = "json"\n')
    c.once()
    n = len((FIXTURES / "app.json.log").read_text().splitlines())
    # Lines without a timestamp take the previous line's; all fixture lines fall on 2026-11-27.
    rows = counter.rows(str(app_dir / "dora.json.log"), {date(2026, 11, 27)})
    assert len(rows) == n
    assert "this is not json" in {m for _, m in rows}
    t = counter.target
    stored = {r.message: r for r in counter.session.execute(
        f"SELECT message, fields, severity, program, parse_error, raw FROM {t.keyspace}.{t.table} "
        "WHERE host = %s AND source = %s AND day = %s",
        (counter.host, str(app_dir / "dora.json.log"), date(2026, 11, 27)))}
    first = stored["ingested 12 events"]
    assert first.fields == {"accepted": "12", "rejected": "0"}
    assert (first.severity, first.program, first.parse_error, first.raw) == (
        "info", "iact_agents.dora.ingest", False, None)
    bad = stored["this is not json"]
    assert bad.parse_error and bad.raw == "this is not json" and bad.fields is None
    c.once()  # a replay after losing nothing changes nothing
    assert len(counter.rows(str(app_dir / "dora.json.log"), {date(2026, 11, 27)})) == n


def test_journal_through_journalctl(tmp_path: Path, counter: Any, make_collector: type) -> None:
    fake = tmp_path / "journalctl"
    fake.write_text(f"#!/bin/sh\ncat {FIXTURES / 'journal.json'}\nexec sleep 60\n")
    fake.chmod(0o755)
    c = make_collector(f'[journal]\nenabled = true\njournalctl = "{fake}"\n')
    c.start()
    expected = len((FIXTURES / "journal.json").read_text().splitlines())
    deadline = time.monotonic() + 60
    rows: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        rows = counter.rows("journal", {date(2026, 11, 27)})
        if len(rows) >= expected:
            break
        time.sleep(0.5)
    assert c.stop() == 0
    assert len(rows) == expected and all(p.startswith("s=") for p, _ in rows)


# --- Cassandra down -------------------------------------------------------------------------------------
# These need a way to stop and start Cassandra nodes, given as shell commands by whoever runs the tests:
#   IACT_TEST_CASSANDRA_DOWN_CMD / IACT_TEST_CASSANDRA_UP_CMD            every node (e.g. docker stop/start)
#   IACT_TEST_CASSANDRA_NODE_DOWN_CMD / IACT_TEST_CASSANDRA_NODE_UP_CMD  one node of three


def shell_commands(down_var: str, up_var: str) -> tuple[str, str]:
    down = os.environ.get(f"IACT_TEST_CASSANDRA_{down_var}", "")
    up = os.environ.get(f"IACT_TEST_CASSANDRA_{up_var}", "")
    if not down or not up:
        pytest.skip(f"set IACT_TEST_CASSANDRA_{down_var} and IACT_TEST_CASSANDRA_{up_var} to stop and start nodes")
    return down, up


def proc_kb(pid: int, name: str) -> int:
    """A memory figure of /proc/PID/status in kB (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for field in text.splitlines():
        if field.startswith(f"{name}:"):
            return int(field.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    return proc_kb(pid, "VmRSS")


def rotate_and_compress(log: Path) -> None:
    """logrotate with `compress` (no delaycompress): name.1.gz -> name.2.gz, name -> name.1 -> name.1.gz."""
    one = log.with_name(log.name + ".1")
    if one.with_name(one.name + ".gz").exists():
        one.with_name(one.name + ".gz").rename(log.with_name(log.name + ".2.gz"))
    log.rename(one)
    with one.open("rb") as src, gzip.open(one.with_name(one.name + ".gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    one.unlink()


def run_outage(tmp_path: Path, counter: Any, make_collector: type, down: str, up: str, tag: str, *,
               rotate_at: tuple[int, ...] = ()) -> None:
    log = tmp_path / "syslog"
    lines = Lines(tag)
    lines.append(log, 1000)
    c = make_collector(file_source(log), extra="batch_lines = 200\nretry_max_s = 2\n")
    c.start()
    assert len(wait_for_rows(counter, str(log), lines)) == 1000
    subprocess.run(down, shell=True, check=True, timeout=300)
    try:
        peak = 0
        for second in range(20):  # 20 000 more lines while the cluster is away, about 20 s
            lines.append(log, 1000)
            if second in rotate_at:
                rotate_and_compress(log)
            assert c.proc is not None and c.proc.poll() is None
            peak = max(peak, rss_kb(c.proc.pid))
            time.sleep(1)
    finally:
        subprocess.run(up, shell=True, check=True, timeout=600)
    rows = wait_for_rows(counter, str(log), lines, timeout=300)
    time.sleep(1)
    assert c.stop() == 0
    assert_exactly(counter.rows(str(log), lines.days), lines)
    print(f"\n{tag}: {len(rows)} rows; collector RSS peak while down {peak / 1024:.1f} MiB, "
          f"lifetime peak {c.max_rss_kb / 1024:.1f} MiB"
          + (f"; rotated and compressed {len(rotate_at)} times while down" if rotate_at else ""))
    assert c.max_rss_kb < MAX_RSS_KB


def test_all_nodes_down_for_a_while_then_back(tmp_path: Path, counter: Any, make_collector: type) -> None:
    """Including two rotations with compression during the outage: the lines of the file the collector had
    open, of the file rotated away before it was ever opened, and of the new file, each exactly once."""
    down, up = shell_commands("DOWN_CMD", "UP_CMD")
    run_outage(tmp_path, counter, make_collector, down, up, "all-down", rotate_at=(7, 14))


def test_one_node_down(tmp_path: Path, counter: Any, make_collector: type) -> None:
    down, up = shell_commands("NODE_DOWN_CMD", "NODE_UP_CMD")
    run_outage(tmp_path, counter, make_collector, down, up, "one-down")


# --- errors that retrying cannot fix ----------------------------------------------------------------------

def run_expecting_failure(tmp_path: Path, target: Any, host: str, toml_edit: tuple[str, str]) -> tuple[int, str]:
    log = tmp_path / "syslog"
    Lines("fatal").append(log, 3)
    c = Collector(tmp_path, target, host, sources=file_source(log))
    c.config.write_text(c.config.read_text().replace(*toml_edit))
    with c.log.open("w") as out:
        proc = subprocess.run(c._cmd("--once"), stdout=out, stderr=out, text=True, timeout=120, check=False)
    return proc.returncode, c.log.read_text()


def test_missing_table_exits_3(tmp_path: Path, cassandra_target: Any, cql: Any, test_host: str) -> None:
    table = f'table = "{cassandra_target.table}"'
    code, out = run_expecting_failure(tmp_path, cassandra_target, test_host, (table, 'table = "no_such_table"'))
    assert code == 3, out
    assert "no_such_table" in out.splitlines()[-1]


def test_wrong_password_exits_2(tmp_path: Path, cassandra_target: Any, cql: Any, test_host: str) -> None:
    if not cassandra_target.user:
        pytest.skip("authentication is off")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    edit = (f'password_file = "{cassandra_target.password_file}"', f'password_file = "{wrong}"')
    code, out = run_expecting_failure(tmp_path, cassandra_target, test_host, edit)
    assert code == 2, out
    assert "cassandra.username: authentication failed" in out.splitlines()[-1]


def _bench_module(name: str) -> Any:
    """A module of bench/ (scripts, loaded by path, with their folder on sys.path as when run)."""
    import importlib  # noqa: PLC0415 - the benchmark is a folder of scripts

    folder = str(Path(__file__).resolve().parents[4] / "bench")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def test_benchmark_runs(tmp_path: Path, cql: Any) -> None:
    """bench/ parts 1-3 at tiny sizes: they must keep working (their numbers are not checked)."""
    parse = _bench_module("parse_bench").run(1000, repeat=1)
    assert {r["lines"] for r in parse.values()} == {1000} and all(r["ratio"] > 0 for r in parse.values())
    common, ceiling, e2e = _bench_module("common"), _bench_module("ceiling"), _bench_module("e2e")
    target = common.Target.from_env()
    path = tmp_path / "app.json.log"
    common.json_file(path, 300)
    run = e2e.collector_run(target, path, "json", 300, tmp_path / "collector", settings={"batch_lines": 50})
    assert run["exit_code"] == 0 and run["rows"] > 0 and run["peak_rss_mib"] > 0
    ceil = ceiling.run(target, path, "json", rows=300, concurrency=8, clients=2)
    assert ceil["rows"] == 600 and ceil["failed_requests"] == 0
    e2e._cleanup(target, [run["host"], *ceil["hosts"]], [str(path)])


def test_sink_writes_a_refused_record_as_a_plain_row_and_the_rest_as_they_are(
        cassandra_target: Any, cql: Any, test_host: str) -> None:
    """A value the driver cannot serialize (a pid beyond int: the parsers never produce one) in a batch of
    one partition: the sink finds that record, writes it as a plain parse_error row, writes the others."""
    from iact_agents.collector.config import CassandraSettings  # noqa: PLC0415
    from iact_agents.collector.records import Record  # noqa: PLC0415
    from iact_agents.collector.sink import CassandraSink  # noqa: PLC0415

    t = cassandra_target
    settings = CassandraSettings.model_validate({
        "contact_points": t.hosts, "port": t.port, "local_dc": t.dc, "keyspace": t.keyspace, "table": t.table,
        "consistency": t.consistency, "username": t.user, "password_file": t.password_file,
        "ssl_ca_file": t.ca_file})
    sink = CassandraSink(settings, host=test_host, store_raw=False, retry_initial_s=0.5, retry_max_s=2)
    ts = datetime.now(UTC).replace(microsecond=0)
    recs = [Record(source="poison", position=f"p:{i}", ts=ts, message=f"m{i}", raw=f"raw {i} é",
                   pid=2**40 if i == 2 else i) for i in range(5)]
    try:
        refused = sink.write(recs)
    finally:
        sink.close()
    assert [r.record.position for r in refused] == ["p:2"] and "pid" in refused[0].reason
    rows = {r.position: r for r in cql.execute(
        f"SELECT position, message, raw, parse_error, pid, fields FROM {t.keyspace}.{t.table} "
        "WHERE host = %s AND source = %s AND day = %s", (test_host, "poison", ts.date()))}
    assert sorted(rows) == [f"p:{i}" for i in range(5)]
    assert rows["p:2"].parse_error and rows["p:2"].raw == "raw 2 \\xe9" and rows["p:2"].pid is None
    assert "quarantine" in rows["p:2"].fields
    assert all(not rows[f"p:{i}"].parse_error and rows[f"p:{i}"].pid == i for i in (0, 1, 3, 4))


def test_rows_written_by_the_encoder_read_back_as_rows_bound_by_the_driver(
        cassandra_target: Any, cql: Any, test_host: str) -> None:
    """The real server's prepared statement gets the encoder (its column types are the ones it writes), and
    what it writes reads back exactly as what the driver's own bind writes."""
    from iact_agents.collector.config import CassandraSettings  # noqa: PLC0415
    from iact_agents.collector.records import parse_json_line, parse_syslog  # noqa: PLC0415
    from iact_agents.collector.sink import CassandraSink  # noqa: PLC0415

    t = cassandra_target
    settings = CassandraSettings.model_validate({
        "contact_points": t.hosts, "port": t.port, "local_dc": t.dc, "keyspace": t.keyspace, "table": t.table,
        "consistency": t.consistency, "username": t.user, "password_file": t.password_file,
        "ssl_ca_file": t.ca_file})
    now = datetime.now(UTC)
    lines = [*(FIXTURES / "syslog_rfc3339.log").read_text().splitlines(), f"not syslog at all {chr(0xDCFF)} é"]
    recs = [parse_syslog(line, source="enc", position=f"p:{i:04d}", fallback_ts=now, now=now)
            for i, line in enumerate(lines)]
    recs += [parse_json_line(line, source="enc", position=f"j:{i:04d}", fallback_ts=now)
             for i, line in enumerate((FIXTURES / "app.json.log").read_text().splitlines())]
    hosts = {"encoder": test_host + "-enc", "driver": test_host + "-bind"}
    for kind, host in hosts.items():
        sink = CassandraSink(settings, host=host, store_raw=True, retry_initial_s=0.5, retry_max_s=2)
        conn = sink._acquire()
        assert conn.encoder is not None  # the lab's table has exactly the types the encoder writes
        if kind == "driver":
            conn.encoder = None  # every row through PreparedStatement.bind
        sink._release(conn)
        try:
            assert sink.write(recs) == []
        finally:
            sink.close()
    columns = "position, ts, facility, severity, program, pid, message, raw, parse_error, fields"
    got = {}
    for kind, host in hosts.items():
        got[kind] = sorted(tuple(r) for day in {r.day for r in recs} for r in cql.execute(
            f"SELECT {columns} FROM {t.keyspace}.{t.table} WHERE host = %s AND source = %s AND day = %s",
            (host, "enc", day)))
    assert len(got["encoder"]) == len(recs) and got["encoder"] == got["driver"]
