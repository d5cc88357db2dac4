"""Cassandra baseline (CIS Apache Cassandra benchmark), judged on the running node.

Sources, all read-only: the node's process (user, JVM system properties, listening sockets), the configuration
file it was started with (``-Dcassandra.config``; a file changed after the start is judged too, and the
evidence says so: those are the values of the next start), and protocol probes of the native port: a
plaintext OPTIONS frame (answered only when TLS is not required), a TLS handshake, a STARTUP frame (answered
``AUTHENTICATE`` only when authentication is on), a login as the default role with its default password, and
one SELECT as a role that has no privilege on it (refused only when authorization is on).

CIS item numbers are those of the CIS Apache Cassandra 3.11 Benchmark v1.0.0 (the later 4.0 benchmark keeps
the same recommendations).
"""

from __future__ import annotations

import socket
import ssl
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from ..config import read_secret_file
from ..errors import ConfigError
from . import parsers
from .facts import Facts, FactUnavailable
from .host import Process
from .model import Check, Outcome, Scope, Severity, Status, error, failed, passed, verdict
from .parsers import Listener

CIS = "CIS Apache Cassandra 3.11 v1.0.0"
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
DEFAULT_ROLE = "cassandra"
PROBE_STREAM = 1


@dataclass(frozen=True)
class Node:
    process: Process
    properties: dict[str, str]
    config_path: str | None
    config: dict[str, Any]
    config_note: str
    """Empty, or why the configuration is not (only) what the node runs with."""
    listeners: list[Listener] = field(default_factory=list)

    def setting(self, *path: str) -> Any:
        node: Any = self.config
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    @property
    def native_address(self) -> str:
        value = self.setting("rpc_address") or self.setting("listen_address") or "127.0.0.1"
        return str(value)

    @property
    def native_port(self) -> int:
        return _int(self.setting("native_transport_port"), 9042)

    @property
    def storage_port(self) -> int:
        return _int(self.setting("storage_port"), 7000)

    @property
    def listen_address(self) -> str:
        return str(self.setting("listen_address") or self.native_address)

    def source(self) -> str:
        return f"{self.config_path}{' (' + self.config_note + ')' if self.config_note else ''}"


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else default


def _load_config(facts: Facts, proc: Process) -> tuple[str | None, dict[str, Any], str]:
    props = parsers.java_properties(proc.argv)
    url = props.get("cassandra.config", "")
    path = url.removeprefix("file://") if url.startswith(("file://", "/")) else None
    if path is None:
        raise FactUnavailable(f"pid {proc.pid}: no -Dcassandra.config=file://... on its command line")
    text = facts.host.read_text(path)
    if text is None:
        raise FactUnavailable(f"{path}: cannot be read")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FactUnavailable(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise FactUnavailable(f"{path}: not a mapping of settings")
    note = ""
    st, started = facts.host.stat(path), facts.host.started_at(proc)
    if st is not None and started is not None and st.st_mtime > started:
        changed = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
        note = f"changed {changed}, after the node started: these values apply at its next start"
    return path, doc, note


def nodes(facts: Facts) -> list[Node]:
    """The Cassandra processes of this host with their configuration."""

    def gather() -> list[Node]:
        procs = [p for p in facts.host.processes if MAIN_CLASS in p.argv]
        if not procs:
            raise FactUnavailable(f"no Cassandra process ({MAIN_CLASS}) is running")
        found = []
        for proc in procs:
            path, doc, note = _load_config(facts, proc)
            found.append(Node(proc, parsers.java_properties(proc.argv), path, doc, note,
                              facts.host.listeners_of(proc)))
        return found

    return facts.memo("cassandra.nodes", gather)


# --- protocol probes ---------------------------------------------------------------------------------

OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE, OP_OPTIONS, OP_SUPPORTED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06


def _frame(opcode: int, body: bytes = b"") -> bytes:
    """A native protocol v4 request frame."""
    return struct.pack(">BBhBi", 0x04, 0, PROBE_STREAM, opcode, len(body)) + body


def _string_map(values: dict[str, str]) -> bytes:
    out = struct.pack(">H", len(values))
    for k, v in values.items():
        for s in (k, v):
            data = s.encode()
            out += struct.pack(">H", len(data)) + data
    return out


@dataclass(frozen=True)
class Answer:
    """What the node said to one probe frame: an opcode and its body, or None with what happened instead."""

    opcode: int | None
    body: bytes = b""
    note: str = ""

    @property
    def authenticator(self) -> str:
        if self.opcode != OP_AUTHENTICATE or len(self.body) < 2:
            return ""
        size = struct.unpack(">H", self.body[:2])[0]
        return self.body[2:2 + size].decode("utf-8", "replace")


def read_frame(sock: socket.socket) -> Answer:
    header = _recv(sock, 9)
    if len(header) < 9:
        return Answer(None, note="the connection was closed without an answer" if not header
                      else "an answer that is not a CQL frame")
    version, _, _, opcode, length = struct.unpack(">BBhBi", header)
    if version & 0x7F not in (3, 4, 5) or not version & 0x80 or not 0 <= length <= 1 << 20:
        return Answer(None, note="an answer that is not a CQL response frame")
    return Answer(opcode, _recv(sock, length))


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except (ConnectionError, TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


Connector = Callable[[str, int, float, "ssl.SSLContext | None"], socket.socket]


def connect(address: str, port: int, timeout: float, context: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=timeout)
    if context is None:
        return sock
    try:
        return context.wrap_socket(sock, server_hostname=address)
    except BaseException:
        sock.close()
        raise


def probe(address: str, port: int, frames: list[bytes], timeout: float, *, context: ssl.SSLContext | None = None,
          connector: Connector = connect) -> list[Answer]:
    """Send each frame in turn on one connection; an answer per frame (a closed connection ends the list)."""
    try:
        sock = connector(address, port, timeout, context)
    except ssl.SSLError as exc:
        return [Answer(None, note=f"TLS handshake failed: {exc.reason or exc}")]
    except OSError as exc:
        return [Answer(None, note=f"cannot connect to {address}:{port}: {exc.strerror or exc}")]
    answers = []
    with sock:
        for frame in frames:
            try:
                sock.sendall(frame)
            except OSError as exc:
                answers.append(Answer(None, note=f"the connection was closed ({exc.strerror or exc})"))
                break
            answer = read_frame(sock)
            answers.append(answer)
            if answer.opcode is None:
                break
    return answers


def tls_context(facts: Facts) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(facts.cfg.cassandra.ca_file) if facts.cfg.cassandra.ca_file else None)
    ctx.check_hostname = True
    return ctx


def tls_handshake(address: str, port: int, timeout: float, context: ssl.SSLContext,
                  connector: Connector = connect) -> tuple[bool, str]:
    """(the port speaks TLS, what happened). A handshake refused by a TLS alert (a client certificate is
    required) or a certificate that does not verify still proves the port speaks TLS."""
    try:
        sock = connector(address, port, timeout, context)
    except ssl.SSLCertVerificationError as exc:
        return True, f"TLS, but the certificate does not verify: {exc.verify_message}"
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        if "ALERT" in reason.upper():
            return True, f"TLS (the node ended the handshake: {reason})"
        return False, f"no TLS: {reason}"
    except OSError as exc:
        return False, f"cannot connect: {exc.strerror or exc}"
    with sock:
        version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    return True, f"TLS handshake completed ({version})"


_STARTUP = _frame(OP_STARTUP, _string_map({"CQL_VERSION": "3.0.0"}))
_OPTIONS = _frame(OP_OPTIONS)


@dataclass(frozen=True)
class NativeProbe:
    plaintext_answered: bool
    plaintext_note: str
    tls: bool
    tls_note: str
    startup: Answer | None


def native_probe(facts: Facts, node: Node) -> NativeProbe:
    """Plaintext OPTIONS, then a TLS handshake, then STARTUP on whichever connection the node accepts."""

    def gather() -> NativeProbe:
        address, port = node.native_address, node.native_port
        timeout = facts.cfg.cassandra.connect_timeout_s
        plain = probe(address, port, [_OPTIONS, _STARTUP], timeout)
        plain_ok = bool(plain) and plain[0].opcode == OP_SUPPORTED
        tls_ok, tls_note = tls_handshake(address, port, timeout, tls_context(facts))
        startup: Answer | None = plain[1] if plain_ok and len(plain) > 1 else None
        if startup is None and tls_ok:
            answers = probe(address, port, [_STARTUP], timeout, context=tls_context(facts))
            startup = answers[0] if answers else None
        note = "answered in plaintext" if plain_ok else (plain[0].note if plain else "no answer")
        return NativeProbe(plain_ok, note, tls_ok, tls_note, startup)

    return facts.memo(f"cassandra.native.{node.process.pid}", gather)


def storage_tls(facts: Facts, node: Node) -> tuple[bool, str]:
    """Whether the storage (internode) port speaks TLS."""
    return facts.memo(f"cassandra.storage_tls.{node.process.pid}", lambda: tls_handshake(
        node.listen_address, node.storage_port, facts.cfg.cassandra.connect_timeout_s, tls_context(facts)))


def _login(facts: Facts, node: Node, username: str, password: str, *, statement: str | None = None) -> str:
    """Log in with the Python driver (TLS when the node requires it) and run ``statement``; what happened."""
    from cassandra import AuthenticationFailed, Unauthorized  # noqa: PLC0415 - the driver is slow to import
    from cassandra.auth import PlainTextAuthProvider  # noqa: PLC0415
    from cassandra.cluster import Cluster, NoHostAvailable  # noqa: PLC0415
    from cassandra.policies import WhiteListRoundRobinPolicy  # noqa: PLC0415

    tls = not native_probe(facts, node).plaintext_answered
    cluster = Cluster([node.native_address], port=node.native_port, protocol_version=5,
                      auth_provider=PlainTextAuthProvider(username, password),
                      load_balancing_policy=WhiteListRoundRobinPolicy([node.native_address]),
                      ssl_context=tls_context(facts) if tls else None,
                      connect_timeout=facts.cfg.cassandra.connect_timeout_s, control_connection_timeout=None)
    try:
        session = cluster.connect()
        if statement is None:
            return "logged in"
        session.execute(statement, timeout=facts.cfg.cassandra.connect_timeout_s)
        return "logged in; the statement was allowed"
    except NoHostAvailable as exc:
        # errors is a dict {host: error} from most driver paths, a list from some (seen on a restarted node)
        errors = list(exc.errors.values()) if isinstance(exc.errors, dict) else list(exc.errors or [])
        first = errors[0] if errors else exc
        if isinstance(first, AuthenticationFailed):
            return f"refused: {_server_text(first)}"
        raise FactUnavailable(f"cannot log in to {node.native_address}:{node.native_port}: {first}") from None
    except Unauthorized as exc:
        return f"logged in; the statement was refused: {_server_text(exc)}"
    finally:
        cluster.shutdown()


def _server_text(exc: Exception) -> str:
    text = str(exc)
    marker = 'message="'
    return text[text.index(marker) + len(marker):].rstrip('")\'') if marker in text else text


def default_role_login(facts: Facts, node: Node) -> str:
    return facts.memo(f"cassandra.default_login.{node.process.pid}",
                      lambda: _login(facts, node, DEFAULT_ROLE, DEFAULT_ROLE))


def unprivileged_select(facts: Facts, node: Node) -> str | None:
    """A SELECT the configured login role has no privilege for; None when no role is configured."""
    cfg = facts.cfg.cassandra
    if cfg.username is None or cfg.password_file is None:
        return None
    try:
        password = read_secret_file(cfg.password_file).get_secret_value()
    except ConfigError as exc:
        raise FactUnavailable(str(exc)) from None
    username = cfg.username
    return facts.memo(f"cassandra.unprivileged.{node.process.pid}",
                      lambda: _login(facts, node, username, password,
                                     statement="SELECT name FROM system_views.settings LIMIT 1"))


# --- judges ---------------------------------------------------------------------------------------------


def each_node(judge: Callable[[Facts, Node], Outcome]) -> Callable[[Facts], Outcome]:
    """A check judged on every node of the host (one, normally): the worst outcome wins, evidence joined."""

    def run(facts: Facts) -> Outcome:
        outcomes = [judge(facts, node) for node in nodes(facts)]
        if len(outcomes) == 1:
            return outcomes[0]
        findings = [f for o in outcomes for f in o.findings]
        evidence = "; ".join(o.evidence for o in outcomes)
        for status in (Status.FAIL, Status.ERROR):
            if any(o.status is status for o in outcomes):
                return Outcome(status, evidence, tuple(findings))
        return passed(evidence)

    return run


def judge_authentication(facts: Facts, node: Node) -> Outcome:
    configured = str(node.setting("authenticator") or "AllowAllAuthenticator")
    answer = native_probe(facts, node).startup
    findings = []
    if "AllowAll" in configured:
        findings.append(f"authenticator: {configured} ({node.source()})")
    if answer is None:
        return error(f"the node did not answer STARTUP: {native_probe(facts, node).plaintext_note}")
    if answer.opcode == OP_READY:
        findings.append(f"{node.native_address}:{node.native_port} accepted a client without credentials (READY)")
    elif answer.opcode != OP_AUTHENTICATE:
        return error(f"unexpected answer to STARTUP: opcode {answer.opcode}")
    return verdict(findings, f"the node asks every client to authenticate ({answer.authenticator}); "
                   f"authenticator: {configured}", "clients may connect without authenticating")


def judge_authorization(facts: Facts, node: Node) -> Outcome:
    configured = str(node.setting("authorizer") or "AllowAllAuthorizer")
    findings = []
    if "AllowAll" in configured:
        findings.append(f"authorizer: {configured} ({node.source()})")
    seen = unprivileged_select(facts, node)
    if seen is not None and "statement was allowed" in seen:
        findings.append(f"role {facts.cfg.cassandra.username} read system_views.settings without a grant")
    shown = f"; {facts.cfg.cassandra.username}: {seen}" if seen else ""
    return verdict(findings, f"authorizer: {configured}{shown}", "authorization is not enforced")


def judge_default_role(facts: Facts, node: Node) -> Outcome:
    seen = default_role_login(facts, node)
    if seen.startswith("refused"):
        return passed(f"login as '{DEFAULT_ROLE}' with the default password {seen}")
    return failed(f"the default role '{DEFAULT_ROLE}' logged in with its default password", [seen])


def judge_default_password(facts: Facts, node: Node) -> Outcome:
    seen = default_role_login(facts, node)
    if "not permitted to log in" in seen:
        return failed(f"the server accepted the default password of '{DEFAULT_ROLE}' and refused only because the "
                      "role may not log in", [seen])
    if seen.startswith("refused"):
        return passed(f"the default password of '{DEFAULT_ROLE}' is refused ({seen})")
    return failed(f"'{DEFAULT_ROLE}' logged in with its default password", [seen])


def judge_not_root(facts: Facts, node: Node) -> Outcome:
    user = facts.host.user_name(node.process.uid)
    expected = facts.cfg.cassandra.service_user
    if node.process.uid == 0:
        return failed(f"pid {node.process.pid} runs as root")
    if user != expected:
        return failed(f"pid {node.process.pid} runs as {user}, not the dedicated account {expected}")
    return passed(f"pid {node.process.pid} runs as {user}")


def _jmx_findings(facts: Facts, node: Node) -> Iterator[str]:
    props = node.properties
    remote = [p for p in ("cassandra.jmx.remote.port", "com.sun.management.jmxremote.port") if p in props]
    if remote:
        yield f"remote JMX is configured ({', '.join(f'-D{p}={props[p]}' for p in remote)})"
    elif "cassandra.jmx.local.port" not in props:
        yield "no -Dcassandra.jmx.local.port: JMX is not limited to loopback"
    data_ports = {node.native_port, node.storage_port, _int(node.setting("ssl_storage_port"), 7001)}
    for li in node.listeners:
        if li.port not in data_ports and not li.loopback:
            yield f"the node listens on {li} (not a CQL or storage port, not loopback)"
    if props.get("com.sun.management.jmxremote.authenticate", "").lower() != "true":
        yield "JMX does not authenticate (-Dcom.sun.management.jmxremote.authenticate is not true)"
        return
    login = props.get("cassandra.jmx.remote.login.config") or props.get("java.security.auth.login.config")
    password_file = props.get("com.sun.management.jmxremote.password.file")
    if not password_file and not login:
        yield "JMX authentication has neither a password file nor a login configuration"
    if password_file:
        st = facts.host.stat(password_file)
        if st is None:
            yield f"{password_file}: the JMX password file cannot be read"
        elif stat.S_IMODE(st.st_mode) & 0o077 or facts.host.user_name(st.st_uid) != facts.cfg.cassandra.service_user:
            yield (f"{password_file} has mode {stat.S_IMODE(st.st_mode):04o}, owner "
                   f"{facts.host.user_name(st.st_uid)}: only {facts.cfg.cassandra.service_user} may read it")


def judge_jmx(facts: Facts, node: Node) -> Outcome:
    findings = list(_jmx_findings(facts, node))
    port = node.properties.get("cassandra.jmx.local.port", "?")
    return verdict(findings, f"JMX on loopback port {port} with authentication", "JMX is reachable or unauthenticated")


def judge_client_tls(facts: Facts, node: Node) -> Outcome:
    p = native_probe(facts, node)
    findings = []
    if p.plaintext_answered:
        findings.append(f"{node.native_address}:{node.native_port} answers CQL in plaintext")
    if not p.tls:
        findings.append(f"{node.native_address}:{node.native_port} does not speak TLS ({p.tls_note})")
    opts = node.setting("client_encryption_options") or {}
    if not isinstance(opts, dict) or opts.get("enabled") is not True:
        findings.append(f"client_encryption_options.enabled is not true ({node.source()})")
    elif opts.get("optional") is True:
        findings.append(f"client_encryption_options.optional: true ({node.source()})")
    return verdict(findings, f"clients must use TLS: {p.tls_note}; plaintext refused ({p.plaintext_note})",
                   "clients may connect without TLS")


def judge_internode_tls(facts: Facts, node: Node) -> Outcome:
    opts = node.setting("server_encryption_options") or {}
    mode = str(opts.get("internode_encryption", "none")) if isinstance(opts, dict) else "none"
    findings = []
    if mode != "all":
        findings.append(f"server_encryption_options.internode_encryption: {mode} ({node.source()})")
    if isinstance(opts, dict) and opts.get("optional") is True:
        findings.append(f"server_encryption_options.optional: true ({node.source()})")
    tls, note = storage_tls(facts, node)
    if not tls:
        findings.append(f"{node.listen_address}:{node.storage_port} does not speak TLS ({note})")
    return verdict(findings, f"internode_encryption: all; storage port {note}", "internode traffic may be plaintext")


def judge_audit_log(facts: Facts, node: Node) -> Outcome:
    opts = node.setting("audit_logging_options") or {}
    if not isinstance(opts, dict) or opts.get("enabled") is not True:
        return failed("audit logging is off", [f"audit_logging_options.enabled is not true ({node.source()})"])

    def categories(key: str) -> set[str]:
        value = opts.get(key) or ""
        return {c.strip().upper() for c in str(value).split(",") if c.strip()}

    included, excluded = categories("included_categories"), categories("excluded_categories")
    required = {c.upper() for c in facts.cfg.cassandra.required_audit_categories}
    missing = sorted((required - included if included else set()) | (required & excluded))
    logger = opts.get("logger")
    name = logger.get("class_name") if isinstance(logger, dict) else logger
    if missing:
        return failed(f"audit logging is on ({name}) but does not log {', '.join(missing)}",
                      [f"included_categories: {','.join(sorted(included)) or '(all)'}; "
                       f"excluded_categories: {','.join(sorted(excluded)) or '(none)'}"])
    return passed(f"audit logging on ({name}), categories {','.join(sorted(included)) or 'all'} "
                  f"({node.source()})")


def _node_check(check_id: str, title: str, reference: str, severity: Severity,
                judge: Callable[[Facts, Node], Outcome]) -> Check:
    return Check(f"cassandra.{check_id}", title, reference, severity, Scope.CASSANDRA, each_node(judge))


CHECKS: tuple[Check, ...] = (
    _node_check("authentication", "Authentication on (PasswordAuthenticator)", f"{CIS} 2.1", Severity.CRITICAL,
                judge_authentication),
    _node_check("authorization", "Authorization on (CassandraAuthorizer)", f"{CIS} 2.2", Severity.HIGH,
                judge_authorization),
    _node_check("default_role_login", "The default role 'cassandra' cannot log in",
                f"{CIS} 3.2; project rule (roles/cassandra locks it)", Severity.CRITICAL, judge_default_role),
    _node_check("default_role_password", "The default role's password is not the default", f"{CIS} 3.2",
                Severity.MEDIUM, judge_default_password),
    _node_check("not_root", "Not running as root (dedicated account)", f"{CIS} 1.5, 3.4", Severity.HIGH,
                judge_not_root),
    _node_check("jmx", "JMX on loopback only, with authentication",
                "Apache Cassandra 5.0 security guide (JMX access); project rule (issue 14)", Severity.HIGH,
                judge_jmx),
    _node_check("client_tls", "Client TLS required", f"{CIS} 5.2", Severity.HIGH, judge_client_tls),
    _node_check("internode_tls", "Internode TLS for all traffic", f"{CIS} 5.1", Severity.HIGH, judge_internode_tls),
    _node_check("audit_log", "Audit logging of AUTH, DDL and DCL events", f"{CIS} 4.2", Severity.HIGH,
                judge_audit_log),
)
