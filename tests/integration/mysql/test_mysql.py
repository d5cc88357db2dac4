"""Integration checks of the metrics store on every host of the inventory's `mysql` group.

Runs from molecule (scenario `mysql`) and against any other inventory with a `mysql` group, e.g.
`pytest --hosts=ansible://mysql --ansible-inventory=inventory/lab tests/integration/mysql`.
Rows written here carry the marker `testinfra` and are deleted again by root.
"""

from __future__ import annotations

import json
import shlex
import uuid

import pytest

testinfra_hosts = ["ansible://mysql"]

CONF_DIR = "/etc/iact"
MIGRATE = "/usr/local/lib/iact/mysql-migrate"
MIGRATIONS = "/usr/local/lib/iact/mysql-migrations"
DATABASE = "iact"
MARK = "testinfra"
AGENT_PURPOSES = ("health", "dora", "quality", "app")
TABLES = (
    "schema_migrations",
    "deployments",
    "changes",
    "incidents",
    "dora_metrics",
    "dora_rejected_events",
    "deployment_changes",
    "health_checks",
    "alerts",
    "alert_notifications",
    "job_runs",
    "quality_results",
    "django_session",
)


def root_sql(host, sql: str, database: str = "") -> list[list[str]]:
    """Run SQL as root through the unix socket; return rows of tab-separated columns."""
    with host.sudo():
        out = host.check_output(f"mysql -N -B {database} -e {shlex.quote(sql)}")
    return [line.split("\t") for line in out.splitlines() if line]


def as_user(host, purpose: str, sql: str, run_as: str = "iact"):
    """Run SQL as an account through its credential file, as the OS user that runs that agent."""
    cmd = f"mysql --defaults-extra-file={CONF_DIR}/mysql-{purpose}.cnf -N -B -e {shlex.quote(sql)}"
    with host.sudo(run_as):
        return host.run(cmd)


def variable(host, name: str) -> str:
    return root_sql(host, f"SELECT @@GLOBAL.{name}")[0][0]


def assert_refused(result) -> None:
    assert result.rc != 0, f"expected a refusal, got rc=0: {result.stdout}"
    assert "denied" in result.stderr.lower(), result.stderr


# --- server --------------------------------------------------------------------------------------


def test_service_running_and_enabled(host):
    service = host.service("mariadb")
    if not service.is_running:
        with host.sudo():
            print(host.run("journalctl -u mariadb --no-pager -n 50").stdout)
    assert service.is_running
    assert service.is_enabled


def test_listens_only_on_configured_addresses(host):
    configured = {a.strip() for a in variable(host, "bind_address").split(",")}
    port = variable(host, "port")
    with host.sudo():
        out = host.check_output(f"ss -ltnH 'sport = :{port}'")
    listening = {line.split()[3].rsplit(":", 1)[0].strip("[]") for line in out.splitlines() if line.strip()}
    assert listening, f"nothing listens on port {port}"
    assert listening == configured, f"listening on {listening}, configured {configured}"
    assert not configured & {"0.0.0.0", "::", "*"}, "the server must not listen on every interface"


def test_root_only_through_unix_socket(host):
    rows = root_sql(host, "SELECT Host, JSON_VALUE(Priv, '$.plugin') FROM mysql.global_priv WHERE User = 'root'")
    assert rows == [["localhost", "unix_socket"]]


@pytest.mark.parametrize("address", ["127.0.0.1", "bind"])
def test_root_cannot_log_in_over_tcp(host, address):
    if address == "bind":
        address = variable(host, "bind_address").split(",")[-1].strip()
    # A wrong password and no password must both be refused; the socket is not used with --protocol=TCP. Over TLS
    # (--ssl), so that it is the login that is refused, not the plain-text transport (require_secure_transport).
    for extra in ("", "--password=not-the-password"):
        result = host.run(f"mysql --no-defaults --ssl --protocol=TCP -h {address} -u root {extra} -e 'SELECT 1'")
        assert result.rc != 0
        assert "access denied" in result.stderr.lower(), result.stderr


def test_no_anonymous_users_and_no_remote_root(host):
    assert root_sql(host, "SELECT COUNT(*) FROM mysql.user WHERE User = ''") == [["0"]]
    assert root_sql(host, "SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'") == [["0"]]


def test_no_test_database(host):
    assert root_sql(host, "SHOW DATABASES LIKE 'test'") == []
    assert root_sql(host, "SELECT COUNT(*) FROM mysql.db WHERE Db LIKE 'test%'") == [["0"]]


def test_local_infile_off(host):
    assert variable(host, "local_infile") == "0"


def test_symbolic_links_and_automatic_routine_grants_off(host):
    assert variable(host, "have_symlink") == "DISABLED"
    assert variable(host, "automatic_sp_privileges") == "0"


def test_audit_plugin_logs_a_failed_login_and_ddl_to_auth_log(host):
    """server_audit (permanent) writes a failed login and a DDL statement to /var/log/auth.log, a file the
    collector ships."""
    assert root_sql(host, "SELECT PLUGIN_STATUS, LOAD_OPTION FROM information_schema.PLUGINS "
                          "WHERE PLUGIN_NAME = 'SERVER_AUDIT'") == [["ACTIVE", "FORCE_PLUS_PERMANENT"]]
    marker = f"itest_audit_{uuid.uuid4().hex[:8]}"
    failed = host.run(f"mysql --no-defaults --ssl --protocol=TCP -h 127.0.0.1 -u {marker} --password=wrong "
                      "-e 'SELECT 1'")
    assert failed.rc != 0
    root_sql(host, f"CREATE DATABASE {marker}")
    root_sql(host, f"DROP DATABASE {marker}")
    lines: list[str] = []
    for _ in range(30):  # rsyslog writes asynchronously
        with host.sudo():
            lines = host.run(f"grep -F {marker} /var/log/auth.log").stdout.splitlines()
        if len(lines) >= 3:
            break
        host.run("sleep 1")
    audit = [line for line in lines if "mariadb-audit" in line]
    assert any("FAILED_CONNECT" in line for line in audit), lines
    assert any("CREATE DATABASE" in line.upper() for line in audit), lines
    assert any("DROP DATABASE" in line.upper() for line in audit), lines
    collector = host.file("/etc/iact/collector.toml")
    if collector.exists:  # the host ships its logs: auth.log is among them
        with host.sudo():
            assert "/var/log/auth.log" in collector.content_string


def test_binary_and_slow_logs(host):
    assert variable(host, "log_bin") == "1"
    assert int(variable(host, "binlog_expire_logs_seconds")) >= 86400
    assert int(variable(host, "server_id")) >= 1
    assert variable(host, "slow_query_log") == "1"


def test_data_directory_is_private(host):
    datadir = host.file(variable(host, "datadir").rstrip("/"))
    assert datadir.is_directory
    assert datadir.user == "mysql"
    assert datadir.group == "mysql"
    assert datadir.mode == 0o750


# --- schema --------------------------------------------------------------------------------------


def test_tables_exist_innodb_utf8mb4(host):
    rows = root_sql(
        host,
        "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA = '{DATABASE}'",
    )
    found = {name: (engine, collation) for name, engine, collation in rows}
    for table in TABLES:
        assert table in found, f"table {table} is missing"
        assert found[table][0] == "InnoDB"
        assert found[table][1].startswith("utf8mb4_")


def test_django_session_matches_django(host):
    rows = root_sql(
        host,
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA = '{DATABASE}' AND TABLE_NAME = 'django_session' ORDER BY ORDINAL_POSITION",
    )
    assert rows == [
        ["session_key", "varchar(40)", "NO", "PRI"],
        ["session_data", "longtext", "NO", ""],
        ["expire_date", "datetime(6)", "NO", "MUL"],
    ]


def test_migrations_recorded_once(host):
    files = sorted(f for f in host.file(MIGRATIONS).listdir() if f.endswith(".sql"))
    rows = root_sql(host, "SELECT version, name, LENGTH(checksum) FROM schema_migrations ORDER BY version", DATABASE)
    assert [r[1] for r in rows] == files
    assert all(r[2] == "64" for r in rows)
    assert [int(r[0]) for r in rows] == [int(f[:4]) for f in files]


@pytest.mark.parametrize("dry_run", [False, True])
def test_migration_rerun_applies_nothing(host, dry_run):
    flag = " --dry-run" if dry_run else ""
    with host.sudo():
        out = host.check_output(f"python3 {MIGRATE} --dir {MIGRATIONS} --database {DATABASE}{flag}")
    result = json.loads(out)
    assert result["changed"] is False
    assert result["applied"] == []
    assert result["pending"] == []


def test_failed_migration_names_file_and_statement(host):
    db = f"iact_selftest_{uuid.uuid4().hex[:8]}"
    tmp = f"/tmp/{db}"
    good = "CREATE TABLE IF NOT EXISTS t1 (id INT PRIMARY KEY);\nINSERT INTO t1 VALUES (1);\n"
    bad = "CREATE TABLE IF NOT EXISTS t2 (id INT);\nINSERT INTO no_such_table VALUES (1);\n"
    with host.sudo():
        host.check_output(f"mkdir -m 0700 {tmp}")
        host.check_output(f"printf %s {shlex.quote(good)} > {tmp}/0001_good.sql")
        host.check_output(f"printf %s {shlex.quote(bad)} > {tmp}/0002_bad.sql")
    root_sql(host, f"CREATE DATABASE {db}")
    try:
        for _attempt in range(2):  # the second run must not apply 0001 again and must stop at 0002 again
            with host.sudo():
                result = host.run(f"python3 {MIGRATE} --dir {tmp} --database {db}")
            assert result.rc == 1
            report = json.loads(result.stdout)
            assert report["file"] == "0002_bad.sql"
            assert report["statement_number"] == 2
            assert "no_such_table" in report["statement"]
            assert "0002_bad.sql" in result.stderr
            assert root_sql(host, "SELECT name FROM schema_migrations", db) == [["0001_good.sql"]]
            assert root_sql(host, "SELECT COUNT(*) FROM t1", db) == [["1"]]
    finally:
        root_sql(host, f"DROP DATABASE {db}")
        with host.sudo():
            host.run(f"rm -rf {tmp}")


# --- accounts and credential files ---------------------------------------------------------------


@pytest.mark.parametrize("purpose", AGENT_PURPOSES)
def test_agent_credential_files(host, purpose):
    f = host.file(f"{CONF_DIR}/mysql-{purpose}.cnf")
    assert f.is_file
    assert (f.user, f.group, f.mode) == ("root", "iact", 0o640)
    with host.sudo():
        assert f"user = iact_{purpose}" in f.content_string


def test_backup_credential_file(host):
    f = host.file(f"{CONF_DIR}/mysql-backup.cnf")
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)


def test_credential_directory(host):
    d = host.file(CONF_DIR)
    assert (d.user, d.group, d.mode) == ("root", "iact", 0o750)


def test_health_account(host):
    ok = as_user(
        host,
        "health",
        f"INSERT INTO health_checks (host, component, check_name, status) VALUES ('{MARK}', '{MARK}', 'ping', 'ok');"
        f"INSERT INTO alerts (alert_key, component, severity, summary) VALUES ('{MARK}:x', '{MARK}', 'warning', 's');"
        f"UPDATE alerts SET status = 'resolved', resolved_at = NOW(6) WHERE alert_key = '{MARK}:x';"
        f"SELECT COUNT(*) FROM health_checks WHERE host = '{MARK}'; SELECT COUNT(*) FROM job_runs;",
    )
    try:
        assert ok.rc == 0, ok.stderr
        assert_refused(as_user(host, "health", "SELECT COUNT(*) FROM deployments"))
        # May prune its own tables (retention) but never touch the alert history.
        assert_refused(as_user(host, "health", f"DELETE FROM alerts WHERE component = '{MARK}'"))
    finally:
        root_sql(
            host,
            f"DELETE FROM health_checks WHERE host = '{MARK}'; DELETE FROM alerts WHERE component = '{MARK}'",
            DATABASE,
        )


def test_dora_account_and_idempotent_ingest(host):
    insert = (
        "INSERT INTO deployments (source, source_event_id, service, status, finished_at) "
        f"VALUES ('{MARK}', 'evt-1', '{MARK}', 'success', NOW(6)) "
        "ON DUPLICATE KEY UPDATE status = VALUES(status);"
    )
    try:
        for _ in range(2):
            result = as_user(host, "dora", insert)
            assert result.rc == 0, result.stderr
        count = as_user(host, "dora", f"SELECT COUNT(*) FROM deployments WHERE source = '{MARK}'")
        assert count.stdout.strip() == "1"
        ok = as_user(
            host,
            "dora",
            "INSERT INTO dora_rejected_events (source, payload, reason) VALUES "
            f"('{MARK}', '{{}}', 'test'); SELECT COUNT(*) FROM dora_metrics;",
        )
        assert ok.rc == 0, ok.stderr
        assert_refused(as_user(host, "dora", "SELECT COUNT(*) FROM health_checks"))
        assert_refused(as_user(host, "dora", f"DELETE FROM health_checks WHERE host = '{MARK}'"))
    finally:
        root_sql(host, f"DELETE FROM deployments WHERE source = '{MARK}';"
                       f"DELETE FROM dora_rejected_events WHERE source = '{MARK}'", DATABASE)


def test_quality_account(host):
    ok = as_user(
        host,
        "quality",
        "SELECT COUNT(*) FROM deployments; SELECT COUNT(*) FROM dora_metrics;"
        "INSERT INTO quality_results (run_id, dataset, check_name, status) "
        f"VALUES ('{uuid.uuid4()}', '{MARK}', 'row_count', 'pass');",
    )
    try:
        assert ok.rc == 0, ok.stderr
        assert_refused(
            as_user(
                host,
                "quality",
                "INSERT INTO deployments (source, source_event_id, service, status, finished_at) "
                f"VALUES ('{MARK}', 'q', '{MARK}', 'success', NOW(6))",
            )
        )
    finally:
        root_sql(host, f"DELETE FROM quality_results WHERE dataset = '{MARK}'", DATABASE)


def test_app_account(host):
    key = uuid.uuid4().hex
    ok = as_user(
        host,
        "app",
        f"INSERT INTO django_session VALUES ('{key}', 'data', NOW(6) + INTERVAL 1 DAY);"
        f"SELECT COUNT(*) FROM django_session WHERE session_key = '{key}';"
        f"DELETE FROM django_session WHERE session_key = '{key}';"
        "INSERT INTO job_runs (job_name, host, started_at, status) "
        f"VALUES ('{MARK}', '{MARK}', NOW(6), 'running');"
        f"UPDATE job_runs SET status = 'success', finished_at = NOW(6), exit_code = 0 WHERE host = '{MARK}';",
    )
    try:
        assert ok.rc == 0, ok.stderr
        assert ok.stdout.strip() == "1"
        # The web layer reads the metrics tables (SELECT) but never changes them, nor the migrations.
        assert as_user(host, "app", "SELECT COUNT(*) FROM deployments").rc == 0
        assert_refused(as_user(host, "app", f"DELETE FROM deployments WHERE service = '{MARK}'"))
        assert_refused(as_user(host, "app", "SELECT COUNT(*) FROM schema_migrations"))
        assert_refused(as_user(host, "app", "DROP TABLE django_session"))
    finally:
        root_sql(host, f"DELETE FROM job_runs WHERE host = '{MARK}'", DATABASE)


def test_backup_account_can_back_up(host):
    target = f"/tmp/iact-backup-selftest-{uuid.uuid4().hex[:8]}"
    try:
        with host.sudo():
            result = host.run(
                f"mariabackup --defaults-extra-file={CONF_DIR}/mysql-backup.cnf --backup --target-dir={target}"
            )
        assert result.rc == 0, result.stderr[-2000:]
        assert "completed OK" in result.stderr
        ok = as_user(
            host,
            "backup",
            f"INSERT INTO {DATABASE}.job_runs (job_name, host, started_at, finished_at, status, exit_code, "
            f"output_bytes) VALUES ('{MARK}', '{MARK}', NOW(6), NOW(6), 'success', 0, 1)",
            run_as="root",
        )
        assert ok.rc == 0, ok.stderr
        assert_refused(as_user(host, "backup", f"SELECT COUNT(*) FROM {DATABASE}.deployments", run_as="root"))
    finally:
        root_sql(host, f"DELETE FROM job_runs WHERE host = '{MARK}'", DATABASE)
        with host.sudo():
            host.run(f"rm -rf {target}")
