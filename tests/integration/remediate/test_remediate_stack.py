"""`iact-agent remediate` on the deployed stack, driven from the first Cassandra node (a collector too).

Remediation restarts only a unit systemd gave up on (``failed``), never one that was stopped (``inactive``). The
tests make a unit ``failed`` for real: a runtime drop-in turns ``Restart=`` off (``/run/systemd/system/<unit>.d``,
gone at reboot), then ``systemctl kill -s KILL``. Then:

- a failed collector is restarted by remediation; failed again within the hour, it is not (the budget of one an
  hour stops it) and a critical alert opens; a stopped collector is left alone;
- a failed Cassandra node is not restarted while another node is stopped (that one is not started either: it
  was stopped on purpose), and is restarted once every other node is UN again;
- a dry run changes nothing and records what it would have done.

Each step runs the health job's own command (the one of the cron entry, after the `iact-agent job run` wrapper)
as the job's user, with the dry-run switch set through the environment (IACT_REMEDIATE__DRY_RUN) so the tests do
not depend on the inventory's setting. Cron's own runs are kept out while a test disturbs a host: the test holds
the job's lock (`iact-agent job run` refuses to start an overlapping run), so every decision recorded comes from
the test's runs. The two actions' decisions on the hosts used are deleted before and after (as root on the
metrics store), so a re-run starts with a full budget and the lab is not left with a spent one. Whatever happens,
the drop-ins are removed and every unit started again, and the cluster waited for UN.

Runs against the stack scenario (molecule/default/verify.yml) and the lab:
`pytest --ansible-inventory=inventory/lab --force-ansible --hosts=ansible://cass1 tests/integration/remediate`
(the lab's SSH settings need every command to go through Ansible).
"""

from __future__ import annotations

import contextlib
import shlex
import time

import pytest
import testinfra

testinfra_hosts = ["ansible://all"]

COLLECTOR = "iact-collector.service"
CASSANDRA = "cassandra.service"
CRON_ENTRY = "/etc/cron.d/iact-health"
JOB_USER = "iact"
JOB_LOCK = f"/run/iact-jobs/{JOB_USER}/iact-job-health.lock"
"""The health job's lock (agents/iact_agents/jobs.py job_lock: <lock folder of the user>/iact-job-<name>.lock)."""
DROP_IN = "zz-test-norestart.conf"


def variables(host):
    return host.ansible.get_variables()


def peer(host, name):
    """Host ``name`` of the same inventory, reached the same way (``--force-ansible`` on the lab)."""
    spec = f"ansible://{name}?ansible_inventory={host.backend.ansible_inventory}"
    if getattr(host.backend, "force_ansible", False):
        spec += "&force_ansible=True"
    return testinfra.get_host(spec)


def hosts_of(host, group):
    return [(n, peer(host, n)) for n in variables(host)["groups"][group]]


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
    return int(sql(host, "SELECT COALESCE(MAX(id), 0) FROM remediations")[0][0])


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


def un_count(h, expected):
    out = h.run("iact-agent cassandra status --expect %s", str(expected)).stdout
    return sum(1 for line in out.splitlines() if line.startswith("UN "))


def all_un(h, expected):
    return h.run("iact-agent cassandra status --expect %s", str(expected)).rc == 0


# --- the health job, as cron runs it -------------------------------------------------------------------


def job_command(h):
    """The command of the health job's cron entry, after the `iact-agent job run ... --` wrapper."""
    for line in h.file(CRON_ENTRY).content_string.splitlines():
        fields = line.split(None, 6)
        if len(fields) == 7 and not line.lstrip().startswith("#") and fields[5] == JOB_USER:
            wrapped = fields[6]
            assert " -- " in wrapped and "iact-agent remediate run" in wrapped, wrapped
            return wrapped.split(" -- ", 1)[1]
    pytest.fail(f"no {JOB_USER} job in {CRON_ENTRY}")


def health_job(h, dry_run):
    """The health checks then remediation, as the job's user; 0..2 are the checks' Nagios codes (the job keeps
    them), 2 is also remediation's "a budget is spent or an attempt failed"."""
    cmd = h.run(f"runuser -u {JOB_USER} -- env IACT_REMEDIATE__DRY_RUN={str(dry_run).lower()} sh -c %s",
                job_command(h))
    assert cmd.rc in (0, 1, 2), cmd.stdout + cmd.stderr
    return cmd


@contextlib.contextmanager
def cron_paused(hosts):
    """Hold the health job's lock on each host (cron's own runs refuse to start meanwhile), released by pid."""
    holder = ("import fcntl, os, sys, time\n"
              "fd = os.open(sys.argv[1], os.O_RDWR)\n"
              "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
              "print(os.getpid(), flush=True)\n"
              "time.sleep(900)\n")
    held = []
    try:
        for name, h in hosts:
            # The lock file exists once the job ran (cron every 5 minutes); made the way the job makes it if not.
            h.run_test(f"test -f {JOB_LOCK} || runuser -u {JOB_USER} -- sh -c 'umask 077; : >> {JOB_LOCK}'")
            pid_file = "/run/iact-remediate-test-hold.pid"
            h.run_test(f"rm -f {pid_file}")

            def started(h=h, pid_file=pid_file):
                # a running cron job holds the lock: try again until it ends (the job's timeout bounds it)
                h.run(f"nohup python3 -c {shlex.quote(holder)} {JOB_LOCK} > {pid_file} 2>/dev/null < /dev/null &")
                time.sleep(1)
                pid = h.run(f"cat {pid_file}").stdout.strip()
                return pid.isdigit() and h.run(f"kill -0 {pid}").rc == 0
            wait_for(started, f"the health job's lock on {name}", timeout=600)
            held.append((h, h.run(f"cat {pid_file}").stdout.strip()))
        yield
    finally:
        for h, pid in held:
            h.run(f"kill {pid}")


@contextlib.contextmanager
def no_restart(h, unit):
    """``Restart=no`` for ``unit`` until the end (a runtime drop-in), so a killed process leaves it ``failed``."""
    folder = f"/run/systemd/system/{unit}.d"
    try:
        h.run_test(f"mkdir -p {folder} && printf '[Service]\\nRestart=no\\n' > {folder}/{DROP_IN}"
                   " && systemctl daemon-reload")
        yield
    finally:
        h.run(f"rm -f {folder}/{DROP_IN}; rmdir {folder} 2>/dev/null; systemctl daemon-reload;"
              f" systemctl reset-failed {unit}; systemctl start {unit}")


def kill_to_failed(h, unit):
    h.run_test("systemctl kill -s KILL %s", unit)
    wait_for(lambda: unit_state(h, unit) == "failed", f"{unit} failed after SIGKILL", timeout=60)


# --- the collector -----------------------------------------------------------------------------------


def test_failed_collector_is_restarted_then_the_budget_stops_it_with_an_alert(host):
    first_node_only(host)
    name = variables(host)["inventory_hostname"]
    key = f"remediation:restart_collector:{name}"
    fresh_budget(host, name, "restart_collector")
    try:
        with cron_paused([(name, host)]), no_restart(host, COLLECTOR):
            start = last_id(host)
            kill_to_failed(host, COLLECTOR)
            health_job(host, dry_run=False)
            rows = decisions_since(host, name, "restart_collector", start)
            assert [r[0] for r in rows] == ["acted"], rows
            assert unit_state(host, COLLECTOR) == "active"

            # failed again within the hour: not restarted, a critical alert instead
            second = last_id(host)
            kill_to_failed(host, COLLECTOR)
            run = health_job(host, dry_run=False)
            rows = decisions_since(host, name, "restart_collector", second)
            assert [(r[0], r[1]) for r in rows] == [("skipped", "budget")], rows
            assert unit_state(host, COLLECTOR) == "failed", run.stdout
            alert = sql(host, "SELECT severity, status FROM alerts WHERE open_key = %s", quoted(key))
            assert alert == [["critical", "open"]], alert
            assert host.file(f"/var/mail/{JOB_USER}").contains(f"X-IACT-Alert-Key: {key}")
        # the drop-in gone and the collector started again: the next run finds nothing to do, the alert resolves
        assert unit_state(host, COLLECTOR) == "active"
        with cron_paused([(name, host)]):
            health_job(host, dry_run=True)
        assert sql(host, "SELECT COUNT(*) FROM alerts WHERE open_key = %s", quoted(key)) == [["0"]]
    finally:
        host.run("systemctl start %s", COLLECTOR)
        fresh_budget(host, name, "restart_collector")


def test_stopped_collector_is_left_alone(host):
    first_node_only(host)
    name = variables(host)["inventory_hostname"]
    try:
        with cron_paused([(name, host)]):
            start = last_id(host)
            host.run_test("systemctl stop %s", COLLECTOR)
            health_job(host, dry_run=False)
            assert decisions_since(host, name, "restart_collector", start) == []
            assert unit_state(host, COLLECTOR) == "inactive"
    finally:
        host.run("systemctl start %s", COLLECTOR)
    assert unit_state(host, COLLECTOR) == "active"


def test_dry_run_changes_nothing_and_records_the_action(host):
    first_node_only(host)
    name = variables(host)["inventory_hostname"]
    fresh_budget(host, name, "restart_collector")
    try:
        with cron_paused([(name, host)]), no_restart(host, COLLECTOR):
            start = last_id(host)
            kill_to_failed(host, COLLECTOR)
            health_job(host, dry_run=True)
            rows = decisions_since(host, name, "restart_collector", start)
            assert [(r[0], r[2]) for r in rows] == [("dry_run", "1")], rows
            assert unit_state(host, COLLECTOR) == "failed"
        assert unit_state(host, COLLECTOR) == "active"
    finally:
        host.run("systemctl start %s", COLLECTOR)
        fresh_budget(host, name, "restart_collector")


# --- a Cassandra node -------------------------------------------------------------------------------


def test_failed_node_is_restarted_only_when_every_other_node_is_un(host):
    first_node_only(host)
    nodes = hosts_of(host, "cassandra")
    expected = len(nodes)
    (_, first), (target_name, target), (other_name, other) = nodes[0], nodes[1], nodes[2]
    fresh_budget(host, target_name, "restart_cassandra")
    fresh_budget(host, other_name, "restart_cassandra")
    try:
        assert all_un(first, expected)
        with cron_paused(nodes), no_restart(target, CASSANDRA):
            # another node stopped on purpose, then the target fails: neither is started
            start = last_id(host)
            other.run_test("systemctl stop %s", CASSANDRA)
            kill_to_failed(target, CASSANDRA)
            for h in (first, other, target):  # the peers' views first, then the target's decision
                health_job(h, dry_run=False)
            rows = decisions_since(host, target_name, "restart_cassandra", start)
            assert [(r[0], r[1]) for r in rows] == [("skipped", "peers")], rows
            assert decisions_since(host, other_name, "restart_cassandra", start) == []
            assert unit_state(target, CASSANDRA) == "failed"
            assert unit_state(other, CASSANDRA) == "inactive"

            # the other node back: every node but the target is UN in both peers' own views, and the target is
            # restarted (remediation waits for every node UN before it records the action)
            other.run_test("systemctl start %s", CASSANDRA)
            wait_for(lambda: un_count(first, expected) == expected - 1 and un_count(other, expected) == expected - 1,
                     f"{other_name} UN again in every peer's view")
            start = last_id(host)
            for h in (first, other, target):
                health_job(h, dry_run=False)
            rows = decisions_since(host, target_name, "restart_cassandra", start)
            assert [r[0] for r in rows] == ["acted"], rows
            assert unit_state(target, CASSANDRA) == "active"
            assert all_un(first, expected)
    finally:
        for _, h in nodes:
            h.run("systemctl reset-failed %s; systemctl start %s", CASSANDRA, CASSANDRA)
        wait_for(lambda: all_un(first, expected), "every node UN", timeout=600)
        fresh_budget(host, target_name, "restart_cassandra")
        fresh_budget(host, other_name, "restart_cassandra")
