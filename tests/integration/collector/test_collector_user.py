"""The collector runs as its own user, which can read only its own credentials (issue 14).

On every collectors host: the unit's main process runs as `iact-collector` (not in the `iact` group); that user
cannot read any other credential file in /etc/iact (the health, audit, DORA... MySQL option files, other
Cassandra passwords); `iact` (every other agent) cannot read the collector's Cassandra password; the health agent
(`iact`) still reads the collector's positions. On one node, a line an agent writes to a /var/log/iact JSON log
(group adm through the folder's setgid) and a `logger` line still reach the host's own table (read back as
test_hostile_input.py does).
"""

from __future__ import annotations

import json
import shlex
import tomllib
import uuid
from datetime import UTC, datetime
from typing import Any

from test_hostile_input import JSON_DIR, STATE, SYSLOG, collector_host, cql, node, own_table, wait_rows

__all__ = ["cql", "node"]  # fixtures of test_hostile_input.py, used here

testinfra_hosts = ["ansible://collectors"]

USER = "iact-collector"
CONFIG = "/etc/iact/collector.toml"
# What the audit's files.credentials calls a credential file in /etc/iact (iact_agents/audit/config.py).
CREDENTIALS = r"\( -name '*.cnf' -o -name '*.password' -o -name '*.key' -o -name '*secret*' -o -name accounts.json \)"


def password_file(host: Any) -> str:
    return str(tomllib.loads(host.file(CONFIG).content_string)["cassandra"]["password_file"])


def read_as(host: Any, user: str, path: str, unit_pid: str | None = None) -> Any:
    """`cat` the file as `user` (output thrown away: no secret reaches the test's output); with `unit_pid`, in
    that process's mount namespace (the files as the unit sees them)."""
    enter = f"nsenter -t {unit_pid} -m -- " if unit_pid else ""
    return host.run(f"{enter}runuser -u {user} -- cat -- {shlex.quote(path)} > /dev/null")


def main_pid(host: Any) -> str:
    pid = str(host.check_output("systemctl show -p MainPID --value iact-collector.service")).strip()
    assert pid not in ("", "0"), host.run("journalctl -u iact-collector -n 30 --no-pager").stdout
    return pid


def test_the_collector_runs_as_its_own_user(host: Any) -> None:
    assert host.check_output(f"ps -o user= -p {main_pid(host)}").strip() == USER
    groups = set(host.check_output(f"id -nG {USER}").split())
    assert groups == {USER, "adm", "systemd-journal"}, groups


def test_the_collector_cannot_read_the_other_agents_credentials(host: Any) -> None:
    """Its user has no right to them, and its unit does not even see them; it reads its own inside its unit."""
    own, pid = password_file(host), main_pid(host)
    found = host.check_output(f"find /etc/iact -type f {CREDENTIALS}").split()
    others = sorted(set(found) - {own})
    assert any(p.endswith("/mysql-health.cnf") for p in others), others  # the health agent's, on every host
    readable = {}
    for path in others:
        outside, inside = read_as(host, USER, path), read_as(host, USER, path, pid)
        if outside.rc == 0 or "Permission denied" not in outside.stderr or inside.rc == 0:
            readable[path] = (outside.rc, outside.stderr, inside.rc, inside.stderr)
    assert not readable, readable
    run = read_as(host, USER, own, pid)
    assert run.rc == 0, f"{USER} cannot read its own password {own} in its unit: {run.stderr}"


def test_no_other_agent_reads_the_collectors_password(host: Any) -> None:
    own = password_file(host)
    f = host.file(own)
    assert (f.user, f.group, f.mode) == (USER, "root", 0o400), own
    run = read_as(host, "iact", own)
    assert run.rc != 0 and "Permission denied" in run.stderr, (run.rc, run.stderr)


def test_the_health_agent_still_reads_the_collectors_positions(host: Any) -> None:
    f = host.file(STATE)
    assert (f.user, f.group) == (USER, USER), STATE
    run = host.run(f"runuser -u iact -- cat -- {STATE}")
    assert run.rc == 0, run.stderr
    assert "sources" in json.loads(run.stdout)


def test_an_agents_json_log_and_a_logger_line_still_reach_cassandra(node: Any, cql: Any) -> None:
    token = f"user-{uuid.uuid4().hex[:10]}"
    host, table = collector_host(node), own_table(cql, node)
    json_log = f"{JSON_DIR}/itest-{token}.json.log"
    line = json.dumps({"ts": datetime.now(UTC).isoformat(), "level": "info", "message": f"{token}-json"})
    try:
        # as an agent would: the iact user, umask 027; the folder's setgid puts the file in group adm
        write = f"umask 027; printf '%s\\n' {shlex.quote(line)} > {json_log}"
        node.check_output(f"runuser -u iact -- sh -c {shlex.quote(write)}")
        f = node.file(json_log)
        assert (f.user, f.group, f.mode) == ("iact", "adm", 0o640), json_log
        node.check_output(f"logger -t itest {token}-syslog")
        json_rows = wait_rows(cql, table, host, json_log, token, 1)
        syslog_rows = wait_rows(cql, table, host, SYSLOG, token, 1)
    finally:
        node.run(f"rm -f {json_log}")
    assert [r.message for r in json_rows] == [f"{token}-json"], json_rows
    assert syslog_rows and syslog_rows[0].message.endswith(f"{token}-syslog"), syslog_rows
