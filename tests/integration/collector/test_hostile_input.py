"""Hostile input on a real collectors host (issue 12): what once stopped a host's log shipping is written
through `logger` (rsyslog's file and the journal) and into a JSON application log; the collector stays
active without a restart, the lines written after them arrive, and the unparseable ones are stored as
parse_error rows. The journal path is read by a one-shot `iact-agent collect --once` with the journal
only (the hosts have rsyslog, so the running collector reads the files), under a test `host` value.

The rows are read back with the admin login from root's 0600 cqlshrc on the host (no secret is handed to
the tests; TLS and its CA as the cqlshrc says), from the controller, by partition key only, from the host's
own table (found by its comment in the schema, iact_agents.logtables: what the web's search does).
"""

from __future__ import annotations

import configparser
import json
import shlex
import ssl
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import testinfra
import yaml
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy
from iact_agents.logtables import read_tables
from testinfra.utils.ansible_runner import AnsibleRunner

KEYSPACE = "iact_logs"
SYSLOG = "/var/log/syslog"
JSON_DIR = "/var/log/iact"
STATE = "/var/lib/iact-collector/positions.json"


def _inventory(config: pytest.Config) -> str | None:
    value = config.getoption("ansible_inventory", default=None)
    return str(value) if value else None


@pytest.fixture(scope="module")
def node(pytestconfig: pytest.Config) -> Any:
    """A collectors host that is also a Cassandra node (it has root's cqlshrc); the second one."""
    inventory = _inventory(pytestconfig)
    runner = AnsibleRunner.get_runner(inventory)
    names = [h for h in runner.get_hosts("cassandra") if h in runner.get_hosts("collectors")]
    if not names:
        pytest.fail("the inventory has no host in both `cassandra` and `collectors`")
    name = names[min(1, len(names) - 1)]
    return testinfra.get_host(f"ansible://{name}" + (f"?ansible_inventory={inventory}" if inventory else ""))


@pytest.fixture(scope="module")
def cql(node: Any) -> Any:
    rc = configparser.ConfigParser(interpolation=None)
    rc.read_string(node.file("/root/.cassandra/cqlshrc").content_string)
    conf = yaml.safe_load(node.file("/etc/cassandra/cassandra.yaml").content_string)
    address = str(conf["rpc_address"])
    tls = None
    if rc.getboolean("connection", "ssl", fallback=False):  # the node's certificate and address verified
        tls = ssl.create_default_context(cadata=node.file(rc.get("ssl", "certfile")).content_string)
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([address]), request_timeout=30)
    cluster = Cluster([address], auth_provider=PlainTextAuthProvider(rc.get("authentication", "username"),
                                                                     rc.get("authentication", "password")),
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile}, protocol_version=5, ssl_context=tls)
    session = cluster.connect()
    yield session
    cluster.shutdown()


def collector_unit(node: Any) -> dict[str, str]:
    out = node.check_output("systemctl show iact-collector -p NRestarts -p ActiveState -p SubState -p MainPID")
    return dict(line.split("=", 1) for line in out.splitlines())


def quarantine_count(node: Any) -> int:
    doc = json.loads(node.file(STATE).content_string)
    return int(doc.get("quarantine", {}).get("count", 0))


def collector_host(node: Any) -> str:
    """The `host` the node's collector writes (its inventory name, from its configuration)."""
    for line in node.file("/etc/iact/collector.toml").content_string.splitlines():
        if line.startswith("host = "):
            return line.split("=", 1)[1].strip().strip('"')
    return str(node.check_output("hostname"))


def own_table(cql: Any, node: Any) -> str:
    """The node's collector's own table: the one whose comment names its host; its configuration names it too."""
    host = collector_host(node)
    table = read_tables(cql, KEYSPACE).by_host.get(host)
    assert table is not None, f"no table of {KEYSPACE} names host {host!r} in its comment"
    assert f'table = "{table}"' in node.file("/etc/iact/collector.toml").content_string
    return table


def rows(cql: Any, table: str, host: str, source: str, token: str) -> list[Any]:
    days = {datetime.now(UTC).date() + timedelta(days=d) for d in (-1, 0, 1)}
    out: list[Any] = []
    stmt = cql.prepare(f"SELECT ts, message, raw, parse_error, program, pid, severity, fields FROM {KEYSPACE}.{table} "
                       "WHERE host = ? AND source = ? AND day = ?")
    for day in sorted(days):
        out += [r for r in cql.execute(stmt, (host, source, day))
                if token in (r.message or "") or token in (r.raw or "")]
    return out


def wait_rows(cql: Any, table: str, host: str, source: str, token: str, want: int,
              timeout: float = 90) -> list[Any]:
    deadline = time.monotonic() + timeout
    found: list[Any] = []
    while time.monotonic() < deadline:
        found = rows(cql, table, host, source, token)
        if len(found) >= want:
            return found
        time.sleep(1)
    return found


def journald(node: Any, fields: list[str]) -> None:
    """One journal entry with exactly these fields (`logger --journald`, as any local user can)."""
    body = "\n".join(fields) + "\n"
    node.check_output(f"printf %s {shlex.quote(body)} | logger --journald")


def test_hostile_input_does_not_stop_the_collector(node: Any, cql: Any) -> None:
    token = f"hostile-{uuid.uuid4().hex[:10]}"
    host, table = collector_host(node), own_table(cql, node)
    before = collector_unit(node)
    assert before["ActiveState"] == "active", before
    quarantined_before = quarantine_count(node)

    # rsyslog's file (and the journal): a pid that is a non-ASCII digit
    node.check_output(f"logger -t 'x[²]' {token}-pid")
    # the journal only: PRIORITY=², PRIORITY given twice
    journald(node, [f"MESSAGE={token}-prio", "PRIORITY=²", "SYSLOG_IDENTIFIER=itest"])
    journald(node, [f"MESSAGE={token}-prio2", "PRIORITY=3", "PRIORITY=6", "SYSLOG_IDENTIFIER=itest"])
    # a JSON application log
    json_log = f"{JSON_DIR}/itest-{token}.json.log"
    good = datetime.now(UTC).isoformat()
    bad_lines = {
        "nan": '{"ts": NaN, "message": "%s-nan"}',
        "inf": '{"ts": Infinity, "message": "%s-inf"}',
        "year1": '{"ts": "0001-01-01T00:00:00+01:00", "message": "%s-year1"}',
        "year9999": '{"ts": "9999-12-31T23:30:00-05:00", "message": "%s-year9999"}',
        "nested": '{"ts": "' + good + '", "message": "%s-nested", "x": ' + "[" * 30000 + "]" * 30000 + "}",
    }
    lines = [json.dumps({"ts": good, "message": f"{token}-first"})]
    lines += [text % token for text in bad_lines.values()]
    lines.append('{"ts": "' + good + '", "message": "' + token + '-surrogate \\udcff"}')
    lines.append(json.dumps({"ts": good, "message": f"{token}-last"}))
    try:
        node.check_output(f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)} > {json_log}")
        # and a line written after all of them
        node.check_output(f"logger -t itest {token}-after")

        # journald forwards every entry to rsyslog: the four lines are in the file too
        syslog_rows = wait_rows(cql, table, host, SYSLOG, token, 4)
        json_rows = wait_rows(cql, table, host, json_log, token, len(lines))
        after = collector_unit(node)
    finally:
        node.run(f"rm -f {json_log}")

    assert after["ActiveState"] == "active" and after["NRestarts"] == before["NRestarts"], (before, after)
    assert after["MainPID"] == before["MainPID"], (before, after)
    assert quarantine_count(node) == quarantined_before  # total parsers: nothing needed the quarantine

    by_msg = {r.message.rsplit(token, 1)[-1]: r for r in syslog_rows}
    assert set(by_msg) == {"-pid", "-prio", "-prio2", "-after"}, [r.message for r in syslog_rows]
    pid_row = by_msg["-pid"]
    assert pid_row.program == "x" and pid_row.pid is None and pid_row.fields.get("procid") == "²"
    assert not pid_row.parse_error

    assert len(json_rows) == len(lines), [r.message[:80] for r in json_rows]
    messages = {r.message[:200]: r for r in json_rows}
    for name in bad_lines:
        row = next(r for m, r in messages.items() if f"{token}-{name}" in m or f"{token}-{name}" in (r.raw or ""))
        assert row.parse_error, name
    surrogate = next(r for r in json_rows if f"{token}-surrogate" in r.message)
    assert not surrogate.parse_error and surrogate.message.endswith("\ufffd")
    assert all(not r.parse_error for r in json_rows if r.message in (f"{token}-first", f"{token}-last"))


def test_hostile_journal_entries_are_read(node: Any, cql: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The journal reader on the same entries: a one-shot collector with the journal only."""
    token = f"hostile-{uuid.uuid4().hex[:10]}"
    since = int(time.time()) - 1
    node.check_output(f"logger -t 'x[²]' {token}-pid")
    journald(node, [f"MESSAGE={token}-prio", "PRIORITY=²", "SYSLOG_IDENTIFIER=itest"])
    journald(node, [f"MESSAGE={token}-prio2", "PRIORITY=3", "PRIORITY=6", "SYSLOG_IDENTIFIER=itest"])
    journald(node, [f"MESSAGE={token}-after", "PRIORITY=6", "SYSLOG_IDENTIFIER=itest"])
    base = node.file("/etc/iact/collector.toml").content_string
    cassandra = base[base.index("[cassandra]"):].split("\n[", 1)[0]
    test_host = f"itest-{token}"
    work = f"/tmp/itest-{token}"
    config = "\n".join([
        f'host = "{test_host}"', f'state_dir = "{work}/state"', "", cassandra.strip(), "",
        "[journal]", "enabled = true", f'extra_args = ["--since=@{since}"]', 'start = "head"', "",
    ])
    try:
        node.check_output(f"mkdir -p -m 0700 {work} && printf %s {shlex.quote(config)} > {work}/collector.toml")
        run = node.run(f"iact-agent collect --once --config {work}/collector.toml")
        assert run.rc == 0, run.stderr[-2000:]
    finally:
        node.run(f"rm -rf {work}")
    # the one-shot collector logs in as the node's own role: its rows are in the node's own table
    table = own_table(cql, node)
    found = {r.message.rsplit(token, 1)[-1]: r
             for r in wait_rows(cql, table, test_host, "journal", token, 4, timeout=30)}
    assert set(found) == {"-pid", "-prio", "-prio2", "-after"}, sorted(found)
    assert found["-pid"].program == "x" and isinstance(found["-pid"].pid, int)  # _PID (trusted), not SYSLOG_PID "²"
    assert found["-prio"].severity is None and not found["-prio"].parse_error
    # PRIORITY given twice: journalctl lists both values (not in the order given); the first listed counts
    listed = json.loads(node.check_output(f"journalctl -o json --since=@{since} MESSAGE={token}-prio2"))["PRIORITY"]
    assert isinstance(listed, list) and len(listed) == 2
    assert found["-prio2"].severity == ("emerg", "alert", "crit", "err", "warning", "notice", "info")[int(listed[0])]
    assert all(isinstance(r.ts, datetime) for r in found.values())
    assert date.today() - timedelta(days=2) <= found["-after"].ts.date()
