"""RNF-002 guard: nothing in the repository installs or configures a forbidden component."""

from pathlib import Path

import pytest
from rnf002 import candidate_files, violations


def test_repository_has_no_forbidden_component(root: Path) -> None:
    found = violations(candidate_files(root), root)
    assert not found, "RNF-002 forbids Redis, Prometheus, Grafana, Celery and SMTP relays:\n" + "\n".join(found)


def test_scanner_sees_the_roles_and_requirements(root: Path) -> None:
    files = {p.relative_to(root).as_posix() for p in candidate_files(root)}
    assert "requirements.txt" in files
    assert any(f.startswith("roles/") for f in files)


def test_scanner_sees_the_web_layer(root: Path) -> None:
    """The web role (nginx, gunicorn, cron, settings), its playbook and inventory group are scanned, and so is
    the iact-web package with its runtime pins once it exists."""
    files = {p.relative_to(root).as_posix() for p in candidate_files(root)}
    for expected in (
        "roles/web/tasks/main.yml",
        "roles/web/templates/etc/nginx/conf.d/iact-web.conf.j2",
        "roles/web/templates/etc/iact/web.toml.j2",
        "roles/web/templates/etc/systemd/system/iact-web.service.j2",
        "playbooks/web.yml",
        "inventory/lab/group_vars/web/web.yml",
    ):
        assert expected in files, expected
    if (root / "web" / "pyproject.toml").is_file():
        assert "web/pyproject.toml" in files
        assert "web/requirements-runtime.txt" in files
        assert any(f.startswith("web/iact_web/") and f.endswith("settings.py") for f in files)


@pytest.mark.parametrize(
    "line",
    [
        "    name: redis-server",
        "  - prometheus-node-exporter",
        "grafana_version: 10.4",
        "celery==5.4.0",
        "relayhost = [smtp.example.com]:587",
        "dc_smarthost='mail.example.com::587'",
        "server = smtplib.SMTP('mail.example.com', 587)",
        "smtp_host: mail.example.com",
        "  - memcached",
        "pymemcache==4.0.0",
        '"BACKEND": "django.core.cache.backends.redis.RedisCache",',
        '"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",',
        "django-redis==5.4.0",
    ],
)
def test_scanner_catches_forbidden_lines(tmp_path: Path, line: str) -> None:
    bad = tmp_path / "roles" / "x" / "tasks" / "main.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(line + "\n")
    assert violations(candidate_files(tmp_path), tmp_path)


@pytest.mark.parametrize(
    "line",
    [
        "smtp_host: localhost",
        "server = smtplib.SMTP('localhost')",
        "relay_domains =",
        "name: mariadb-server",
        '"BACKEND": "django.core.cache.backends.locmem.LocMemCache",',
        '"BACKEND": "django.core.cache.backends.db.DatabaseCache",',
        "SESSION_ENGINE = \"django.contrib.sessions.backends.db\"",
    ],
)
def test_scanner_allows_local_delivery(tmp_path: Path, line: str) -> None:
    ok = tmp_path / "roles" / "x" / "tasks" / "main.yml"
    ok.parent.mkdir(parents=True)
    ok.write_text(line + "\n")
    assert not violations(candidate_files(tmp_path), tmp_path)
