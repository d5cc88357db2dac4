"""Security of the Cassandra cluster (issue 14), on every node of the inventory's `cassandra` group.

TLS: plain CQL is refused, a client trusting another CA is refused, a node's certificate names its address
(a client asking for another name is refused), nodes talk TLS only and demand each other's certificate.
JMX: nodetool without the login is refused, the health agent's account may run only the read-only commands
through sudo.

Secrets are read from the nodes themselves (root's cqlshrc, the JMX password file), never handed to the tests.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import socket
import ssl

import pytest
import yaml
from cassandra.cluster import NoHostAvailable
from cassandra_testlib import Node, connect, verifying_context
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CONF = "/etc/cassandra/cassandra.yaml"
JMX_PASSWORD = "/etc/cassandra/jmxremote.password"


def other_ca_pem() -> str:
    """A CA that signed none of the nodes' certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the iact CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def tls_handshake(address: str, port: int, context: ssl.SSLContext, server_hostname: str) -> bytes:
    """A TLS handshake (and one read, which is where a TLS 1.3 server reports a missing client certificate)."""
    with socket.create_connection((address, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=server_hostname) as tls:
        tls.settimeout(5)
        try:
            return tls.recv(1)
        except TimeoutError:
            return b"(no answer)"


# --- TLS to clients -----------------------------------------------------------------------------------
def test_clients_must_use_tls(nodes: list[Node]) -> None:
    for node in nodes:
        conf = yaml.safe_load(node.host.file(CONF).content_string)["client_encryption_options"]
        assert conf["enabled"] is True and conf["optional"] is False, (node.name, conf)
        assert node.tls is not None, f"root's cqlshrc on {node.name} does not use TLS"


def test_plaintext_cql_is_refused(nodes: list[Node], admin_login: tuple[str, str]) -> None:
    for node in nodes:
        with pytest.raises(NoHostAvailable):
            cluster, _ = connect(node, *admin_login, tls=None)
            cluster.shutdown()


def test_a_client_trusting_another_ca_is_refused(nodes: list[Node], admin_login: tuple[str, str]) -> None:
    with pytest.raises(NoHostAvailable) as info:
        cluster, _ = connect(nodes[0], *admin_login, tls=verifying_context(other_ca_pem()))
        cluster.shutdown()
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value), info.value


def test_node_certificates_name_their_address_and_are_checked(nodes: list[Node], admin_login: tuple[str, str]) -> None:
    for node in nodes:
        assert node.tls is not None
        cluster, session = connect(node, *admin_login)  # TLS, certificate and address verified
        try:
            assert session.execute("SELECT release_version FROM system.local").one()
        finally:
            cluster.shutdown()
        with pytest.raises(ssl.SSLCertVerificationError, match=r"match|mismatch"):
            tls_handshake(node.address, node.port, node.tls, "not-this-node.invalid")


# --- TLS between nodes ----------------------------------------------------------------------------
def test_nodes_talk_tls_only_and_prove_themselves(nodes: list[Node]) -> None:
    for node in nodes:
        conf = yaml.safe_load(node.host.file(CONF).content_string)
        server = conf["server_encryption_options"]
        assert server["internode_encryption"] == "all" and server["optional"] is False, (node.name, server)
        assert server["require_client_auth"] is True and server["require_endpoint_verification"] is True
        assert node.tls is not None
        # A peer without a certificate of the CA gets nothing from the storage port.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            answer = tls_handshake(node.address, int(conf.get("storage_port", 7000)), node.tls, node.address)
            if answer in (b"", b"(no answer)"):
                raise ConnectionError(f"closed: {answer!r}")
            pytest.fail(f"{node.name}'s storage port talked to a peer without a certificate: {answer!r}")


# --- JMX ----------------------------------------------------------------------------------------------
def test_nodetool_without_the_jmx_login_is_refused(nodes: list[Node]) -> None:
    node = nodes[0]
    password_file = node.host.file(JMX_PASSWORD)
    assert (password_file.user, password_file.mode) == ("cassandra", 0o400)
    secret = password_file.content_string.split()[-1]
    wrapper = node.host.file("/usr/local/bin/nodetool").content_string
    assert "-pwf " + JMX_PASSWORD in wrapper and secret not in wrapper

    # The same java command without -u/-pwf, as root: JMX refuses it.
    bare = [*re.sub(r"\s-u\s+\S+", "", wrapper.replace(f" -pwf {JMX_PASSWORD}", "")).split("\n"), ""]
    assert f"-pwf {JMX_PASSWORD}" not in "\n".join(bare) and '"$@"' in "\n".join(bare)
    script = "/root/itest-nodetool-bare"
    node.host.check_output(f"printf %s {shlex.quote(chr(10).join(bare))} > {script} && chmod 0700 {script}")
    try:
        run = node.host.run(f"{script} status")
    finally:
        node.host.run(f"rm -f {script}")
    assert run.rc != 0, run.stdout
    assert "credentials" in (run.stdout + run.stderr).lower() or "authentication" in (run.stdout + run.stderr).lower()

    # An unprivileged account (the agents' iact) cannot read the login, so the wrapper fails for it too.
    as_iact = node.host.run("runuser -u iact -- /usr/local/bin/nodetool status")
    assert as_iact.rc != 0 and "UN " not in as_iact.stdout

    # Through sudo it may run exactly the read-only commands, as cassandra; nothing else.
    allowed = node.host.run("runuser -u iact -- sudo -n -u cassandra /usr/local/bin/nodetool status")
    assert allowed.rc == 0 and "UN " in allowed.stdout, allowed.stderr
    for command in ("drain", "stopdaemon", "decommission", "status --help"):
        refused = node.host.run(f"runuser -u iact -- sudo -n -u cassandra /usr/local/bin/nodetool {command}")
        assert refused.rc != 0 and "sudo" in refused.stderr, (command, refused.stdout, refused.stderr)
    assert node.host.run("runuser -u iact -- sudo -n /usr/local/bin/nodetool status").rc != 0  # not as root
