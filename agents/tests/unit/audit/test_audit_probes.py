"""The network probes against real local servers: a CQL listener replaying the frames a Cassandra 5.0.8 node
sent (captured on the lab), a plain TCP listener, TLS listeners with a certificate made here, and an HTTPS
server. No mock: the probes' sockets, TLS and HTTP code run as they do against the lab."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from audit_support import FIXTURES, Tree, facts_for
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from iact_agents.audit import cassandra, web
from iact_agents.audit.facts import FactUnavailable

SUPPORTED = (FIXTURES / "cql_supported.bin").read_bytes()
AUTHENTICATE = (FIXTURES / "cql_authenticate.bin").read_bytes()


def _serve(handler: Callable[[socket.socket], None], context: ssl.SSLContext | None = None) -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def loop() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            try:
                if context is not None:
                    conn = context.wrap_socket(conn, server_side=True)
                handler(conn)
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _cql_node(conn: socket.socket) -> None:
    """Answers OPTIONS with the captured SUPPORTED frame and STARTUP with the captured AUTHENTICATE frame."""
    conn.settimeout(5)
    for _ in range(2):
        header = conn.recv(9)
        if len(header) < 9:
            return
        length = int.from_bytes(header[5:9], "big")
        if length:
            conn.recv(length)
        conn.sendall(SUPPORTED if header[4] == cassandra.OP_OPTIONS else AUTHENTICATE)


def _closes(conn: socket.socket) -> None:
    conn.recv(64)


def _http_like(conn: socket.socket) -> None:
    conn.recv(64)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for ``site.test`` and ``127.0.0.1`` and its key (PEM files)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "site.test")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress  # noqa: PLC0415

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("site.test"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    return ctx


def test_a_node_that_speaks_cql_in_plaintext_and_asks_for_authentication() -> None:
    for port in _serve(_cql_node):
        answers = cassandra.probe("127.0.0.1", port, [cassandra._OPTIONS, cassandra._STARTUP], 5)
    assert [a.opcode for a in answers] == [cassandra.OP_SUPPORTED, cassandra.OP_AUTHENTICATE]
    assert answers[1].authenticator == "org.apache.cassandra.auth.PasswordAuthenticator"


def test_a_listener_that_closes_or_answers_something_else() -> None:
    for port in _serve(_closes):
        [closed] = cassandra.probe("127.0.0.1", port, [cassandra._OPTIONS], 5)
    assert closed.opcode is None and closed.note == "the connection was closed without an answer"
    for port in _serve(_http_like):
        [other] = cassandra.probe("127.0.0.1", port, [cassandra._OPTIONS], 5)
    assert other.opcode is None and "not a CQL" in other.note
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    [refused] = cassandra.probe("127.0.0.1", port, [cassandra._OPTIONS], 2)
    assert refused.opcode is None and "cannot connect" in refused.note


def test_tls_is_told_apart_from_plaintext(certificate: tuple[Path, Path]) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    for port in _serve(_http_like):
        spoken, note = cassandra.tls_handshake("127.0.0.1", port, 5, trusting)
    assert not spoken and note.startswith("no TLS"), note
    for port in _serve(_cql_node, _server_context(certificate)):
        spoken, note = cassandra.tls_handshake("127.0.0.1", port, 5, trusting)
        answers = cassandra.probe("127.0.0.1", port, [cassandra._OPTIONS], 5, context=trusting)
    assert spoken and note.startswith("TLS handshake completed"), note
    assert answers[0].opcode == cassandra.OP_SUPPORTED
    for port in _serve(_cql_node, _server_context(certificate)):
        spoken, note = cassandra.tls_handshake("127.0.0.1", port, 5, ssl.create_default_context())
    assert spoken and "does not verify" in note, note


class _Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"host={self.headers['Host']} path={self.path}".encode()
        self.send_response(200)
        self.send_header("Set-Cookie", "a=1; Secure")
        self.send_header("Set-Cookie", "b=2; Secure; HttpOnly")
        self.send_header("X-Frame-Options", "DENY")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_https_requests_reach_the_local_front_end_with_the_site_name(certificate: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.socket = _server_context(certificate).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        pinned = facts_for(Tree(tmp_path), web={"url": f"https://site.test:{port}/",
                                                 "trust_file": str(certificate[0])})
        resp = web.request(pinned, "GET", "/login/?next=x")
        assert resp.status == 200 and resp.body == f"host=site.test:{port} path=/login/?next=x"
        assert resp.cookies() == ["a=1; Secure", "b=2; Secure; HttpOnly"]
        assert resp.header("x-frame-options") == "DENY"
        untrusted = facts_for(Tree(tmp_path), web={"url": f"https://site.test:{port}/"})
        with pytest.raises(FactUnavailable, match="TLS failed"):
            web.request(untrusted, "GET", "/")
        wrong_name = facts_for(Tree(tmp_path), web={"url": f"https://other.test:{port}/",
                                                     "trust_file": str(certificate[0])})
        with pytest.raises(FactUnavailable, match="TLS failed"):
            web.request(wrong_name, "GET", "/")
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(FactUnavailable, match="is not an https:// URL"):
        web.request(facts_for(Tree(tmp_path), web={"url": "http://site.test/"}), "GET", "/")
