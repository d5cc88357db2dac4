"""TLS of the Cassandra clients (``CqlClient.ssl_context`` / ``verifying_context``), against a real TLS server
on loopback: the CA and the server's name are both checked, and a bad CA file is a config error naming it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from iact_agents.collector.config import CassandraSettings as CollectorCassandra
from iact_agents.collector.records import Record
from iact_agents.collector.sink import CassandraSink
from iact_agents.config import verifying_context
from iact_agents.errors import ConfigError
from iact_agents.health.config import CassandraSettings as HealthCassandra
from iact_agents.health.cql import cql_login_check
from iact_agents.health.models import Status

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(tmp: Path, label: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(label)).issuer_name(_name(label))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp / f"{label}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS server on 127.0.0.1 whose certificate (signed by the CA at the returned path) names only 127.0.0.1."""
    ca_key, ca_cert, ca_path = make_ca(tmp_path, "test-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("node")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = tmp_path / "node.pem"
    chain.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)  # the loop notices stop
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with server_ctx.wrap_socket(raw, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, ca_path
    stop.set()
    thread.join(timeout=10)
    listener.close()


def handshake(port: int, context: ssl.SSLContext, name: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=name) as tls:
        return tls.recv(2)


def test_the_right_ca_and_address_connect(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    context = CollectorCassandra(ssl_ca_file=ca).ssl_context()
    assert context is not None and context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED
    assert handshake(port, context, "127.0.0.1") == b"ok"


def test_another_ca_is_refused(tls_server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = tls_server
    _, _, other = make_ca(tmp_path, "other-ca")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(port, verifying_context(other), "127.0.0.1")


def test_a_name_the_certificate_does_not_carry_is_refused(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        handshake(port, verifying_context(ca), "not-this-node.invalid")


def test_without_a_ca_file_the_client_speaks_plain_cql() -> None:
    assert CollectorCassandra().ssl_context() is None


@pytest.mark.parametrize(("content", "message"), [
    (None, "CA certificate not found"),
    (b"not a certificate\n", "not a CA certificate in PEM"),
    (b"", "not a CA certificate in PEM"),
    ("dir", "CA certificate cannot be read"),
])
def test_a_bad_ca_file_is_a_config_error_naming_it(tmp_path: Path, content: bytes | str | None,
                                                   message: str) -> None:
    path = tmp_path / "ca.crt"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        verifying_context(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_health_cql_check_with_a_missing_ca_is_critical_not_a_crash(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    secret.chmod(0o600)
    cfg = HealthCassandra(username="reader", password_file=secret, ssl_ca_file=tmp_path / "none.crt")
    result = cql_login_check(cfg, "h")
    assert result.status is Status.CRITICAL and "CA certificate not found" in result.summary


def test_collector_sink_stops_with_a_config_error_when_no_node_is_trusted(tls_server: tuple[int, Path],
                                                                          tmp_path: Path) -> None:
    """The real driver against a TLS server whose CA the collector does not trust: not retried forever, a
    ConfigError naming cassandra.ssl_ca_file (the collector exits 2)."""
    port, _ = tls_server
    _, _, other = make_ca(tmp_path, "other-ca")
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    secret.chmod(0o600)
    settings = CollectorCassandra(contact_points=["127.0.0.1"], port=port, username="collector",
                                  password_file=secret, ssl_ca_file=other, connect_timeout_s=5)
    sink = CassandraSink(settings, host="h", store_raw=False, retry_initial_s=0.01, retry_max_s=0.02,
                         should_stop=lambda: sink.retries >= 3, drain_deadline=lambda: 0.0)
    rec = Record(source="s", position="p", ts=dt.datetime.now(dt.UTC), message="m", raw="m")
    with pytest.raises(ConfigError, match=r"cassandra\.ssl_ca_file: no node.s certificate is trusted"):
        sink.write([rec])
    assert sink.retries == 0
    sink.close()
