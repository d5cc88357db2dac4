"""MariaDB requires TLS on TCP (issue 14), seen from a remote client: the controller, with the agents' option
file that molecule/default/verify.yml writes like roles/mysql does (``ssl-ca`` + ``ssl-verify-server-cert``).

The same account and password log in over verified TLS, are refused over plain text (require_secure_transport)
and are refused by a client that trusts another CA (the server's certificate is checked, not just encrypted).
"""

from __future__ import annotations

import os
from pathlib import Path

import pymysql
import pytest

# Debian's bundle of public CAs, none of which signed the lab's certificates.
OTHER_CA = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="module")
def defaults() -> str:
    value = os.environ.get("IACT_TEST_MYSQL_DEFAULTS", "")
    if not value:
        pytest.skip("IACT_TEST_MYSQL_DEFAULTS is not set (MySQL option file of a user with the iact_health grants)")
    return value


def connect(defaults: str, **options: object) -> pymysql.Connection:
    return pymysql.connect(read_default_file=defaults, connect_timeout=10, **options)


def test_the_agents_option_file_logs_in_over_verified_tls(defaults: str) -> None:
    text = Path(defaults).read_text(encoding="utf-8")
    assert "ssl-ca" in text and "ssl-verify-server-cert" in text, "the option file does not ask for verified TLS"
    conn = connect(defaults)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            row = cur.fetchone()
    finally:
        conn.close()
    assert row is not None and str(row[1]).startswith("TLSv1."), row


def test_a_plaintext_login_is_refused(defaults: str) -> None:
    with pytest.raises(pymysql.err.OperationalError) as info:
        connect(defaults, ssl_disabled=True).close()
    # MariaDB 10.11 answers "Access denied" (MDEV-30178 gave it its own message later): the login above, with
    # the same account and password over TLS, is what shows that the transport is the reason.
    message = str(info.value)
    assert "insecure transport" in message or "Access denied" in message, message


def test_a_client_trusting_another_ca_is_refused(defaults: str) -> None:
    if not OTHER_CA.is_file():
        pytest.fail(f"{OTHER_CA} is missing: install Debian's ca-certificates on the controller")
    with pytest.raises(pymysql.err.OperationalError) as info:
        connect(defaults, ssl_ca=str(OTHER_CA), ssl_verify_cert=True, ssl_verify_identity=True).close()
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value), info.value
