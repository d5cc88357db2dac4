"""One run of the whole catalogue: applicability, errors, exit codes, and proof that the audit only reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import iact_agents.audit as audit_package
import pytest
from audit_support import Runner, Tree, facts_for, snapshot
from iact_agents.audit import host as host_module
from iact_agents.audit import runner
from iact_agents.audit.host import READ_ONLY_COMMANDS, HostView, NotAllowed
from iact_agents.audit.model import Check, Result, Scope, Severity, Status, failed, passed
from test_audit_host_checks import host_facts, lab_host
from test_audit_service_checks import cassandra_facts, cassandra_host, mysql_facts, mysql_host, web_facts, web_host


def test_the_catalogue_has_the_eight_rnf002_checks_first_and_unique_ids() -> None:
    ids = [c.id for c in runner.CATALOGUE]
    assert len(ids) == len(set(ids))
    assert ids[:8] == ["rnf002.redis", "rnf002.prometheus", "rnf002.grafana", "rnf002.celery", "rnf002.smtp_relay",
                       "rnf002.sessions_db", "rnf002.cache_backend", "rnf002.schedulers"]
    assert all(c.reference and c.title and re.fullmatch(r"[a-z0-9]+\.[a-z0-9_]+", c.id) for c in runner.CATALOGUE)
    assert [c.id for c in runner.catalogue(["mysql"])] == [c.id for c in runner.CATALOGUE if c.id.startswith("mysql.")]
    assert [c.id for c in runner.catalogue(["web.csrf"])] == ["web.csrf"]
    assert runner.catalogue(["nothing"]) == []


def test_a_plain_host_passes_and_every_service_check_is_not_applicable_with_a_reason(tmp_path: Path) -> None:
    run = runner.run_audit(host_facts(lab_host(tmp_path)))
    by_status = {s: [r for r in run.results if r.status is s] for s in Status}
    assert {r.id for r in by_status[Status.PASS]} == {c.id for c in runner.CATALOGUE if c.scope is Scope.HOST}
    assert not by_status[Status.FAIL] and not by_status[Status.ERROR]
    assert all(r.evidence.startswith("no ") and "on this host" in r.evidence for r in by_status[Status.NOT_APPLICABLE])
    assert (run.outcome, run.exit_code, run.host) == ("passed", 0, "testhost")
    assert run.counts == {"pass": 9, "fail": 0, "not_applicable": 26, "error": 0}


def _check(check_id: str, severity: Severity, judge) -> Check:
    return Check(check_id, "t", "r", severity, Scope.HOST, judge)


def test_outcome_and_exit_code(tmp_path: Path) -> None:
    facts = facts_for(Tree(tmp_path))

    def broken(_: object) -> object:
        raise KeyError("boom")

    medium_fail = _check("x.medium", Severity.MEDIUM, lambda f: failed("medium", ["one"]))
    high_fail = _check("x.high", Severity.HIGH, lambda f: failed("high"))
    ok = _check("x.ok", Severity.CRITICAL, lambda f: passed("fine"))
    run = runner.run_audit(facts, [ok, medium_fail])
    assert (run.outcome, run.exit_code) == ("passed", 0)
    run = runner.run_audit(facts, [ok, medium_fail, _check("x.broken", Severity.LOW, broken)])
    assert (run.outcome, run.exit_code) == ("incomplete", 3)
    assert run.results[-1].evidence == "the check broke: KeyError: 'boom'"
    run = runner.run_audit(facts, [ok, high_fail, _check("x.broken", Severity.LOW, broken)])
    assert (run.outcome, run.exit_code) == ("failed", 1)
    assert [r.id for r in run.failed_high] == ["x.high"]


def test_evidence_and_findings_are_bounded_one_line_texts() -> None:
    check = _check("x.long", Severity.LOW, lambda f: None)
    result = Result.of(check, failed("a\nb" * 3000, [f"item {i}\n" + "\udcff" * 400 for i in range(80)]))
    assert len(result.evidence.encode()) <= 2000 and "\n" not in result.evidence
    assert len(result.findings) == 51 and result.findings[-1] == "... and 30 more"
    assert all(len(f.encode()) <= 300 and "\udcff" not in f for f in result.findings)


# --- the audit only reads ------------------------------------------------------------------------------


def _everything(tmp_path: Path) -> list:
    """Facts of a host with every part of the stack (each part in its own tree)."""
    return [host_facts(lab_host(tmp_path / "host")), mysql_facts(mysql_host(tmp_path / "mysql")),
            cassandra_facts(cassandra_host(tmp_path / "cassandra")), web_facts(web_host(tmp_path / "web"))]


def test_a_whole_run_changes_no_file_of_the_host(tmp_path: Path) -> None:
    all_facts = _everything(tmp_path)
    before = snapshot(tmp_path)
    for facts in all_facts:
        run = runner.run_audit(facts)
        assert not [r for r in run.results if r.status is Status.ERROR], run.results
    assert snapshot(tmp_path) == before


def test_only_read_only_commands_can_run(tmp_path: Path) -> None:
    recorder = Runner()
    view = HostView(tmp_path, recorder)
    for argv in (["rm", "-rf", "/"], ["systemctl", "restart", "x"], ["systemctl"], ["my_print_defaults"],
                 ["/usr/bin/systemd-analyze", "verify"], ["sh", "-c", "systemctl show"], []):
        with pytest.raises(NotAllowed):
            view.run(argv)
    assert recorder.calls == []
    view.run(["/usr/bin/systemctl", "show", "-p", "ExecStart", "x.service"])
    assert recorder.calls == [["/usr/bin/systemctl", "show", "-p", "ExecStart", "x.service"]]


def test_every_command_the_catalogue_asks_for_is_a_read_only_one(tmp_path: Path) -> None:
    recorder = Runner()
    for facts in _everything(tmp_path):
        facts.host._run = recorder  # the same view, answering nothing: every command it asks for is recorded
        facts._memo = {k: v for k, v in facts._memo.items() if not k.startswith(("units.", "mysql.options", "web.d"))}
        runner.run_audit(facts)
    asked = {tuple(c[:2]) for c in recorder.calls}
    assert asked == {("systemd-analyze", "security"), ("my_print_defaults", "--mysqld"), ("systemctl", "show")}
    assert all(host_module.allowed(c) for c in recorder.calls)
    assert set(READ_ONLY_COMMANDS) == {"systemd-analyze", "systemctl", "my_print_defaults"}


# Methods that change files or run programs, whatever their receiver; and the read-only part of ``os``.
WRITES = {"write_text", "write_bytes", "touch", "mkdir", "makedirs", "chmod", "chown", "lchown", "unlink", "rmdir",
          "removedirs", "rename", "renames", "symlink_to", "hardlink_to", "truncate", "remove", "symlink", "link",
          "system", "popen", "replace_atomically", "write_all_and_sync", "rmtree", "copyfile", "copy2", "move",
          "execute", "executemany"}
OS_READS = {"stat", "lstat", "listdir", "scandir", "readlink", "sysconf", "access", "fspath", "getuid", "getgid",
            "geteuid"}
# Who may call what: the recording code writes MySQL rows and the report files; the probes run queries whose
# text test_the_statements_sent_to_the_databases_only_read checks.
ALLOWED = {"report.py": {"replace_atomically"}, "store.py": {"execute", "executemany"},
           "mariadb.py": {"execute"}, "cassandra.py": {"execute"}}


def _writes(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            on_os = isinstance(func.value, ast.Name) and func.value.id == "os"
            if (on_os and func.attr not in OS_READS) or func.attr in WRITES:
                found.append(func.attr)
        elif isinstance(func, ast.Name) and func.id in WRITES:
            found.append(func.id)
        if isinstance(func, ast.Name) and func.id == "open":
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"),
                                                                None)
            if mode is not None and not (isinstance(mode, ast.Constant) and set(str(mode.value)) <= {"r", "b"}):
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("module", sorted(p.name for p in Path(audit_package.__file__).parent.glob("*.py")))
def test_the_audit_code_has_no_way_to_write(module: str) -> None:
    tree = ast.parse((Path(audit_package.__file__).parent / module).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"subprocess", "shutil", "tempfile"}, imported
    assert not set(_writes(tree)) - ALLOWED.get(module, set()), _writes(tree)


def test_the_write_guard_sees_writes(tmp_path: Path) -> None:
    sample = "import os\nfrom pathlib import Path\nos.replace('a', 'b')\nPath('x').write_text('y')\n" \
             "open('f', 'w')\nopen('g')\nos.stat('h')\n"
    assert _writes(ast.parse(sample)) == ["replace", "write_text", "open('f', 'w')"]


def test_the_statements_sent_to_the_databases_only_read() -> None:
    folder = Path(audit_package.__file__).parent
    for module in ("mariadb.py", "cassandra.py"):
        tree = ast.parse((folder / module).read_text())
        texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                 and re.match(r"^(SELECT|SHOW|SET|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|GRANT|TRUNCATE)\b", n.value)]
        assert texts and all(re.match(r"^(SELECT|SHOW|SET SESSION TRANSACTION READ ONLY)\b", t) for t in texts), texts
