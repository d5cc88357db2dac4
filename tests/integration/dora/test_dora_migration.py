"""Migration 0013 (DORA ids compared exactly) on the metrics store: on the live schema, and on a scratch
database built to the state before it (0001..0012) and filled with the rows the old collation produced.

Runs on every host of the `mysql` group (as root through the unix socket, as the role's runner does).
"""

from __future__ import annotations

import json
import uuid

testinfra_hosts = ["ansible://mysql"]

MIGRATE = "/usr/local/lib/iact/mysql-migrate"
MIGRATIONS = "/usr/local/lib/iact/mysql-migrations"
EXACT = "utf8mb4_nopad_bin"
ID_COLUMNS = {
    ("deployments", "source"), ("deployments", "source_event_id"),
    ("changes", "source"), ("changes", "source_event_id"), ("changes", "deployment_ref"),
    ("incidents", "source"), ("incidents", "source_event_id"), ("incidents", "deployment_ref"),
    ("deployment_changes", "change_ref"),
    ("dora_rejected_events", "source"), ("dora_rejected_events", "event_type"),
    ("dora_rejected_events", "source_event_id"),
}
# Spelled with CHAR(... USING utf8mb4) so that no shell or terminal touches the bytes.
CAFE_ACCENT = "CONCAT('caf', CHAR(0xC3A9 USING utf8mb4))"
ZERO_WIDTH = "CONCAT('zw', CHAR(0xE2808B USING utf8mb4), 'id')"


def sql(host, database: str, statement: str, check: bool = True):
    with host.sudo():
        cmd = host.run("mariadb -N -B %s -e %s", database, statement)
    if check:
        assert cmd.rc == 0, cmd.stderr
    return cmd


def migrate(host, directory: str, database: str) -> dict:
    with host.sudo():
        cmd = host.run("/usr/bin/python3 %s --dir %s --database %s", MIGRATE, directory, database)
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    return json.loads(cmd.stdout)


def collations(host, database: str) -> dict[tuple[str, str], str]:
    out = sql(host, "information_schema", "SELECT table_name, column_name, collation_name FROM columns "
                                          f"WHERE table_schema = '{database}' AND collation_name IS NOT NULL").stdout
    return {(t, c): coll for t, c, coll in (line.split("\t") for line in out.splitlines())}


def dump(host, database: str) -> str:
    """Every row of the DORA tables, ids in hex: what the migration must keep byte for byte."""
    return sql(host, database, "SELECT 'd', id, HEX(source), HEX(source_event_id), status FROM deployments "
                               "UNION ALL SELECT 'i', id, HEX(source), HEX(source_event_id), HEX(deployment_ref) "
                               "FROM incidents UNION ALL SELECT 'c', deployment_id, HEX(change_ref), '', '' "
                               "FROM deployment_changes UNION ALL SELECT 'r', id, HEX(source), "
                               "HEX(source_event_id), event_type FROM dora_rejected_events ORDER BY 1, 2, 3").stdout


def test_live_schema_compares_ids_exactly(host):
    got = collations(host, "iact")
    assert {key: got[key] for key in ID_COLUMNS} == dict.fromkeys(ID_COLUMNS, EXACT)
    # Everything else keeps the database's collation.
    assert got[("deployments", "service")] == "utf8mb4_unicode_ci"
    assert sql(host, "iact", "SELECT name FROM schema_migrations WHERE version = 13").stdout.strip() == \
        "0013_dora_exact_ids.sql"


def test_migration_keeps_every_existing_row_and_runs_once(host):
    database = f"iact_it_mig_{uuid.uuid4().hex[:8]}"
    with host.sudo():
        tmp = host.run("mktemp -d").stdout.strip()
    try:
        with host.sudo():
            copied = host.run(f"cp {MIGRATIONS}/000[0-9]_*.sql {MIGRATIONS}/001[0-2]_*.sql {tmp}/")
        assert copied.rc == 0, copied.stderr
        sql(host, "mysql", f"CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        assert migrate(host, tmp, database)["applied"][-1] == "0012_dr_drills.sql"
        # The rows the old collation produced: `deploy-a` merged into `Deploy-A` (2 rows affected: an
        # update in place), the accented and the zero-width ids likewise; one id with a trailing space.
        upsert = ("INSERT INTO deployments (source, source_event_id, service, status, finished_at) "
                  "VALUES ('s', {}, 'svc', '{}', '2026-01-01') ON DUPLICATE KEY UPDATE status = VALUES(status)")
        for sid, status in (("'Deploy-A'", "success"), ("'deploy-a'", "failed"), (CAFE_ACCENT, "success"),
                            ("'cafe'", "failed"), (ZERO_WIDTH, "success"), ("'zwid'", "failed"),
                            ("'pad '", "success")):
            sql(host, database, upsert.format(sid, status))
        sql(host, database, "INSERT INTO incidents (source, source_event_id, service, started_at, deployment_ref) "
                            "VALUES ('s', 'i1', 'svc', '2026-01-01', 'deploy-a')")
        sql(host, database, "INSERT INTO deployment_changes SELECT id, 'abc' FROM deployments "
                            "WHERE source_event_id = 'Deploy-A'")
        sql(host, database, "INSERT INTO dora_rejected_events (source, payload, payload_sha256, event_type, "
                            "source_event_id, reason) VALUES ('GitHub', '{', REPEAT('a', 64), 'deployment', "
                            "'X-1', 'bad')")
        assert sql(host, database, "SELECT COUNT(*) FROM deployments").stdout.strip() == "4"
        before = dump(host, database)

        with host.sudo():
            copied = host.run(f"cp {MIGRATIONS}/0013_dora_exact_ids.sql {tmp}/")
        assert copied.rc == 0, copied.stderr
        first = migrate(host, tmp, database)
        assert first["applied"] == ["0013_dora_exact_ids.sql"]
        assert dump(host, database) == before  # no row changed, none removed
        got = collations(host, database)
        assert {key: got[key] for key in ID_COLUMNS} == dict.fromkeys(ID_COLUMNS, EXACT)

        second = migrate(host, tmp, database)
        assert (second["changed"], second["applied"]) == (False, [])
        assert dump(host, database) == before

        # What the old key merged can now be stored apart; lookups are exact (no padding either).
        for sid in ("'deploy-a'", "'cafe'", "'zwid'", "'pad'"):
            sql(host, database, upsert.format(sid, "success"))
        assert sql(host, database, "SELECT COUNT(*) FROM deployments").stdout.strip() == "8"
        assert sql(host, database, "SELECT COUNT(*) FROM deployments WHERE source_event_id = 'DEPLOY-A'"
                   ).stdout.strip() == "0"
    finally:
        sql(host, "mysql", f"DROP DATABASE IF EXISTS {database}", check=False)
        with host.sudo():
            host.run("rm -rf %s", tmp)
