"""MariaDB baseline (dev-sec mysql-baseline), judged on the running server and on the options it starts with.

The server is read through ``iact_audit_read``, a localhost-only account that may SELECT four columns of
``mysql.user`` and list database names, in a read-only session. The options the server starts with come
from ``my_print_defaults --mysqld`` (every configuration file, in the server's order); a setting is judged on
both, so a hand edit waiting for the next restart is found as well as a running value.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pymysql

from .. import mysqlconn
from ..errors import AgentError
from ..health.checks import CommandFailed
from . import parsers
from .facts import Facts, FactUnavailable
from .model import Check, Outcome, Scope, Severity, passed, verdict

DEVSEC = "dev-sec mysql-baseline"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
VARIABLES = ("local_infile", "have_symlink", "secure_file_priv", "require_secure_transport", "datadir", "version",
             "have_ssl")


@dataclass(frozen=True)
class Account:
    user: str
    host: str
    is_role: bool
    ssl_type: str

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"

    @property
    def remote(self) -> bool:
        return self.host not in LOCAL_HOSTS


@dataclass(frozen=True)
class ServerFacts:
    variables: dict[str, str]
    accounts: list[Account]
    databases: list[str]


def _query_server(facts: Facts) -> ServerFacts:
    cfg = facts.cfg.mysql
    try:
        conn = mysqlconn.connect(cfg.defaults_file, connect_timeout=cfg.connect_timeout_s)
    except AgentError as exc:
        raise FactUnavailable(str(exc)) from None
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            cur.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + ", ".join(["%s"] * len(VARIABLES)) + ")",
                        VARIABLES)
            variables = {str(k).lower(): "" if v is None else str(v) for k, v in cur.fetchall()}
            cur.execute("SELECT User, Host, is_role, ssl_type FROM mysql.user")
            accounts = [Account(str(u), str(h), str(r).upper() == "Y", str(t or "")) for u, h, r, t in cur.fetchall()]
            cur.execute("SHOW DATABASES")
            databases = [str(row[0]) for row in cur.fetchall()]
    except pymysql.MySQLError as exc:
        args = exc.args
        raise FactUnavailable(f"MariaDB refused the audit's query: ({args[0]}) {args[1]}" if len(args) > 1
                              else f"MariaDB query failed: {exc}") from None
    finally:
        conn.close()
    return ServerFacts(variables, accounts, databases)


def server(facts: Facts) -> ServerFacts:
    return facts.memo("mysql.server", lambda: _query_server(facts))


def startup_options(facts: Facts) -> dict[str, str]:
    """The options the server starts with, from every configuration file (``my_print_defaults --mysqld``)."""

    def gather() -> dict[str, str]:
        try:
            out = facts.host.run(["my_print_defaults", "--mysqld"])
        except CommandFailed as exc:
            raise FactUnavailable(f"my_print_defaults: {exc}") from None
        if out.returncode != 0:
            raise FactUnavailable(f"my_print_defaults --mysqld failed: {out.first_error_line}")
        return parsers.parse_print_defaults(out.stdout)

    return facts.memo("mysql.options", gather)


# --- judges -----------------------------------------------------------------------------------------


def judge_anonymous(facts: Facts) -> Outcome:
    found = [str(a) for a in server(facts).accounts if a.user == ""]
    return verdict(found, "no account with an empty user name", "anonymous accounts exist")


def judge_test_database(facts: Facts) -> Outcome:
    found = [d for d in server(facts).databases if d.lower() == "test" or d.lower().startswith("test_")]
    return verdict(found, f"no test database among {len(server(facts).databases)} databases",
                   "a test database exists")


def judge_root_local(facts: Facts) -> Outcome:
    found = [str(a) for a in server(facts).accounts if a.user == "root" and a.remote]
    return verdict(found, "root may connect from localhost only", "root may connect from other hosts")


def judge_wildcard_hosts(facts: Facts) -> Outcome:
    found = [str(a) for a in server(facts).accounts if a.host == "%" and not a.is_role]
    return verdict(found, "no account may connect from any host ('%')", "accounts may connect from any host ('%')")


def judge_tls_remote(facts: Facts) -> Outcome:
    srv = server(facts)
    if parsers.option_enabled(srv.variables.get("require_secure_transport")):
        return passed("require_secure_transport=ON: every TCP connection must use TLS")
    found = [f"{a} without REQUIRE SSL/X509" for a in srv.accounts if a.remote and not a.is_role and not a.ssl_type]
    ssl = srv.variables.get("have_ssl", "?")
    return verdict(found, f"every remote account requires TLS (have_ssl={ssl})",
                   f"remote accounts may log in without TLS (require_secure_transport=OFF, have_ssl={ssl})")


def judge_local_infile(facts: Facts) -> Outcome:
    running = server(facts).variables.get("local_infile")
    configured = startup_options(facts).get("local_infile")
    findings = []
    if parsers.option_enabled(running) is not False:
        findings.append(f"running: local_infile={running}")
    if configured is not None and parsers.option_enabled(configured) is not False:
        findings.append(f"startup options: --local-infile={configured}")
    if configured is None:
        findings.append("startup options: local-infile not set (the server's default is ON)")
    return verdict(findings, "local_infile=OFF, running and in the startup options", "LOAD DATA LOCAL is allowed")


def judge_symbolic_links(facts: Facts) -> Outcome:
    running = server(facts).variables.get("have_symlink", "")
    options = startup_options(facts)
    findings = []
    if running.upper() != "DISABLED":
        findings.append(f"running: have_symlink={running or '(not reported)'}")
    enabled = [f"--{name}={options[name]}" for name in ("symbolic_links", "skip_symbolic_links") if name in options
               and parsers.option_enabled(options[name]) is (name == "symbolic_links")]
    findings += [f"startup options: {e}" for e in enabled]
    return verdict(findings, "symbolic links disabled (have_symlink=DISABLED)", "symbolic links are enabled")


def judge_secure_file_priv(facts: Facts) -> Outcome:
    running = server(facts).variables.get("secure_file_priv")
    configured = startup_options(facts).get("secure_file_priv")
    findings = []
    if not running:
        findings.append("running: secure_file_priv is empty (files may be read and written anywhere)")
    if configured is not None and not configured:
        findings.append("startup options: --secure-file-priv is empty")
    return verdict(findings, f"secure_file_priv={running}", "secure_file_priv is not set")


def _mode(st: os.stat_result) -> int:
    return stat.S_IMODE(st.st_mode)


def _owned_by(facts: Facts, st: os.stat_result, user: str) -> bool:
    return facts.host.user_name(st.st_uid) == user and facts.host.group_name(st.st_gid) == user


def _datadir_findings(facts: Facts) -> Iterator[str]:
    """dev-sec mysql-conf-04/05: the folder and ``ibdata1`` belong to the service user; nothing in it is open to
    others. (Debian's ``mysql_upgrade_info`` belongs to root: only its mode is judged.)"""
    host, user = facts.host, facts.cfg.mysql.service_user
    datadir = server(facts).variables.get("datadir", "").rstrip("/")
    if not datadir:
        yield "the server reports no datadir"
        return
    st = host.stat(datadir)
    if st is None:
        yield f"{datadir}: cannot be read"
        return
    for path, pst in ((datadir, st), (f"{datadir}/ibdata1", host.stat(f"{datadir}/ibdata1"))):
        if pst is not None and not _owned_by(facts, pst, user):
            yield f"{path} is owned by {host.user_name(pst.st_uid)}:{host.group_name(pst.st_gid)}, not {user}:{user}"
    if not _mode(st) & 0o007:
        return  # closed to others: the modes of the files inside cannot expose them (Debian's 0644 flag files)
    yield f"{datadir} has mode {_mode(st):04o}: others may enter it"
    for entry in host.listdir(datadir):
        est = host.stat(f"{datadir}/{entry}", follow=False)
        if est is not None and stat.S_ISREG(est.st_mode) and _mode(est) & 0o007:
            yield f"{datadir}/{entry} has mode {_mode(est):04o}: others may read or write it"


def judge_datadir(facts: Facts) -> Outcome:
    findings = list(_datadir_findings(facts))
    datadir = server(facts).variables.get("datadir", "?")
    return verdict(findings, f"{datadir} and its files belong to the service user, closed to others",
                   "the data directory is open to other users")


def _holds_secret(text: str) -> bool:
    return "PRIVATE KEY-----" in text or any(line.strip().lower().startswith("password")
                                             for line in text.splitlines())


def _config_findings(facts: Facts) -> Iterator[str]:
    """dev-sec mysql-conf-07: owned by root (or the service user, for what the server itself must read, such as
    its TLS key), changed by its owner only, and no secret (a password, a private key) readable by others."""
    host, user = facts.host, facts.cfg.mysql.service_user
    top = facts.cfg.mysql.config_dir
    if not host.is_dir(top):
        yield f"{top}: no such folder"
        return
    for path in host.glob(f"{top}/**/*"):
        st = host.stat(path)
        if st is None or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            continue
        if st.st_uid != 0 and host.user_name(st.st_uid) != user:
            yield f"{path} is owned by {host.user_name(st.st_uid)}, not root or {user}"
        if _mode(st) & 0o022:
            yield f"{path} has mode {_mode(st):04o}: group or others may change it"
        if stat.S_ISREG(st.st_mode) and _mode(st) & 0o004 and _holds_secret(host.read_text(path, 256 << 10) or ""):
            yield f"{path} holds a secret and has mode {_mode(st):04o}: others may read it"


def judge_config_files(facts: Facts) -> Outcome:
    findings = list(_config_findings(facts))
    top = facts.cfg.mysql.config_dir
    return verdict(findings, f"{top}: owned by root (or {facts.cfg.mysql.service_user}), changed by its owner only, "
                   "no secret readable by others", "the server's configuration may be changed or read by others")


def _server_check(check_id: str, title: str, reference: str, severity: Severity,
                  judge: Callable[[Facts], Outcome]) -> Check:
    return Check(f"mysql.{check_id}", title, reference, severity, Scope.MYSQL, judge)


# Severity follows the control's impact (1.0 critical, 0.7 high, 0.5 medium); root's remote login is raised to high.
CHECKS: tuple[Check, ...] = (
    _server_check("anonymous_users", "No anonymous accounts", f"{DEVSEC} mysql-db-04", Severity.CRITICAL,
                  judge_anonymous),
    _server_check("test_database", "No test database", f"{DEVSEC} mysql-db-03", Severity.CRITICAL,
                  judge_test_database),
    _server_check("root_local", "root may log in from localhost only", f"{DEVSEC} mysql-db-08", Severity.HIGH,
                  judge_root_local),
    _server_check("wildcard_hosts", "No account for any host ('%')", f"{DEVSEC} mysql-db-07", Severity.MEDIUM,
                  judge_wildcard_hosts),
    _server_check("local_infile", "LOAD DATA LOCAL disabled (local_infile=0)", f"{DEVSEC} mysql-conf-03 (local-infile)",
                  Severity.HIGH, judge_local_infile),
    _server_check("symbolic_links", "Symbolic links disabled (skip-symbolic-links)",
                  f"{DEVSEC} mysql-conf-03 (skip-symbolic-links)", Severity.HIGH, judge_symbolic_links),
    _server_check("secure_file_priv", "secure_file_priv set", f"{DEVSEC} mysql-conf-03 (secure-file-priv)",
                  Severity.HIGH, judge_secure_file_priv),
    _server_check("tls_remote", "TLS required for every remote account",
                  "CIS Oracle MySQL EE 5.7 8.2; project rule (issue 14: REQUIRE SSL or require_secure_transport)",
                  Severity.HIGH,
                  judge_tls_remote),
    _server_check("datadir", "Data directory owned by the service user, closed to others",
                  f"{DEVSEC} mysql-conf-04, mysql-conf-05", Severity.HIGH, judge_datadir),
    _server_check("config_files", "Configuration owned by root, changed by its owner only, no secret readable",
                  f"{DEVSEC} mysql-conf-07 (ownership and write access)", Severity.HIGH, judge_config_files),
)

