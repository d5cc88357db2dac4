#!/usr/bin/python3
"""Converge Cassandra keyspaces, tables, roles and permissions to a declared state.

Runs on a Cassandra node with Debian's python3-cassandra. Credentials come from a cqlshrc-style
file (0600) and from module parameters marked no_log; nothing is ever put on a command line.
"""

from __future__ import annotations

import configparser
import contextlib
import secrets
import ssl
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule

try:
    from cassandra import AuthenticationFailed
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
    from cassandra.policies import WhiteListRoundRobinPolicy

    HAS_DRIVER = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_DRIVER = False

DOCUMENTATION = r"""
---
module: cassandra_cql_state
short_description: Converge Cassandra schema, roles and permissions (iact-ops)
description:
  - Compares the declared keyspaces, tables, roles and permissions with the cluster and issues only
    the CQL needed to converge (CREATE, ALTER, GRANT, REVOKE). Supports check mode.
  - Logs in with the credentials of O(login_file). When that login fails and
    O(bootstrap_default_superuser) is true, logs in once as the default C(cassandra) role, creates
    the login file's role as a superuser and, in the same step, logs in as that role and removes
    superuser and login from the default role, so no run leaves C(cassandra/cassandra) usable.
  - When O(login_file) has C(ssl = true) in C([connection]), connects with TLS, verifying the node's
    certificate against C(certfile) of C([ssl]) and its address against the certificate's names.
options:
  login_host:
    {description: "Address of the node's native transport (default: C(hostname) of the login file's [connection])",
     type: str}
  login_port:
    {description: "Native transport port (default: C(port) of the login file's [connection], else 9042)", type: int}
  login_file:
    {description: "cqlshrc-style file: [authentication], optional [connection] ssl and [ssl] certfile.", type: path,
     required: true}
  bootstrap_default_superuser:
    {description: Create the admin role through the default role if needed., type: bool, default: false}
  keyspaces: {description: "Keyspaces: name and replication map.", type: list, elements: dict, default: []}
  tables:
    {description: "Tables: keyspace, name, columns, partition_key, clustering, options.", type: list, elements: dict,
     default: []}
  roles: {description: "Roles: name, password, login, superuser.", type: list, elements: dict, default: []}
  permissions:
    {description: "Exact permission set per role: role and grants (permission, resource).", type: list,
     elements: dict, default: []}
  lock_default_role:
    {description: Remove superuser and login from the default cassandra role., type: bool, default: false}
author: iact-ops
"""

RETURN = r"""
statements:
  description: CQL statements issued (or that would be issued in check mode); passwords redacted.
  type: list
  returned: always
keyspaces_changed:
  description: Names of keyspaces whose replication changed (they need a repair).
  type: list
  returned: always
"""

DEFAULT_ROLE = "cassandra"
REDACTED = "'********'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_str(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def cql_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote_str(k)}: {quote_str(v)}" for k, v in value.items()) + "}"
    return quote_str(value)


def is_auth_failure(exc: Exception) -> bool:
    if isinstance(exc, AuthenticationFailed):
        return True
    if isinstance(exc, NoHostAvailable):
        return any(isinstance(e, AuthenticationFailed) or "Bad credentials" in str(e)
                   or "AuthenticationFailed" in str(e) for e in exc.errors.values())
    return False


def option_drift(have_row: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The declared table options whose value differs from the table's row in system_schema.tables; a map
    option (compaction, compression, caching) drifts when one declared key differs (class names compared
    without their package), keys the declaration leaves out are the server's."""
    drift = {}
    for key, value in options.items():
        have = have_row.get(key)
        if isinstance(value, dict):
            have_map = {str(k): v for k, v in dict(have or {}).items()}
            cmp_want = {str(k): str(v) for k, v in value.items()}
            if "class" in cmp_want:
                cmp_want["class"] = cmp_want["class"].split(".")[-1]
                have_map["class"] = str(have_map.get("class", "")).split(".")[-1]
            if any(have_map.get(k) != v for k, v in cmp_want.items()):
                drift[key] = value
        elif str(have) != str(value):
            drift[key] = value
    return drift


class State:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.p = module.params
        self.statements: list[str] = []
        self.keyspaces_changed: list[str] = []
        self.clusters: list[Any] = []
        self.ssl_context: ssl.SSLContext | None = None
        self.host = self.p["login_host"]
        self.port = self.p["login_port"]

    # -- connections -----------------------------------------------------------------------------
    def cluster(self, username: str, password: str) -> Any:
        profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([self.host]), request_timeout=120)
        return Cluster(
            [self.host],
            port=self.port,
            auth_provider=PlainTextAuthProvider(username=username, password=password),
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=15,
            control_connection_timeout=15,
            max_schema_agreement_wait=120,
            ssl_context=self.ssl_context,
        )

    def connect(self, username: str, password: str) -> Any:
        cluster = self.cluster(username, password)
        self.clusters.append(cluster)
        return cluster.connect()

    def login_error(self, username: str, password: str) -> Exception | None:
        """None when this login works, else the driver's error."""
        try:
            cluster = self.cluster(username, password)
            try:
                cluster.connect().shutdown()
            finally:
                cluster.shutdown()
        except Exception as exc:
            return exc
        return None

    def can_login(self, username: str, password: str) -> bool:
        exc = self.login_error(username, password)
        if exc is None:
            return True
        if is_auth_failure(exc):
            return False
        raise exc

    def close(self) -> None:
        for cluster in self.clusters:
            with contextlib.suppress(Exception):  # best effort on the way out
                cluster.shutdown()

    def execute(self, session: Any, cql: str, shown: str | None = None) -> None:
        self.statements.append(shown or cql)
        if not self.module.check_mode:
            session.execute(cql, timeout=120)

    # -- login -------------------------------------------------------------------------------------
    def read_login_file(self) -> tuple[str, str]:
        parser = configparser.ConfigParser(interpolation=None)
        if not parser.read(self.p["login_file"]):
            self.module.fail_json(msg=f"cannot read login file {self.p['login_file']}")
        try:
            login = parser.get("authentication", "username"), parser.get("authentication", "password")
        except (configparser.Error, KeyError) as exc:
            self.module.fail_json(msg=f"login file {self.p['login_file']} lacks [authentication]: {exc}")
            raise  # fail_json exits; this line is never reached
        # Where this node's CQL listens: the login file says it unless the task does (one place per node).
        if not self.host:
            self.host = parser.get("connection", "hostname", fallback="")
            if not self.host:
                self.module.fail_json(msg=f"login file {self.p['login_file']} names no [connection] hostname "
                                          "and the task no login_host")
        if self.port is None:
            self.port = parser.getint("connection", "port", fallback=9042)
        if parser.getboolean("connection", "ssl", fallback=False):
            certfile = parser.get("ssl", "certfile", fallback="")
            if not certfile:
                self.module.fail_json(msg=f"login file {self.p['login_file']}: ssl = true needs [ssl] certfile")
            # The node's certificate must chain to the CA and name the address we connect to.
            context = ssl.create_default_context(cafile=certfile)
            context.check_hostname = True
            self.ssl_context = context
        return login

    def admin_session(self) -> Any:
        username, password = self.read_login_file()
        try:
            return self.connect(username, password)
        except Exception as exc:
            if not is_auth_failure(exc):
                raise
            if not self.p["bootstrap_default_superuser"]:
                self.module.fail_json(msg=f"login as '{username}' (from the login file) was refused")
        # The admin role does not exist yet: this is the only time the default role is used.
        try:
            default = self.connect(DEFAULT_ROLE, DEFAULT_ROLE)
        except Exception as exc:
            if is_auth_failure(exc):
                self.module.fail_json(
                    msg=f"login as '{username}' was refused and the default role is locked: the admin "
                        "password in the vault does not match the cluster (see the role README, rotation)")
            raise
        self.execute(
            default,
            f"CREATE ROLE IF NOT EXISTS {quote_ident(username)} WITH SUPERUSER = true AND LOGIN = true "
            f"AND PASSWORD = {quote_str(password)}",
            f"CREATE ROLE IF NOT EXISTS {quote_ident(username)} WITH SUPERUSER = true AND LOGIN = true "
            f"AND PASSWORD = {REDACTED}",
        )
        if self.module.check_mode:
            return default
        # Same step: the new admin locks the default role before anything else can fail (a failed repair
        # or grant later in the run must not leave cassandra/cassandra a working superuser).
        admin = self.connect(username, password)
        self.lock_default_role(admin)
        return admin

    # -- keyspaces -------------------------------------------------------------------------------
    def ensure_keyspaces(self, session: Any) -> None:
        for ks in self.p["keyspaces"]:
            name = ks["name"]
            want = {str(k): str(v) for k, v in ks["replication"].items()}
            row = session.execute(
                "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", [name]).one()
            repl = cql_value(want)
            if row is None:
                self.execute(session, f"CREATE KEYSPACE IF NOT EXISTS {quote_ident(name)} "
                                      f"WITH replication = {repl} AND durable_writes = true")
                self.keyspaces_changed.append(name)
                continue
            have = dict(row.replication)
            have["class"] = have.get("class", "").split(".")[-1]
            want_cmp = dict(want)
            want_cmp["class"] = want_cmp["class"].split(".")[-1]
            if have != want_cmp:
                self.execute(session, f"ALTER KEYSPACE {quote_ident(name)} WITH replication = {repl}")
                self.keyspaces_changed.append(name)

    # -- tables ------------------------------------------------------------------------------------
    def ensure_tables(self, session: Any) -> None:
        for tbl in self.p["tables"]:
            ks, name = tbl["keyspace"], tbl["name"]
            fq = f"{quote_ident(ks)}.{quote_ident(name)}"
            columns = [(c["name"], c["type"]) for c in tbl["columns"]]
            pk = tbl["partition_key"]
            ck = [(c["name"], c.get("order", "ASC").upper()) for c in tbl.get("clustering", [])]
            options = tbl.get("options", {})
            rows = list(session.execute(
                "SELECT column_name, type, kind FROM system_schema.columns "
                "WHERE keyspace_name = %s AND table_name = %s", [ks, name]))
            if not rows:
                cols = ", ".join(f"{quote_ident(n)} {t}" for n, t in columns)
                key = "(" + ", ".join(quote_ident(n) for n in pk) + ")"
                if ck:
                    key += ", " + ", ".join(quote_ident(n) for n, _ in ck)
                withs = []
                if ck:
                    withs.append("CLUSTERING ORDER BY (" + ", ".join(f"{quote_ident(n)} {o}" for n, o in ck) + ")")
                withs += [f"{k} = {cql_value(v)}" for k, v in options.items()]
                stmt = f"CREATE TABLE IF NOT EXISTS {fq} ({cols}, PRIMARY KEY ({key}))"
                if withs:
                    stmt += " WITH " + " AND ".join(withs)
                self.execute(session, stmt)
                continue
            have_cols = {r.column_name: (r.type, r.kind) for r in rows}
            have_pk = [r.column_name for r in rows if r.kind == "partition_key"]
            have_ck = [r.column_name for r in rows if r.kind == "clustering"]
            if sorted(have_pk) != sorted(pk) or sorted(have_ck) != sorted(n for n, _ in ck):
                self.module.fail_json(msg=f"table {ks}.{name} exists with a different primary key "
                                          f"({have_pk}, {have_ck}); this cannot be altered, migrate it by hand")
            for col, ctype in columns:
                if col not in have_cols:
                    self.execute(session, f"ALTER TABLE {fq} ADD {quote_ident(col)} {ctype}")
                elif have_cols[col][0].replace(" ", "") != ctype.replace(" ", ""):
                    self.module.fail_json(msg=f"column {ks}.{name}.{col} is {have_cols[col][0]}, "
                                              f"declared {ctype}; change it by hand")
            opt_row = session.execute(
                "SELECT * FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
                [ks, name]).one()._asdict()
            drift = option_drift(opt_row, options)
            if drift:
                self.execute(session, f"ALTER TABLE {fq} WITH " +
                             " AND ".join(f"{k} = {cql_value(v)}" for k, v in drift.items()))

    # -- roles and permissions ---------------------------------------------------------------------
    def ensure_roles(self, session: Any) -> None:
        for role in self.p["roles"]:
            name, password = role["name"], role.get("password")
            login, superuser = bool(role.get("login", True)), bool(role.get("superuser", False))
            row = session.execute(
                "SELECT can_login, is_superuser FROM system_auth.roles WHERE role = %s", [name]).one()
            if row is None:
                stmt = f"CREATE ROLE IF NOT EXISTS {quote_ident(name)} WITH LOGIN = {cql_value(login)} " \
                       f"AND SUPERUSER = {cql_value(superuser)}"
                if password:
                    self.execute(session, stmt + f" AND PASSWORD = {quote_str(password)}",
                                 stmt + f" AND PASSWORD = {REDACTED}")
                else:
                    self.execute(session, stmt)
                continue
            changes = []
            if bool(row.can_login) != login:
                changes.append(f"LOGIN = {cql_value(login)}")
            if bool(row.is_superuser) != superuser:
                changes.append(f"SUPERUSER = {cql_value(superuser)}")
            if changes:
                self.execute(session, f"ALTER ROLE {quote_ident(name)} WITH " + " AND ".join(changes))
            if password and login and not self.can_login(name, password):
                self.execute(session, f"ALTER ROLE {quote_ident(name)} WITH PASSWORD = {quote_str(password)}",
                             f"ALTER ROLE {quote_ident(name)} WITH PASSWORD = {REDACTED}")

    def lock_default_role(self, session: Any) -> None:
        """No superuser, no login, and a random password nobody keeps (CIS 3.2: a locked role still answers
        "not permitted to log in" only after checking the password, which tells that it is the default)."""
        row = session.execute(
            "SELECT can_login, is_superuser FROM system_auth.roles WHERE role = %s", [DEFAULT_ROLE]).one()
        if row is None:
            return
        lock = "SUPERUSER = false AND LOGIN = false AND " if row.can_login or row.is_superuser else ""
        if lock or self.default_password_accepted():
            alter = f"ALTER ROLE {DEFAULT_ROLE} WITH {lock}PASSWORD = "
            self.execute(session, alter + quote_str(secrets.token_hex(32)), alter + REDACTED)

    def default_password_accepted(self) -> bool:
        """Whether the server still accepts the default role's default password (locked or not)."""
        exc = self.login_error(DEFAULT_ROLE, DEFAULT_ROLE)
        if exc is None or "not permitted to log in" in str(exc):
            return True
        if is_auth_failure(exc):
            return False
        raise exc

    @staticmethod
    def resource_to_cql(resource: str) -> str:
        inner = resource.strip("<>").strip()
        words = inner.split(" ", 1)
        if inner in ("all keyspaces", "all roles", "all functions", "all mbeans"):
            return inner.upper()
        if len(words) == 2 and words[0] in ("keyspace", "table", "role", "mbean"):
            return f"{words[0].upper()} {words[1]}"
        return inner.upper()

    @staticmethod
    def cql_to_resource(resource: str) -> str:
        words = resource.strip().split(" ", 1)
        if len(words) == 2 and words[0].upper() in ("KEYSPACE", "TABLE", "ROLE", "MBEAN"):
            return f"<{words[0].lower()} {words[1]}>"
        return f"<{resource.strip().lower()}>"

    def ensure_permissions(self, session: Any) -> None:
        for entry in self.p["permissions"]:
            role = entry["role"]
            want = {(g["permission"].upper(), self.cql_to_resource(g["resource"])) for g in entry["grants"]}
            have: set[tuple[str, str]] = set()
            for row in session.execute(f"LIST ALL PERMISSIONS OF {quote_ident(role)} NORECURSIVE"):
                have.add((row.permission.upper(), row.resource))
            for perm, res in sorted(want - have):
                self.execute(session, f"GRANT {perm} ON {self.resource_to_cql(res)} TO {quote_ident(role)}")
            for perm, res in sorted(have - want):
                self.execute(session, f"REVOKE {perm} ON {self.resource_to_cql(res)} FROM {quote_ident(role)}")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "login_host": {"type": "str"},
            "login_port": {"type": "int"},
            "login_file": {"type": "path", "required": True},
            "bootstrap_default_superuser": {"type": "bool", "default": False},
            "keyspaces": {"type": "list", "elements": "dict", "default": []},
            "tables": {"type": "list", "elements": "dict", "default": []},
            "roles": {"type": "list", "elements": "dict", "default": [], "no_log": False},
            "permissions": {"type": "list", "elements": "dict", "default": []},
            "lock_default_role": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    if not HAS_DRIVER:
        module.fail_json(msg="python3-cassandra (cassandra-driver) is missing on the node")
    for role in module.params["roles"]:
        if role.get("password"):
            module.no_log_values.add(role["password"])
    state = State(module)
    try:
        session = state.admin_session()
        state.ensure_keyspaces(session)
        state.ensure_tables(session)
        state.ensure_roles(session)
        state.ensure_permissions(session)
        if module.params["lock_default_role"]:
            state.lock_default_role(session)
    except Exception as exc:
        module.fail_json(msg=f"{type(exc).__name__}: {exc}", exception=traceback.format_exc(),
                         statements=state.statements)
    finally:
        state.close()
    module.exit_json(changed=bool(state.statements), statements=state.statements,
                     keyspaces_changed=state.keyspaces_changed)


if __name__ == "__main__":
    main()
