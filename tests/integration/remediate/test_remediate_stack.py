"""`iact-agent remediate` on the deployed stack, driven from the first Cassandra node (a collector too):

- a stopped collector is restarted by remediation; stopped again within the hour, it is not (the budget of one an
  hour stops it) and a critical alert opens;
- a stopped Cassandra node is not restarted while another node is down, and is restarted once every other node is
  UN again;
- a dry run changes nothing and records what it would have done.

Each step runs the health checks as the cron job would (as iact), then remediation, with the dry-run switch set
through the environment (IACT_REMEDIATE__DRY_RUN) so the test does not depend on the inventory's setting. Cron's own
runs (every 5 minutes) may decide in between: the assertions read the rows recorded since the step began, not one
run's output. The earlier decisions of the two actions on the hosts used are deleted first (as root on the metrics
store) so that a re-run within the day starts with a full budget. Every collector and node is started again and
the cluster waited for UN whatever happens.
"""

from __future__ import annotations

import json
import time

import pytest
import testinfra

testinfra_hosts = ["ansible://all"]

AS_IACT = "runuser -u iact -- "
HEALTH = AS_IACT + "iact-agent health --config /etc/iact/health.toml"


def remediate(dry_run: bool) -> str:
    return (f"runuser -u iact -- env IACT_REMEDIATE__DRY_RUN={str(dry_run).lower()} "
            "iact-agent remediate run --json --config /etc/iact/remediate.toml")


def variables(host):
    return host.ansible.get_variables()


def hosts_of(host, group):
    inventory = host.backend.ansible_inventory
    return [(n, testinfra.get_host(f"ansible://{n}?ansible_inventory={inventory}"))
            for n in variables(host)["groups"][group]]


def first_node_only(host):
    if variables(host)["inventory_hostname"] != variables(host)["groups"]["cassandra"][0]:
        pytest.skip("runs from the first Cassandra node only")


def sql(host, statement, *args):
    db = hosts_of(host, "mysql")[0][1]
    cmd = db.run("mariadb -N -B iact -e %s", statement % tuple(args))
    assert cmd.rc == 0, cmd.stderr
    return [line.split("\t") for line in cmd.stdout.splitlines()]


def quoted(text):
    assert all(c.isalnum() or c in "-._:" for c in text), text
    return f"'{text}'"


def decisions_since(host, name, action, since_id):
    return sql(host, "SELECT outcome, COALESCE(guardrail, ''), dry_run, summary FROM remediations"
                     " WHERE host = %s AND action = %s AND id > %s ORDER BY id", quoted(name), quoted(action), since_id)


def last_id(host):
    rows = sql(host, "SELECT COALESCE(MAX(id), 0) FROM remediations")
    return int(rows[0][0])


def fresh_budget(host, name, action):
    sql(host, "DELETE FROM remediations WHERE host = %s AND action = %s", quoted(name), quoted(action))


def unit_state(h, unit):
    return h.run("systemctl is-active %s", unit).stdout.strip()


def wait_for(predicate, what, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(3)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def all_un(h, expected):
    cmd = h.run("iact-agent cassandra status --expect %s", str(expected))
    return cmd.rc == 0


def un_count(h, expected):
    out = h.run("iact-agent cassandra status --expect %s", str(expected)).stdout
    return sum(1 for line in out.splitlines() if line.startswith("UN "))


def run_ok(h, command):
    cmd = h.run(command)
    assert cmd.rc in (0, 1, 2), cmd.stdout + cmd.stderr  # health: Nagios codes; remediate: 2 = budget or failure
    return cmd


# --- the collector -----------------------------------------------------------------------------------


def test_stopped_collector_is_restarted_then_the_budget_stops_it_with_an_alert(host):
    first_node_only(host)
    name = variables(host)["inventory_hostname"]
    unit = "iact-collector.service"
    fresh_budget(host, name, "restart_collector")
    try:
        start = last_id(host)
        host.run_test("systemctl stop %s", unit)
        assert unit_state(host, unit) == "inactive"
        run_ok(host, HEALTH)
        run_ok(host, remediate(dry_run=False))
        rows = decisions_since(host, name, "restart_collector", start)
        assert [r[0] for r in rows] == ["acted"], rows
        assert unit_state(host, unit) == "active"

        # stopped again within the hour: not restarted, a critical alert instead
        second = last_id(host)
        host.run_test("systemctl stop %s", unit)
        run_ok(host, HEALTH)
        run = run_ok(host, remediate(dry_run=False))
        rows = decisions_since(host, name, "restart_collector", second)
        assert rows and all((r[0], r[1]) == ("skipped", "budget") for r in rows), rows
        assert unit_state(host, unit) == "inactive", run.stdout
        alert = sql(host, "SELECT severity, status FROM alerts WHERE open_key = %s",
                    quoted(f"remediation:restart_collector:{name}"))
        assert alert == [["critical", "open"]], alert
        assert host.file("/var/mail/iact").contains(f"X-IACT-Alert-Key: remediation:restart_collector:{name}")
    finally:
        host.run("systemctl start %s", unit)
        run_ok(host, HEALTH)
        run_ok(host, remediate(dry_run=True))  # not needed any more: the alert resolves
    assert unit_state(host, unit) == "active"
    assert sql(host, "SELECT COUNT(*) FROM alerts WHERE open_key = %s",
               quoted(f"remediation:restart_collector:{name}")) == [["0"]]


def test_dry_run_changes_nothing_and_records_the_action(host):
    first_node_only(host)
    name = variables(host)["inventory_hostname"]
    unit = "iact-collector.service"
    try:
        start = last_id(host)
        host.run_test("systemctl stop %s", unit)
        run_ok(host, HEALTH)
        out = json.loads(run_ok(host, remediate(dry_run=True)).stdout)
        assert out["dry_run"] is True
        rows = decisions_since(host, name, "restart_collector", start)
        assert rows and rows[0][0] in ("dry_run", "skipped") and rows[0][2] == "1", rows
        assert unit_state(host, unit) == "inactive"
    finally:
        host.run("systemctl start %s", unit)
    assert unit_state(host, unit) == "active"


# --- a Cassandra node -------------------------------------------------------------------------------


def test_stopped_node_is_restarted_only_when_every_other_node_is_un(host):
    first_node_only(host)
    nodes = hosts_of(host, "cassandra")
    expected = len(nodes)
    (_, first), (target_name, target), (other_name, other) = nodes[0], nodes[1], nodes[2]
    fresh_budget(host, target_name, "restart_cassandra")
    try:
        assert all_un(first, expected)
        # another node down first, then the target: the target must stay down
        other.run_test("systemctl stop cassandra")
        target.run_test("systemctl stop cassandra")
        start = last_id(host)
        for _, h in nodes:
            run_ok(h, HEALTH)
        run_ok(target, remediate(dry_run=False))
        rows = decisions_since(host, target_name, "restart_cassandra", start)
        assert rows and all((r[0], r[1]) == ("skipped", "peers") for r in rows), rows
        assert unit_state(target, "cassandra.service") == "inactive"
        assert unit_state(other, "cassandra.service") == "inactive"

        # the other node back: now every node but the target is UN, and the target is restarted
        other.run_test("systemctl start cassandra")
        # both peers' own views must show it (each records its cassandra:nodes_up from its own nodetool)
        wait_for(lambda: un_count(first, expected) == expected - 1 and un_count(other, expected) == expected - 1,
                 f"{other_name} UN again in every peer's view")
        start = last_id(host)
        for _, h in nodes:
            run_ok(h, HEALTH)
        run_ok(target, remediate(dry_run=False))
        rows = decisions_since(host, target_name, "restart_cassandra", start)
        assert "acted" in [r[0] for r in rows], rows  # cron's own run may have been first
        assert all_un(first, expected)
    finally:
        for _, h in nodes:
            h.run("systemctl start cassandra")
        wait_for(lambda: all_un(first, expected), "every node UN", timeout=600)
