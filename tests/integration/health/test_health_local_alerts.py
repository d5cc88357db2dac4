"""What the health agent says without the metrics store, on the deployed stack.

- MariaDB stopped on the first mysql host: another host's health runs alert straight to its syslog and
  local mailbox (after the configured number of failing runs, once), and send one "resolved" when MariaDB
  is back. MariaDB is started again whatever happens.
- A collector in a crash loop (a drop-in whose ExecStart fails, under the unit's own Restart=): a warning
  at the first check, critical at the second. The drop-in is removed and the collector restarted whatever
  happens.

Cron's own health runs (every 5 minutes) may interleave with the runs here: counts are deltas, and the
crash-loop runs use a state folder of their own so that only their two checks count.
"""

from __future__ import annotations

import json
import time

import pytest
import testinfra

testinfra_hosts = ["ansible://all"]

AS_IACT = "runuser -u iact -- "
HEALTH = AS_IACT + "iact-agent health --config /etc/iact/health.toml"


def variables(host):
    return host.ansible.get_variables()


def host_named(host, name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={host.backend.ansible_inventory}")


def only_on(host, name, why):
    if variables(host)["inventory_hostname"] != name:
        pytest.skip(f"runs once, on {name} ({why})")


def mailbox_count(host, key, event):
    """Messages of the local mailbox for ``key`` with ``X-IACT-Event: event``."""
    box = host.file("/var/mail/iact")
    if not box.exists:
        return 0
    text = box.content_string
    return sum(1 for message in text.split("\nFrom ")
               if f"X-IACT-Alert-Key: {key}" in message and f"X-IACT-Event: {event}" in message)


def syslog_count(host, text):
    out = host.run("grep -cF %s /var/log/syslog", text)
    return int(out.stdout.strip() or 0)


def wait_for(predicate, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# --- MySQL itself down ----------------------------------------------------------------------------


def watcher_name(host):
    """A host without MariaDB, preferably one without Cassandra (its health runs are the fastest)."""
    groups = variables(host)["groups"]
    others = [h for h in groups["all"] if h not in groups.get("mysql", [])]
    plain = [h for h in others if h not in groups.get("cassandra", [])]
    return (plain or others)[0]


def test_mysql_down_is_alerted_without_mysql_and_resolved_when_back(host):
    groups = variables(host)["groups"]
    only_on(host, groups["mysql"][0], "it stops its MariaDB")
    db = host
    watcher = host_named(host, watcher_name(host))
    name = variables(watcher)["inventory_hostname"]
    key = f"mysql:reachable:{name}"
    threshold = int(variables(watcher).get("health_consecutive_failures", 3))
    opened_before, resolved_before = mailbox_count(watcher, key, "open"), mailbox_count(watcher, key, "resolved")
    syslog_open = f"open critical {key}:"
    syslog_resolved = f"resolved critical {key}:"
    syslog_open_before, syslog_resolved_before = syslog_count(watcher, syslog_open), syslog_count(watcher,
                                                                                                  syslog_resolved)

    assert db.run("systemctl stop mariadb").rc == 0
    try:
        for i in range(threshold):
            run = watcher.run(HEALTH + " --json")
            report = json.loads(run.stdout)
            assert run.rc == 2 and not report["recorded"], f"run {i + 1}: {run.stdout}\n{run.stderr}"
            mysql = [r for r in report["results"] if r["component"] == "mysql"]
            assert mysql[0]["status"] == "critical" and "not reachable" in mysql[0]["summary"], mysql
        # Rate-limited: one open, however many runs (this one, and cron's, may add to the failures).
        watcher.run(HEALTH)
        assert mailbox_count(watcher, key, "open") == opened_before + 1, watcher.file("/var/mail/iact").content_string
        print(f"{name}: {threshold + 1} runs with MariaDB stopped, one 'open' in the mailbox")
        wait_for(lambda: syslog_count(watcher, syslog_open) > syslog_open_before, f"'{syslog_open}' in syslog", 30)
        state = json.loads(watcher.file("/var/lib/iact/health/state.json").content_string)
        assert state["mysql_outage"]["outage"]["key"] == key
    finally:
        start = db.run("systemctl start mariadb")
        wait_for(lambda: db.run("mariadb -N -B -e 'SELECT 1'").rc == 0, "MariaDB to answer again")
    assert start.rc == 0, start.stderr

    run = watcher.run(HEALTH + " --json")
    report = json.loads(run.stdout)
    assert report["recorded"], run.stdout + run.stderr
    assert mailbox_count(watcher, key, "resolved") == resolved_before + 1
    wait_for(lambda: syslog_count(watcher, syslog_resolved) > syslog_resolved_before,
             f"'{syslog_resolved}' in syslog", 30)
    state = json.loads(watcher.file("/var/lib/iact/health/state.json").content_string)
    assert "outage" not in state.get("mysql_outage", {})
    watcher.run(HEALTH)  # nothing more to say
    assert mailbox_count(watcher, key, "resolved") == resolved_before + 1
    print(watcher.run("grep -F %s /var/log/syslog | tail -2", key).stdout)


# --- a collector in a crash loop ------------------------------------------------------------------

DROP_IN = "/etc/systemd/system/iact-collector.service.d/itest-crash-loop.conf"
UNIT = "iact-collector.service"


def collector_state(host):
    out = host.run(f"systemctl show --property=ActiveState,SubState,NRestarts {UNIT}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_a_crash_looping_collector_is_critical_at_the_second_check(host):
    groups = variables(host)["groups"]
    # A collector host without the metrics store, so that the other suites' MariaDB is not disturbed.
    only_on(host, ([h for h in groups["collectors"] if h not in groups.get("mysql", [])] or groups["collectors"])[-1],
            "it breaks its collector for a minute")
    state_dir = host.run("runuser -u iact -- mktemp -d /tmp/itest-health-state.XXXXXX").stdout.strip()
    assert state_dir.startswith("/tmp/itest-health-state.")
    health = f"IACT_HEALTH__STATE_DIR={state_dir} " + HEALTH + " --json"

    def collector_result():
        run = host.run(health)
        report = json.loads(run.stdout)
        [result] = [r for r in report["results"] if r["component"] == "service" and r["check"] == UNIT]
        return result

    assert collector_result()["status"] == "ok", "the collector was not healthy before the test"
    host.run(f"mkdir -p {DROP_IN.rsplit('/', 1)[0]}")
    try:
        assert host.run(f"printf '[Service]\\nExecStart=\\nExecStart=/bin/false\\n' > {DROP_IN}").rc == 0
        assert host.run("systemctl daemon-reload").rc == 0
        assert host.run(f"systemctl restart --no-block {UNIT}").rc == 0
        wait_for(lambda: int(collector_state(host).get("NRestarts", 0)) >= 1, "the first automatic restart", 60)

        first = collector_result()
        print(f"first check:  {first['status']}: {first['summary']}")
        if collector_state(host)["ActiveState"] != "failed":
            assert first["status"] == "warning", first
        assert first["detail"]["unsteady_checks"] == 1, first
        second = collector_result()
        print(f"second check: {second['status']}: {second['summary']}")
        assert second["status"] == "critical", second
        assert second["detail"]["unsteady_checks"] == 2, second
        if second["detail"]["state"] == "activating":
            assert "not steadily active at 2 checks in a row" in second["summary"], second
    finally:
        host.run(f"rm -f {DROP_IN}")
        host.run("systemctl daemon-reload")
        host.run(f"systemctl reset-failed {UNIT}")
        host.run(f"systemctl restart {UNIT}")
        wait_for(lambda: host.run(f"systemctl is-active {UNIT}").stdout.strip() == "active", "the collector", 90)
    try:
        assert not host.file(DROP_IN).exists
        back = collector_result()
        print(f"after repair: {back['status']}: {back['summary']}")
        assert back["status"] == "ok" and back["detail"]["unsteady_checks"] == 0, back
    finally:
        host.run(f"rm -rf {state_dir}")
