"""Django settings, built from the one typed configuration (:mod:`iact_web.config`); nothing else is read.

Schema ownership (README.md, "Who owns which table"): the project's SQL migrations (roles/mysql) own every
table the stack shares, ``django_session`` and this app's own tables (``web_*``, ``alert_acknowledgements``);
the models over them are unmanaged. Django's migrations own only Django's own tables (auth, contenttypes,
admin, ``django_migrations``), applied by ``iact-web migrate``: the account ``iact_app`` has DDL on exactly
those tables and DML (or SELECT) on the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from iact_agents.errors import ConfigError

from . import config as _config
from . import mysqldb
from .jsonlog import logging_config

mysqldb.install()  # Django's MySQL backend over PyMySQL (no compiler, no libmariadb-dev), one copy of it

try:
    CONFIG = _config.load()
    SECRET_KEY = CONFIG.server.secret_key().get_secret_value()
except ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None

_server = CONFIG.server

DEBUG = _server.debug
ALLOWED_HOSTS = list(_server.allowed_hosts)
CSRF_TRUSTED_ORIGINS = list(_server.csrf_trusted_origins)

INSTALLED_APPS = [
    # First: its management commands (migrate) take precedence over Django's.
    "iact_web.core",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "iact_web.dora",
    "iact_web.ops",
    "iact_web.logs",
    "iact_web.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "iact_web.core.middleware.RequestLogMiddleware",
    "iact_web.core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "iact_web.core.middleware.ApiClientMiddleware",
    "iact_web.core.middleware.RateLimitMiddleware",
    "iact_web.api.versions.ApiVersionMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "iact_web.urls"
WSGI_APPLICATION = "iact_web.wsgi.application"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dora:dashboard"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [str(Path(__file__).resolve().parent / "templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "iact_web.core.context.site",
            ],
        },
    },
]


def _mysql(defaults_file: str) -> dict[str, Any]:
    # NAME, USER, PASSWORD, HOST and PORT stay empty: PyMySQL reads them (and ssl-ca) from the option file,
    # so the credentials exist in one place, written by the mysql role.
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "",
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "read_default_file": defaults_file,
            "read_default_group": "client",
            "charset": "utf8mb4",
            "connect_timeout": CONFIG.mysql.connect_timeout_s,
            "isolation_level": "read committed",
        },
        "TEST": {"MIGRATE": False},
    }


DATABASES = {"default": _mysql(str(CONFIG.mysql.defaults_file))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# RNF-002: no cache server. Per-process memory only (used for nothing shared: the rate limiter counts in
# MariaDB, sessions live in MariaDB).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "iact-web"}}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = _server.session_age_s
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _server.secure_cookies
SESSION_COOKIE_NAME = "iact_session"
CSRF_COOKIE_SECURE = _server.secure_cookies
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_NAME = "iact_csrftoken"
CSRF_FAILURE_VIEW = "iact_web.core.views.csrf_failure"

SECURE_SSL_REDIRECT = _server.secure_cookies
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # liveness probes may come straight to the socket, without TLS
SECURE_HSTS_SECONDS = _server.hsts_seconds if _server.secure_cookies else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = _server.hsts_include_subdomains
SECURE_HSTS_PRELOAD = _server.hsts_preload
# W021 (no HSTS preload) is a decision for the domain's owner, not this app: [server] hsts_preload.
SILENCED_SYSTEM_CHECKS = [] if _server.hsts_preload else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if _server.behind_proxy:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = _server.static_url
STATIC_ROOT = str(_server.static_root)
# The project's own files (CSS, JS, the vendored Chart.js) live in the package, not in an app.
STATICFILES_DIRS = [str(Path(__file__).resolve().parent / "static")]

DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024  # the API takes small JSON bodies only
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "iact_web.core.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "ALLOWED_VERSIONS": list(_config.API_VERSIONS),
    "DEFAULT_THROTTLE_CLASSES": [],  # the limiter is iact_web.core.ratelimit, counted in MariaDB
    "EXCEPTION_HANDLER": "iact_web.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

LOGGING = logging_config(CONFIG.logging, debug=DEBUG)
