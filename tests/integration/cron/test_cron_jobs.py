"""Cron jobs on the metrics store: the entries are installed and the wrapper really runs them.

Runs on every host of the `mysql` group of whatever inventory testinfra is given (the stack scenario).
"""

from __future__ import annotations

from shlex import quote

import pytest

testinfra_hosts = ["ansible://mysql"]

AS_IACT = "runuser -u iact -- "


def installed_entry(host, path: str, job: str) -> str:
    """The command line of the installed cron entry that runs ``job``, to be run as its own user (the tests
    run what cron runs, not a copy of it)."""
    f = host.file(path)
    assert f.exists and f.user == "root" and f.mode == 0o644, path
    line = next(ln for ln in f.content_string.splitlines() if f"iact-agent job run --name {job}" in ln)
    fields = line.split(None, 6)  # five time fields, the user, the command
    return f"runuser -u {fields[5]} -- sh -c {quote(fields[6])}"


def sql(host, statement: str) -> str:
    """Run SQL as root over the unix socket (root has no TCP login)."""
    cmd = host.run("mariadb -N -B iact -e %s", statement)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def test_session_cleanup_entry_is_installed(host):
    f = host.file("/etc/cron.d/iact-session-cleanup")
    assert f.exists
    assert f.user == "root"
    assert f.mode == 0o644
    assert f.contains("iact-agent job run --name session_cleanup")


def test_session_cleanup_deletes_only_expired_rows_and_records_the_run(host):
    sql(host, "DELETE FROM django_session WHERE session_key LIKE 'itest-%'")
    before = int(sql(host, "SELECT COUNT(*) FROM job_runs WHERE job_name = 'session_cleanup' AND status = 'success'"))
    # 20 expired rows and 5 live ones.
    values = ",".join(
        f"('itest-old-{i}', 'x', UTC_TIMESTAMP(6) - INTERVAL 1 DAY)" for i in range(20)
    ) + "," + ",".join(f"('itest-new-{i}', 'x', UTC_TIMESTAMP(6) + INTERVAL 1 DAY)" for i in range(5))
    sql(host, f"INSERT INTO django_session (session_key, session_data, expire_date) VALUES {values}")

    run = host.run(installed_entry(host, "/etc/cron.d/iact-session-cleanup", "session_cleanup"))
    assert run.rc == 0, run.stderr

    assert sql(host, "SELECT COUNT(*) FROM django_session WHERE session_key LIKE 'itest-old-%'") == "0"
    assert sql(host, "SELECT COUNT(*) FROM django_session WHERE session_key LIKE 'itest-new-%'") == "5"
    after = int(sql(host, "SELECT COUNT(*) FROM job_runs WHERE job_name = 'session_cleanup' AND status = 'success'"))
    assert after == before + 1
    row = sql(host, "SELECT host, exit_code, output_bytes > 0, finished_at >= started_at FROM job_runs "
                    "WHERE job_name = 'session_cleanup' ORDER BY id DESC LIMIT 1").split("\t")
    assert row[1:] == ["0", "1", "1"]
    sql(host, "DELETE FROM django_session WHERE session_key LIKE 'itest-%'")


def test_wrapper_refuses_an_overlapping_run(host):
    holder = host.run(
        "runuser -u iact -- flock /run/iact-jobs/iact/iact-job-itest_overlap.lock sleep 6 >/dev/null 2>&1 &")
    assert holder.rc == 0
    host.run("sleep 1")
    second = host.run(AS_IACT + "iact-agent job run --name itest_overlap -- true")
    assert second.rc == 75, second.stderr
    assert "already running" in second.stderr


def test_failed_job_is_recorded_as_failure(host):
    run = host.run(
        AS_IACT + "iact-agent job run --name itest_fail --mysql-defaults /etc/iact/mysql-app.cnf -- sh -c 'exit 3'"
    )
    assert run.rc == 3
    row = sql(host, "SELECT status, exit_code FROM job_runs WHERE job_name = 'itest_fail' ORDER BY id DESC LIMIT 1")
    assert row.split("\t") == ["failure", "3"]


@pytest.mark.parametrize("tag", ["iact-job/session_cleanup"])
def test_job_output_reaches_syslog(host, tag):
    assert host.run(f"grep -c '{tag}' /var/log/syslog").stdout.strip() not in ("", "0")


def test_retention_entry_runs_through_the_wrapper_and_prunes(host):
    command = installed_entry(host, "/etc/cron.d/iact-retention", "retention")
    sql(host, "INSERT INTO health_checks (checked_at, host, component, check_name, status)"
              " VALUES (UTC_TIMESTAMP(6) - INTERVAL 100 DAY, 'itest-retention', 'itest', 'old', 'ok'),"
              " (UTC_TIMESTAMP(6) - INTERVAL 1 DAY, 'itest-retention', 'itest', 'new', 'ok')")
    run = host.run(command)
    assert run.rc == 0, run.stderr
    assert sql(host, "SELECT check_name FROM health_checks WHERE host = 'itest-retention'") == "new"
    row = sql(host, "SELECT status, exit_code FROM job_runs WHERE job_name = 'retention' ORDER BY id DESC LIMIT 1")
    assert row.split("\t") == ["success", "0"]
    sql(host, "DELETE FROM health_checks WHERE host = 'itest-retention'")
