"""`iact-agent health` on the deployed stack: all green, then a real Cassandra node stopped and restarted.

The alert for `cassandra:nodes_up` as seen from the first node must open after the configured number
of consecutive failing runs, with one notification, and resolve after the node is back, with one more.
"""

from __future__ import annotations

import json
import time

import pytest
import testinfra

testinfra_hosts = ["ansible://all"]

AS_IACT = "runuser -u iact -- "


def hosts_of(host, group):
    names = host.ansible.get_variables()["groups"][group]
    inventory = host.backend.ansible_inventory
    return [testinfra.get_host(f"ansible://{n}?ansible_inventory={inventory}") for n in names]


def mysql(host):
    return hosts_of(host, "mysql")[0]


def sql(db_host, statement):
    cmd = db_host.run("mariadb -N -B iact -e %s", statement)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def test_health_is_all_green(host):
    run = host.run(AS_IACT + "iact-agent health --json --config /etc/iact/health.toml")
    report = json.loads(run.stdout)
    bad = [r for r in report["results"] if r["status"] != "ok"]
    assert run.rc == 0 and not bad, json.dumps(bad, indent=1) + run.stderr


def test_health_cron_entry_runs_through_the_wrapper(host):
    f = host.file("/etc/cron.d/iact-health")
    assert f.exists and f.mode == 0o644
    assert f.contains("iact-agent job run --name health")


def test_alert_mailbox_is_local_only(host):
    box = host.file("/var/mail/iact")
    assert box.exists and box.user == "iact" and box.mode == 0o660
    # Debian may bring exim4 along as the default MTA: allowed only as local delivery, never a relay.
    exim = host.file("/etc/exim4/update-exim4.conf.conf")
    if exim.exists:
        assert exim.contains("^dc_eximconfig_configtype='local'"), exim.content_string
        assert exim.contains("^dc_smarthost=''"), exim.content_string
    assert not host.package("postfix").is_installed
    smtp = [s for s in host.socket.get_listening_sockets() if s.endswith(":25") or s.endswith(":587")]
    assert all(s.startswith(("tcp://127.", "tcp://::1")) for s in smtp), smtp


def _wait_cassandra_up(node, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.run("iact-agent cassandra status --expect 3").rc == 0:  # every listed node UN, at least 3
            return
        time.sleep(5)
    pytest.fail(f"the cluster did not come back to all UN: {node.run('nodetool status').stdout}")


def _count(db, key, where):
    return int(sql(db, f"SELECT COUNT(*) FROM {where} AND alert_key = '{key}'"))


def test_node_down_opens_one_alert_and_recovery_resolves_it(host):
    """Runs once, from the first Cassandra node; cron's own health runs may interleave, so counts are deltas."""
    cass = hosts_of(host, "cassandra")
    if host.ansible.get_variables()["inventory_hostname"] != host.ansible.get_variables()["groups"]["cassandra"][0]:
        pytest.skip("runs from the first Cassandra node only")
    watcher, victim = host, cass[-1]
    db = mysql(host)
    key = f"cassandra:nodes_up:{host.ansible.get_variables()['inventory_hostname']}"
    threshold = host.ansible.get_variables().get("health_consecutive_failures", 3)
    open_alerts = "alerts WHERE status = 'open'"
    opened_mail = "alert_notifications WHERE event = 'open' AND channel = 'mailbox'"
    resolved_mail = "alert_notifications WHERE event = 'resolved' AND channel = 'mailbox'"
    assert _count(db, key, open_alerts) == 0, "an alert was already open before the node was stopped"
    opened_before, resolved_before = _count(db, key, opened_mail), _count(db, key, resolved_mail)
    health = AS_IACT + "iact-agent health --config /etc/iact/health.toml"

    assert victim.run("systemctl stop cassandra").rc == 0
    try:
        for i in range(threshold):
            run = watcher.run(health)
            assert run.rc == 2, f"run {i + 1}: expected critical with a node down:\n{run.stdout}"
        assert _count(db, key, open_alerts) == 1
        watcher.run(health)  # still down: no duplicate alert, no second notification
        assert _count(db, key, open_alerts) == 1
        assert _count(db, key, opened_mail) == opened_before + 1
    finally:
        assert victim.run("systemctl start cassandra").rc == 0
        _wait_cassandra_up(watcher)

    run = watcher.run(health + " --json")
    nodes_up = [r for r in json.loads(run.stdout)["results"] if r["check"] == "nodes_up"]
    assert nodes_up and nodes_up[0]["status"] == "ok", run.stdout
    assert _count(db, key, open_alerts) == 0
    assert _count(db, key, resolved_mail) == resolved_before + 1
    mailbox = watcher.file("/var/mail/iact").content_string
    assert key in mailbox
