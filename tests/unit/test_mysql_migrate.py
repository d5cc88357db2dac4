"""Unit tests of the migration runner's pure parts (no server needed; run with plain pytest too)."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/mysql/files/usr/local/lib/iact/mysql-migrate"
MIGRATIONS = Path(__file__).resolve().parents[2] / "roles/mysql/files/migrations"


def load():
    loader = importlib.machinery.SourceFileLoader("mysql_migrate", str(SCRIPT))
    spec = importlib.util.spec_from_loader("mysql_migrate", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


mm = load()


def test_split_simple_and_trailing_statement():
    assert mm.split_statements("SELECT 1; SELECT 2") == ["SELECT 1", "SELECT 2"]


def test_split_ignores_semicolons_in_quotes_and_comments():
    sql = (
        "-- a comment; with a semicolon\n"
        "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s; fine', 'back\\\\slash;');\n"
        "# hash comment;\n"
        "/* block; comment */ CREATE TABLE `we;ird` (id INT) COMMENT 'x -- y';\n"
        ";;\n"
    )
    assert mm.split_statements(sql) == [
        "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s; fine', 'back\\\\slash;')",
        "CREATE TABLE `we;ird` (id INT) COMMENT 'x -- y'",
    ]


def test_split_keeps_double_dash_without_space():
    assert mm.split_statements("SELECT 5--1;") == ["SELECT 5--1"]


def test_split_unterminated_quote_fails():
    with pytest.raises(mm.MigrationError):
        mm.split_statements("SELECT 'oops;")


def test_discover_sorts_and_checksums(tmp_path):
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "README").write_text("ignored")
    found = mm.discover(str(tmp_path))
    assert [m["name"] for m in found] == ["0001_first.sql", "0002_second.sql"]
    assert found[0]["checksum"] == hashlib.sha256(b"SELECT 1;").hexdigest()


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql"])
def test_discover_rejects_bad_names(tmp_path, name):
    (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(mm.MigrationError, match=name):
        mm.discover(str(tmp_path))


def test_discover_rejects_duplicate_versions(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(mm.MigrationError, match="0001"):
        mm.discover(str(tmp_path))


def test_plan_returns_only_unapplied(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0002_b.sql").write_text("SELECT 2;")
    found = mm.discover(str(tmp_path))
    applied = {1: ("0001_a.sql", found[0]["checksum"])}
    assert [m["name"] for m in mm.plan(found, applied)] == ["0002_b.sql"]
    assert mm.plan(found, {**applied, 2: ("0002_b.sql", found[1]["checksum"])}) == []


def test_plan_refuses_changed_or_missing_migration(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    found = mm.discover(str(tmp_path))
    with pytest.raises(mm.MigrationError, match="changed after it was applied"):
        mm.plan(found, {1: ("0001_a.sql", "0" * 64)})
    with pytest.raises(mm.MigrationError, match="file is missing"):
        mm.plan(found, {1: ("0001_a.sql", found[0]["checksum"]), 7: ("0007_gone.sql", "0" * 64)})


def test_shipped_migrations_parse():
    found = mm.discover(str(MIGRATIONS))
    versions = [m["version"] for m in found]
    assert versions == sorted(set(versions)), "versions must be unique"
    for migration in found:
        statements = mm.split_statements(str(migration["sql"]))
        assert statements, migration["name"]
        assert all(s.upper().startswith(("CREATE ", "ALTER ", "INSERT ", "UPDATE ")) for s in statements)
