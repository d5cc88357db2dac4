"""One owner per table: project SQL migrations for the shared tables and this app's own (models unmanaged),
Django's migrations for Django's own tables, and iact_app's grants to match."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.apps import apps

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = ROOT / "roles/mysql/files/migrations"
PROJECT_APPS = {"iact_core", "iact_dora", "iact_ops", "iact_logs", "iact_api"}


def _app_grants() -> dict[str, str]:
    users = yaml.safe_load((ROOT / "roles/mysql/vars/main.yml").read_text())["__mysql_users"]
    app = next(u for u in users if u["user"] == "iact_app")
    return {table: privs.upper() for table, privs in app["priv"].items()}


def _sql_tables() -> set[str]:
    text = "\n".join(p.read_text() for p in sorted(MIGRATIONS.glob("*.sql")))
    return set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", text))


def test_this_projects_models_are_unmanaged_and_their_tables_come_from_sql_migrations() -> None:
    sql = _sql_tables()
    grants = _app_grants()
    for model in apps.get_models():
        if model._meta.app_label in PROJECT_APPS:
            assert not model._meta.managed, f"{model.__name__} must be unmanaged (its table is a project migration's)"
            assert model._meta.db_table in sql, f"{model._meta.db_table} is created by no SQL migration"
            assert model._meta.db_table in grants, f"iact_app has no grant on {model._meta.db_table}"
            assert "CREATE" not in grants[model._meta.db_table], f"iact_app must not create {model._meta.db_table}"
        for app_label in PROJECT_APPS:
            package = Path(apps.get_app_config(app_label).path)
            assert not (package / "migrations").exists(), f"{app_label} must have no Django migrations"


def test_djangos_own_tables_are_exactly_the_ones_iact_app_may_create() -> None:
    managed = {m._meta.db_table for m in apps.get_models(include_auto_created=True) if m._meta.managed}
    managed.add("django_migrations")
    creatable = {t for t, p in _app_grants().items() if "CREATE" in p.split(",")}
    # django_session is Django's model but migration 0004's table (iact-web migrate records it as applied).
    assert "django_session" in _sql_tables()
    assert managed - {"django_session"} == creatable
    assert not creatable & _sql_tables()


def test_iact_app_can_change_nothing_the_agents_own_except_an_alerts_status() -> None:
    grants = _app_grants()
    agents_tables = {"deployments", "changes", "incidents", "deployment_changes", "dora_metrics",
                     "dora_rejected_events", "health_checks", "alert_notifications", "quality_results", "dr_drills",
                     "audit_runs", "audit_results", "remediations"}
    for table in agents_tables:
        assert grants[table] == "SELECT", table
    assert grants["alerts"] == "SELECT,UPDATE (STATUS)"
    assert grants["web_audit_log"] == "SELECT,INSERT"  # the audit trail is append-only
