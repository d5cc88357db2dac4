"""Deployed settings: DEBUG off, no cache server (RNF-002), sessions in MySQL, `check --deploy` clean."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pymysql.connections
import pymysql.converters
import pymysql.err
from django.conf import settings


def test_no_cache_server_and_sessions_in_the_database() -> None:
    backends = {c["BACKEND"] for c in settings.CACHES.values()}
    assert backends == {"django.core.cache.backends.locmem.LocMemCache"}
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"
    assert not any("celery" in app or "channels" in app for app in settings.INSTALLED_APPS)
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == []
    assert settings.DEBUG is False
    assert "django.contrib.auth.middleware.LoginRequiredMiddleware" in settings.MIDDLEWARE
    assert settings.CSRF_COOKIE_HTTPONLY and settings.SESSION_COOKIE_HTTPONLY


def test_check_deploy_is_clean_with_the_default_configuration(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(secrets.token_urlsafe(64))
    key.chmod(0o600)
    config = tmp_path / "web.toml"
    config.write_text(f'[server]\nallowed_hosts = ["web1.example.org"]\nsecret_key_file = "{key}"\n'
                      f'[logging]\nfile = ""\n')
    env = {**os.environ, "IACT_WEB_CONFIG": str(config)}
    done = subprocess.run([sys.executable, "-m", "iact_web.cli", "check", "--deploy", "--fail-level", "WARNING"],
                          env=env, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_a_configuration_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "web.toml"
    config.write_text("[server]\ndebug = maybe\n")
    env = {**os.environ, "IACT_WEB_CONFIG": str(config)}
    done = subprocess.run([sys.executable, "-m", "iact_web.cli", "check"], env=env, capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("iact-web: configuration error:") and "Traceback" not in done.stderr


def test_one_copy_of_pymysql_under_django() -> None:
    """The agents' code run inside the app catches PyMySQL's errors by ``pymysql.err.*``: Django's import of
    ``MySQLdb.*`` must not have made a second ``err`` module (iact_web/mysqldb.py)."""
    assert pymysql.connections.err is pymysql.err
    assert sys.modules["MySQLdb.err"] is pymysql.err and sys.modules["MySQLdb.converters"] is pymysql.converters
