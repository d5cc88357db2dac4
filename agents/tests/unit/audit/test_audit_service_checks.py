"""The MariaDB, Cassandra and web checks: each passes on what the stack should be and fails, naming the cause,
on each violation. The facts the services would give (accounts, probe answers, HTTP responses) are given here;
the probes themselves run against the real services in tests/integration/audit."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from audit_support import Runner, Tree, facts_for, fixture_text, web_settings_text
from iact_agents.audit import cassandra, mariadb, runner, web
from iact_agents.audit.cassandra import OP_AUTHENTICATE, OP_READY, Answer, NativeProbe
from iact_agents.audit.facts import Facts, FactUnavailable
from iact_agents.audit.mariadb import Account, ServerFacts
from iact_agents.audit.model import Scope, Status
from iact_agents.audit.web import Response
from iact_agents.health.checks import CommandOutput

# --- MariaDB ------------------------------------------------------------------------------------------

GOOD_VARIABLES = {"local_infile": "OFF", "have_symlink": "DISABLED", "secure_file_priv": "/var/lib/mysql-files/",
                  "require_secure_transport": "OFF", "datadir": "/var/lib/mysql/", "have_ssl": "YES",
                  "version": "10.11.19-MariaDB-0+deb12u1-log"}
GOOD_ACCOUNTS = [Account("mariadb.sys", "localhost", False, ""), Account("root", "localhost", False, ""),
                 Account("iact_health", "localhost", False, ""), Account("iact_health", "172.30.80.%", False, "ANY"),
                 Account("iact_dora", "172.30.80.%", False, "X509")]
GOOD_OPTIONS = {"local_infile": "0", "secure_file_priv": "/var/lib/mysql-files", "skip_symbolic_links": ""}


def mysql_host(tmp_path: Path) -> Tree:
    tree = Tree(tmp_path, me="mysql", my_group="mysql")
    tree.mkdir("/var/lib/mysql", 0o750).write("/var/lib/mysql/ibdata1", "x", 0o660)
    tree.mkdir("/etc/mysql/mariadb.conf.d").write("/etc/mysql/mariadb.conf.d/60-iact.cnf", "[mysqld]\n")
    return tree


def mysql_facts(tree: Tree, *, variables: dict[str, str] | None = None, accounts: list[Account] | None = None,
                databases: list[str] | None = None, options: dict[str, str] | None = None) -> Facts:
    facts = facts_for(tree, mysql={"enabled": True})
    facts.provide("mysql.server", ServerFacts({**GOOD_VARIABLES, **(variables or {})},
                                              GOOD_ACCOUNTS + (accounts or []),
                                              ["iact", "information_schema", "mysql"] + (databases or [])))
    facts.provide("mysql.options", {**GOOD_OPTIONS, **(options or {})})
    return facts


MYSQL_CHECKS = [c for c in runner.CATALOGUE if c.scope is Scope.MYSQL]


def judged(facts: Facts, checks: list[Any]) -> dict[str, Any]:
    return {c.id: runner.judge(c, facts) for c in checks}


def test_a_hardened_metrics_store_passes(tmp_path: Path) -> None:
    tree = mysql_host(tmp_path)
    tree.path("/etc/mysql").chmod(0o755)
    results = judged(mysql_facts(tree), MYSQL_CHECKS)
    # The tree's files belong to the uid running the tests: the configuration check wants uid 0.
    config = results.pop("mysql.config_files")
    assert config.status is (Status.PASS if os.getuid() == 0 else Status.FAIL), config
    assert {k: v.status for k, v in results.items()} == dict.fromkeys(results, Status.PASS), results


MYSQL_PLANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "an anonymous account": ("mysql.anonymous_users", {"accounts": [Account("", "localhost", False, "")]},
                             "''@'localhost'"),
    "a test database": ("mysql.test_database", {"databases": ["test"]}, "test"),
    "root from anywhere": ("mysql.root_local", {"accounts": [Account("root", "10.9.9.9", False, "ANY")]},
                           "'root'@'10.9.9.9'"),
    "an account for any host": ("mysql.wildcard_hosts", {"accounts": [Account("app", "%", False, "ANY")]},
                                "'app'@'%'"),
    "local_infile=1 running": ("mysql.local_infile", {"variables": {"local_infile": "ON"}}, "running: local_infile=ON"),
    "local-infile=1 in a file": ("mysql.local_infile", {"options": {"local_infile": "1"}}, "--local-infile=1"),
    "symbolic links running": ("mysql.symbolic_links", {"variables": {"have_symlink": "YES"}}, "have_symlink=YES"),
    "symbolic links in a file": ("mysql.symbolic_links", {"options": {"symbolic_links": ""}}, "--symbolic_links="),
    "no secure_file_priv": ("mysql.secure_file_priv", {"variables": {"secure_file_priv": ""}}, "is empty"),
    "a remote account without TLS": ("mysql.tls_remote", {"accounts": [Account("iact_app", "172.30.80.%", False,
                                                                               "")]},
                                     "'iact_app'@'172.30.80.%' without REQUIRE SSL/X509"),
}


@pytest.mark.parametrize("plant", list(MYSQL_PLANTS))
def test_each_mariadb_violation_fails_its_check(tmp_path: Path, plant: str) -> None:
    check_id, change, evidence = MYSQL_PLANTS[plant]
    results = judged(mysql_facts(mysql_host(tmp_path), **change), MYSQL_CHECKS)
    failing = {k for k, v in results.items() if v.status is Status.FAIL} - {"mysql.config_files"}
    assert failing == {check_id}, results
    assert any(evidence in f for f in results[check_id].findings), results[check_id]


def test_require_secure_transport_covers_every_remote_account(tmp_path: Path) -> None:
    facts = mysql_facts(mysql_host(tmp_path), variables={"require_secure_transport": "ON"},
                        accounts=[Account("iact_app", "172.30.80.%", False, "")])
    assert runner.judge(mariadb.CHECKS[7], facts).status is Status.PASS


def test_data_directory_and_configuration_modes(tmp_path: Path) -> None:
    tree = mysql_host(tmp_path)
    tree.path("/var/lib/mysql").chmod(0o755)
    tree.path("/var/lib/mysql/ibdata1").chmod(0o664)
    tree.write("/var/lib/mysql/mysql_upgrade_info", "", 0o660, gid=0)  # Debian's, owned by root: its mode only
    datadir = runner.judge(next(c for c in MYSQL_CHECKS if c.id == "mysql.datadir"), mysql_facts(tree))
    assert datadir.status is Status.FAIL
    assert datadir.findings == ("/var/lib/mysql has mode 0755: others may enter it",
                                "/var/lib/mysql/ibdata1 has mode 0664: others may read or write it")
    root_tree = Tree(tmp_path / "r")
    root_tree.write("/etc/mysql/my.cnf", "[client]\npassword = x\n", 0o644)
    root_tree.write("/etc/mysql/conf.d/x.cnf", "[mysqld]\n", 0o666)
    config = runner.judge(next(c for c in MYSQL_CHECKS if c.id == "mysql.config_files"), mysql_facts(root_tree))
    assert config.status is Status.FAIL
    assert set(config.findings) == {"/etc/mysql/conf.d/x.cnf has mode 0666: group or others may change it",
                                    "/etc/mysql/my.cnf holds a secret and has mode 0644: others may read it"}


def test_an_unreachable_server_makes_every_server_check_an_error(tmp_path: Path) -> None:
    facts = facts_for(mysql_host(tmp_path), mysql={"enabled": True, "defaults_file": str(tmp_path / "missing.cnf")})
    results = judged(facts, MYSQL_CHECKS)
    assert {v.status for k, v in results.items() if k != "mysql.config_files"} == {Status.ERROR}
    assert "missing.cnf: MySQL credential file not found" in results["mysql.anonymous_users"].evidence


def test_startup_options_read_with_my_print_defaults(tmp_path: Path) -> None:
    answer = CommandOutput(0, fixture_text("my_print_defaults_mysql1.txt"), "")
    facts = facts_for(mysql_host(tmp_path), Runner({"my_print_defaults --mysqld": answer}), mysql={"enabled": True})
    assert mariadb.startup_options(facts)["local_infile"] == "0"


# --- Cassandra ----------------------------------------------------------------------------------------

PID = 4813
HARDENED_YAML = fixture_text("cassandra_cass1.yaml").replace(
    "server_encryption_options:\n  internode_encryption: none\nclient_encryption_options:\n  enabled: false\n",
    "server_encryption_options:\n  internode_encryption: all\n  optional: false\nclient_encryption_options:\n"
    "  enabled: true\n  optional: false\naudit_logging_options:\n  enabled: true\n"
    "  logger:\n    class_name: FileAuditLogger\n  included_categories: AUTH,DDL,DCL\n")
JMX_AUTH = ["-Dcom.sun.management.jmxremote.authenticate=true",
            "-Dcom.sun.management.jmxremote.password.file=/etc/cassandra/jmxremote.password"]


def cassandra_host(tmp_path: Path, *, yaml_text: str = HARDENED_YAML, extra_argv: tuple[str, ...] = tuple(JMX_AUTH),
                   uid: int = 60102, listen: tuple[tuple[str, int], ...] = ()) -> Tree:
    if os.getuid() != 0:
        pytest.skip("needs root to give a file to another user")  # the JMX password file belongs to cassandra
    tree = Tree(tmp_path)
    tree.write("/etc/cassandra/cassandra.yaml", yaml_text, 0o640)
    tree.write("/etc/cassandra/jmxremote.password", "admin x\n", 0o400, uid=60102)
    argv = fixture_text("cassandra_cmdline_cass1.txt").splitlines()
    argv = [*argv[:-1], *extra_argv, argv[-1]]
    socks = (("172.30.80.21", 9042), ("172.30.80.21", 7000), ("127.0.0.1", 7199), ("127.0.0.1", 42985), *listen)
    tree.process(PID, argv, uid=uid, name="java", listen=socks, start_ticks=10**12)
    return tree


GOOD_PROBE = NativeProbe(False, "the connection was closed without an answer", True,
                         "TLS handshake completed (TLSv1.3)",
                         Answer(OP_AUTHENTICATE, b"\x00\x2forg.apache.cassandra.auth.PasswordAuthenticator"))


def cassandra_facts(tree: Tree, *, probe: NativeProbe = GOOD_PROBE,
                    default_login: str = "refused: Provided username cassandra and/or password are incorrect",
                    unprivileged: str = "logged in; the statement was refused: User reader has no SELECT permission",
                    storage: tuple[bool, str] = (True, "TLS (the node ended the handshake: CERTIFICATE_REQUIRED)")
                    ) -> Facts:
    secret = tree.write("/etc/iact/cassandra-reader.password", "pw\n", 0o640).path(
        "/etc/iact/cassandra-reader.password")
    facts = facts_for(tree, cassandra={"enabled": True, "username": "reader", "password_file": str(secret)})
    facts.provide(f"cassandra.native.{PID}", probe)
    facts.provide(f"cassandra.default_login.{PID}", default_login)
    facts.provide(f"cassandra.unprivileged.{PID}", unprivileged)
    facts.provide(f"cassandra.storage_tls.{PID}", storage)
    return facts


CASSANDRA_CHECKS = [c for c in runner.CATALOGUE if c.scope is Scope.CASSANDRA]


def test_a_hardened_node_passes(tmp_path: Path) -> None:
    results = judged(cassandra_facts(cassandra_host(tmp_path)), CASSANDRA_CHECKS)
    assert {k: v.status for k, v in results.items()} == dict.fromkeys(results, Status.PASS), results
    assert "PasswordAuthenticator" in results["cassandra.authentication"].evidence
    assert "FileAuditLogger" in results["cassandra.audit_log"].evidence


def _yaml(old: str, new: str) -> dict[str, Any]:
    return {"yaml_text": HARDENED_YAML.replace(old, new)}


CASSANDRA_PLANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    "AllowAllAuthenticator in the file": ("cassandra.authentication",
                                          _yaml("PasswordAuthenticator", "AllowAllAuthenticator"), {},
                                          "authenticator: AllowAllAuthenticator"),
    "a node that lets clients in": ("cassandra.authentication", {}, {"probe": replace(GOOD_PROBE,
                                    startup=Answer(OP_READY))}, "accepted a client without credentials"),
    "AllowAllAuthorizer in the file": ("cassandra.authorization", _yaml("CassandraAuthorizer", "AllowAllAuthorizer"),
                                       {}, "authorizer: AllowAllAuthorizer"),
    "a role reading what it may not": ("cassandra.authorization", {}, {"unprivileged":
                                       "logged in; the statement was allowed"}, "without a grant"),
    "the default role logs in": ("cassandra.default_role_login cassandra.default_role_password", {},
                                 {"default_login": "logged in"}, "logged in"),
    "running as root": ("cassandra.not_root", {"uid": 0}, {}, ""),
    "remote JMX": ("cassandra.jmx", {"extra_argv": ("-Dcassandra.jmx.remote.port=7199", *JMX_AUTH)}, {},
                   "remote JMX is configured"),
    "JMX without authentication": ("cassandra.jmx", {"extra_argv": ()}, {}, "JMX does not authenticate"),
    "a port on every address": ("cassandra.jmx", {"listen": (("0.0.0.0", 17199),)}, {},
                                "listens on 0.0.0.0:17199"),
    "plaintext CQL": ("cassandra.client_tls", {}, {"probe": replace(GOOD_PROBE, plaintext_answered=True)},
                      "answers CQL in plaintext"),
    "optional client TLS": ("cassandra.client_tls", _yaml("  enabled: true\n  optional: false\naudit",
                                                          "  enabled: true\n  optional: true\naudit"), {},
                            "client_encryption_options.optional: true"),
    "internode none": ("cassandra.internode_tls", _yaml("internode_encryption: all", "internode_encryption: dc"), {},
                       "internode_encryption: dc"),
    "a plaintext storage port": ("cassandra.internode_tls", {}, {"storage": (False, "no TLS: WRONG_VERSION_NUMBER")},
                                 "does not speak TLS"),
    "audit logging off": ("cassandra.audit_log", _yaml("audit_logging_options:\n  enabled: true",
                                                       "audit_logging_options:\n  enabled: false"), {},
                          "audit_logging_options.enabled is not true"),
    "DCL not logged": ("cassandra.audit_log", _yaml("AUTH,DDL,DCL", "AUTH,DDL"), {}, "included_categories: AUTH,DDL"),
}


@pytest.mark.parametrize("plant", list(CASSANDRA_PLANTS))
def test_each_cassandra_violation_fails_its_check(tmp_path: Path, plant: str) -> None:
    check_id, host_change, fact_change, evidence = CASSANDRA_PLANTS[plant]
    results = judged(cassandra_facts(cassandra_host(tmp_path, **host_change), **fact_change), CASSANDRA_CHECKS)
    failing = {k for k, v in results.items() if v.status is Status.FAIL}
    assert failing == set(check_id.split()), results
    outcome = results[check_id.split()[0]]
    assert evidence in " ".join([outcome.evidence, *outcome.findings]), outcome


def test_the_default_password_still_set_but_login_refused(tmp_path: Path) -> None:
    facts = cassandra_facts(cassandra_host(tmp_path), default_login="refused: cassandra is not permitted to log in")
    results = judged(facts, CASSANDRA_CHECKS)
    assert results["cassandra.default_role_login"].status is Status.PASS
    assert results["cassandra.default_role_password"].status is Status.FAIL


def test_a_configuration_changed_after_the_start_is_said_so(tmp_path: Path) -> None:
    tree = cassandra_host(tmp_path, yaml_text=HARDENED_YAML.replace("PasswordAuthenticator", "AllowAllAuthenticator"))
    tree.process(PID, fixture_text("cassandra_cmdline_cass1.txt").splitlines(), uid=60102, name="java", start_ticks=0)
    outcome = runner.judge(cassandra.CHECKS[0], cassandra_facts(tree))
    assert outcome.status is Status.FAIL
    assert "after the node started: these values apply at its next start" in outcome.findings[0]


def test_no_running_node_where_one_is_expected_is_an_error(tmp_path: Path) -> None:
    facts = facts_for(Tree(tmp_path), cassandra={"enabled": True})
    outcome = runner.judge(cassandra.CHECKS[0], facts)
    assert outcome.status is Status.ERROR and "no Cassandra process" in outcome.evidence


# --- web ----------------------------------------------------------------------------------------------

SHOW = "systemctl show -p Environment -p ExecStart iact-web.service"
WSGI = 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "iact_web.settings")\n'
TAG = "<script>iact_audit_0badc0de</script>"
HEADERS = [("Strict-Transport-Security", "max-age=31536000"), ("Content-Security-Policy", "default-src 'self'"),
           ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"),
           ("Set-Cookie", "iact_csrftoken=x; HttpOnly; Path=/; SameSite=Lax; Secure")]
LOGIN = Response(200, HEADERS, '<input type="hidden" name="next" value="&lt;script&gt;iact_audit_0badc0de&lt;'
                 '/script&gt;">')


def web_host(tmp_path: Path, settings: str | None = None, config: str = "[server]\ndebug = false\n") -> Tree:
    tree = Tree(tmp_path)
    site = "/opt/iact-web/venv/lib/python3.11/site-packages"
    tree.venv("/opt/iact-web/venv").write(f"{site}/iact_web/__init__.py", "")
    tree.write(f"{site}/iact_web/wsgi.py", WSGI)
    tree.write(f"{site}/iact_web/settings.py", settings or web_settings_text())
    tree.write("/etc/iact/web.toml", config, 0o640).unit("iact-web.service", "/etc/systemd/system")
    return tree


def web_facts(tree: Tree, *, login: Response = LOGIN, missing: Response | None = None, post: Response | None = None,
              show: str | None = None) -> Facts:
    answers = {SHOW: CommandOutput(0, show or fixture_text("systemctl_show_iact_web.txt"), "")}
    facts = facts_for(tree, Runner(answers), web={"enabled": True, "url": "https://mysql1/"})
    facts.provide("web.login", (login, TAG))
    facts.provide("web.missing", missing or Response(404, HEADERS[:5], "<title>404 Not Found · IACT</title>"))
    facts.provide("web.post", post or Response(403, HEADERS[:5], "<h1>Forbidden</h1>"))
    return facts


WEB_CHECKS = [c for c in runner.CATALOGUE if c.scope is Scope.WEB]


def test_the_deployed_web_layer_passes(tmp_path: Path) -> None:
    results = judged(web_facts(web_host(tmp_path)), WEB_CHECKS)
    assert {k: v.status for k, v in results.items()} == dict.fromkeys(results, Status.PASS), results
    assert results["rnf002.sessions_db"].evidence == "SESSION_ENGINE = 'django.contrib.sessions.backends.db' " \
                                                     "(iact_web.settings)"


SETTINGS = web_settings_text()
WEB_PLANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    "cache sessions": ("rnf002.sessions_db", {"settings": SETTINGS.replace(
        'SESSION_ENGINE = "django.contrib.sessions.backends.db"',
        'SESSION_ENGINE = "django.contrib.sessions.backends.cache"')}, {}, "backends.cache"),
    "a cache server": ("rnf002.cache_backend", {"settings": SETTINGS.replace(
        "django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.memcached.PyMemcacheCache")}, {},
        "PyMemcacheCache"),
    "debug in the configuration": ("web.debug", {"config": "[server]\ndebug = true\n"}, {}, "debug = true"),
    "a debug page": ("web.debug", {}, {"missing": Response(404, [], "You're seeing this error because you have "
                                                            "<code>DEBUG = True</code>")}, "debug page"),
    "no CSRF middleware": ("web.csrf", {"settings": SETTINGS.replace(
        '    "django.middleware.csrf.CsrfViewMiddleware",\n', "")}, {}, "not in MIDDLEWARE"),
    "a post without a token taken": ("web.csrf", {}, {"post": Response(200, [], "form")}, "answered HTTP 200"),
    "no CSP": ("web.headers", {}, {"login": replace(LOGIN, headers=[h for h in HEADERS
                                                                     if h[0] != "Content-Security-Policy"])},
               "Content-Security-Policy missing"),
    "a cookie without Secure": ("web.cookies", {}, {"login": replace(LOGIN, headers=[*HEADERS[:5], (
        "Set-Cookie", "iact_session=x; HttpOnly; Path=/")])}, "cookie iact_session without Secure"),
    "secure cookies off": ("web.cookies", {"config": "[server]\nsecure_cookies = false\n"}, {},
                           "secure_cookies = false"),
    "a reflected script tag": ("web.escaping", {}, {"login": replace(LOGIN, body=f"<p>{TAG}</p>")}, TAG),
}


@pytest.mark.parametrize("plant", list(WEB_PLANTS))
def test_each_web_violation_fails_its_check(tmp_path: Path, plant: str) -> None:
    check_id, host_change, fact_change, evidence = WEB_PLANTS[plant]
    results = judged(web_facts(web_host(tmp_path, **host_change), **fact_change), WEB_CHECKS)
    failing = {k for k, v in results.items() if v.status is Status.FAIL}
    assert failing == {check_id}, results
    outcome = results[check_id]
    assert evidence in " ".join([outcome.evidence, *outcome.findings]), outcome


def test_a_settings_module_from_the_unit_environment(tmp_path: Path) -> None:
    tree = web_host(tmp_path).write("/opt/iact-web/venv/lib/python3.11/site-packages/other_settings.py",
                                    'SESSION_ENGINE = "django.contrib.sessions.backends.file"\n')
    show = fixture_text("systemctl_show_iact_web.txt").replace("PYTHONDONTWRITEBYTECODE=1",
                                                               "DJANGO_SETTINGS_MODULE=other_settings")
    outcome = runner.judge(web.RNF002_CHECKS[0], web_facts(tree, show=show))
    assert outcome.status is Status.FAIL and "other_settings.py" in outcome.evidence


def test_a_settings_module_built_on_the_deployed_one_is_read_through_its_star_import(tmp_path: Path) -> None:
    site = "/opt/iact-web/venv/lib/python3.11/site-packages"
    tree = web_host(tmp_path).write(f"{site}/itest/__init__.py", "").write(
        f"{site}/itest/planted.py", "from iact_web.settings import *  # noqa\nfrom .extra import *\n"
        "SESSION_ENGINE = 'django.contrib.sessions.backends.cache'\n").write(
        f"{site}/itest/extra.py", "CACHES = {'default': {'BACKEND': 'django_redis.cache.RedisCache'}}\n")
    show = fixture_text("systemctl_show_iact_web.txt").replace("PYTHONDONTWRITEBYTECODE=1",
                                                               "DJANGO_SETTINGS_MODULE=itest.planted")
    results = judged(web_facts(tree, show=show), WEB_CHECKS)
    assert {k for k, v in results.items() if v.status is Status.FAIL} == {"rnf002.sessions_db", "rnf002.cache_backend"}
    assert "RedisCache" in results["rnf002.cache_backend"].findings[0]  # rnf-002: allowed mention
    assert results["web.csrf"].status is Status.PASS  # MIDDLEWARE comes from iact_web.settings
    loop = web_host(tmp_path / "loop").write(f"{site}/itest_loop.py", "from itest_loop import *\n")
    looped = fixture_text("systemctl_show_iact_web.txt").replace("PYTHONDONTWRITEBYTECODE=1",
                                                                 "DJANGO_SETTINGS_MODULE=itest_loop")
    outcome = runner.judge(web.RNF002_CHECKS[0], web_facts(loop, show=looped))
    assert outcome.status is Status.ERROR and "deeper than 5" in outcome.evidence


def test_a_page_that_does_not_reflect_the_parameter_cannot_judge_escaping(tmp_path: Path) -> None:
    outcome = runner.judge(web.CHECKS[4], web_facts(web_host(tmp_path), login=replace(LOGIN, body="<p>hi</p>")))
    assert outcome.status is Status.ERROR and "web.reflect_parameter" in outcome.evidence


def test_no_web_layer_is_not_applicable_with_the_reason(tmp_path: Path) -> None:
    outcome = runner.judge(web.RNF002_CHECKS[0], facts_for(Tree(tmp_path)))
    assert outcome.status is Status.NOT_APPLICABLE
    assert outcome.evidence == "no web layer on this host (iact-web.service is not installed)"


def test_a_fact_not_gathered_is_raised_again_not_gathered_twice(tmp_path: Path) -> None:
    facts = facts_for(Tree(tmp_path))
    calls = []

    def gather() -> None:
        calls.append(1)
        raise FactUnavailable("down")

    for _ in range(3):
        with pytest.raises(FactUnavailable, match="down"):
            facts.memo("x", gather)
    assert calls == [1]
