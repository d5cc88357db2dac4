"""Settings for the web tests: one configuration per pytest process, written before Django starts.

Unit tests (``web/tests/unit``) need no service. Integration tests (``web/tests/integration``) use the real
MariaDB (and Cassandra for the log search) given by the same environment variables as the agents' suites
(molecule/default/verify.yml sets them):

``IACT_TEST_MYSQL_DEFAULTS_DIR``              folder with ``mysql-app.cnf`` (iact_app: what the web app
                                              uses), ``mysql-dora.cnf`` and ``mysql-health.cnf`` (the
                                              tests write their own events, alerts and results with the
                                              agents' accounts and remove them afterwards)
``IACT_TEST_CASSANDRA_HOSTS``                 contact points (comma-separated)
``IACT_TEST_CASSANDRA_DC``                    local data center (default dc1)
``IACT_TEST_CASSANDRA_READER_PASSWORD_FILE``  password of the ``reader`` role (what the web app uses)
``IACT_TEST_CASSANDRA_CA``                    CA certificate of the nodes (TLS, certificate and address verified)
``IACT_TEST_CASSANDRA_USER`` / ``..._PASSWORD_FILE``  a role that may write (the tests write their lines)

Without them the integration tests skip, saying which variable is missing. The configuration sets high
default rate limits (the suite makes thousands of requests from one address); the rate-limit tests set
their own. DEBUG stays off, as deployed.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="iact-web-tests."))
atexit.register(shutil.rmtree, _TMP, True)


def _write_config() -> Path:
    key = _TMP / "secret-key"
    key.write_text(secrets.token_urlsafe(64))
    key.chmod(0o600)
    defaults_dir = os.environ.get("IACT_TEST_MYSQL_DEFAULTS_DIR", "")
    mysql_cnf = Path(defaults_dir) / "mysql-app.cnf" if defaults_dir else _TMP / "no-mysql-app.cnf"
    hosts = [h.strip() for h in os.environ.get("IACT_TEST_CASSANDRA_HOSTS", "127.0.0.1").split(",") if h.strip()]
    reader_file = os.environ.get("IACT_TEST_CASSANDRA_READER_PASSWORD_FILE", str(_TMP / "no-reader.password"))
    dora = _TMP / "dora.toml"
    dora.write_text("[metrics]\nwindows = [30, 90]\n")
    config = _TMP / "web.toml"
    config.write_text(
        "[server]\n"
        'allowed_hosts = ["testserver", "localhost", "127.0.0.1"]\n'
        f'secret_key_file = "{key}"\n'
        "behind_proxy = false\n"
        "secure_cookies = false\n"
        f'static_root = "{_TMP / "static"}"\n'
        "[mysql]\n"
        f'defaults_file = "{mysql_cnf}"\n'
        "[logs]\n"
        f"contact_points = {hosts!r}\n".replace("'", '"')
        + f'local_dc = "{os.environ.get("IACT_TEST_CASSANDRA_DC", "dc1")}"\n'
        f'password_file = "{reader_file}"\n'
        + (f'ssl_ca_file = "{ca}"\n' if (ca := os.environ.get("IACT_TEST_CASSANDRA_CA")) else "")
        + "[dora]\n"
        f'config_file = "{dora}"\n'
        "[ratelimit]\n"
        "burst_limit = 1000000\n"
        "sustained_limit = 10000000\n"
        "[logging]\n"
        f'file = "{_TMP / "web-app.json.log"}"\n'
        "access_log = false\n",
        encoding="utf-8",
    )
    return config


TEST_CONFIG = _write_config()
os.environ["IACT_WEB_CONFIG"] = str(TEST_CONFIG)
os.environ["DJANGO_SETTINGS_MODULE"] = "iact_web.settings"

import django  # noqa: E402  (after the environment that configures it)

django.setup()
