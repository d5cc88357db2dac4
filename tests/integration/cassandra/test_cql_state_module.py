"""roles/cassandra's CQL module (library/cassandra_cql_state.py) against the real cluster: check mode changes
nothing and lists the statements a run would issue; drift of a table option and of a permission is converged
back, a second run is a no-op; what cannot be altered (primary key, column type) fails, naming it.

The module runs on the first node through Ansible (as the role runs it, with root's cqlshrc there); the test
keyspace and role are its own and are dropped before and after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cassandra_testlib import Node

LIBRARY = Path(__file__).resolve().parents[3] / "roles/cassandra/library"
KS = "iact_itest_cqlstate"
ROLE = "iact_itest_cqlstate_reader"


@dataclass
class Target:
    node: Node
    session: Any
    replication: dict[str, str]

    def run(self, check: bool, **declared: Any) -> dict[str, Any]:
        """The module's result on the node; a failure is a result too (`failed`, `msg`)."""
        args = json.dumps({"login_file": "/root/.cassandra/cqlshrc", **declared})
        try:
            result = dict(self.node.host.ansible("cassandra_cql_state", args, check=check, become=True))
        except self.node.host.ansible.AnsibleException as exc:
            return {**exc.result, "failed": True}
        # testinfra reads `ansible --tree`'s file, which keeps a failed module's own keys (msg, changed) but not
        # `failed` (stack run 11): the module's every success carries `statements` (exit_json), a failure never.
        if "statements" not in result:
            result["failed"] = True
        return result

    def ttl(self) -> int:
        row = self.session.execute("SELECT default_time_to_live FROM system_schema.tables "
                                   "WHERE keyspace_name = %s AND table_name = 't'", [KS]).one()
        return int(row.default_time_to_live)


def table(ttl: int = 0, value_type: str = "text", key: str = "k") -> dict[str, Any]:
    return {"keyspace": KS, "name": "t", "partition_key": [key],
            "columns": [{"name": "k", "type": "text"}, {"name": "v", "type": value_type}],
            "options": {"default_time_to_live": ttl}}


@pytest.fixture
def target(nodes: list[Node], session_on, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    monkeypatch.setenv("ANSIBLE_LIBRARY", str(LIBRARY))
    session = session_on(nodes[0])
    dcs = {row.data_center for row in session.execute("SELECT data_center FROM system.peers")}
    dcs.add(session.execute("SELECT data_center FROM system.local").one().data_center)
    replication = {"class": "NetworkTopologyStrategy", **{dc: "3" for dc in sorted(dcs)}}
    session.execute(f"DROP KEYSPACE IF EXISTS {KS}")
    session.execute(f"DROP ROLE IF EXISTS {ROLE}")
    yield Target(nodes[0], session, replication)
    session.execute(f"DROP KEYSPACE IF EXISTS {KS}")
    session.execute(f"DROP ROLE IF EXISTS {ROLE}")


def test_check_mode_lists_the_statements_and_changes_nothing(target: Target) -> None:
    declared = {"keyspaces": [{"name": KS, "replication": target.replication}], "tables": [table()]}
    result = target.run(check=True, **declared)
    assert result["changed"] is True, result
    assert any(s.startswith(f'CREATE KEYSPACE IF NOT EXISTS "{KS}"') for s in result["statements"]), result
    assert any(s.startswith(f'CREATE TABLE IF NOT EXISTS "{KS}"."t"') for s in result["statements"]), result
    assert target.session.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                                  [KS]).one() is None

    created = target.run(check=False, **declared)
    assert created["changed"] is True and created["keyspaces_changed"] == [KS], created
    again = target.run(check=False, **declared)
    assert again["changed"] is False and again["statements"] == [], again


def test_table_option_drift_is_shown_in_check_mode_then_converged(target: Target) -> None:
    declared = {"keyspaces": [{"name": KS, "replication": target.replication}], "tables": [table(ttl=3600)]}
    assert target.run(check=False, **declared)["changed"] is True
    target.session.execute(f"ALTER TABLE {KS}.t WITH default_time_to_live = 100")  # drift made by hand

    shown = target.run(check=True, **declared)
    assert shown["statements"] == [f'ALTER TABLE "{KS}"."t" WITH default_time_to_live = 3600'], shown
    assert target.ttl() == 100

    fixed = target.run(check=False, **declared)
    assert fixed["changed"] is True and target.ttl() == 3600, fixed
    assert target.run(check=True, **declared)["changed"] is False


def test_an_extra_permission_is_revoked_and_a_missing_one_granted(target: Target) -> None:
    base = {"keyspaces": [{"name": KS, "replication": target.replication}], "tables": [table()],
            "roles": [{"name": ROLE, "login": False}]}
    want = [{"role": ROLE, "grants": [{"permission": "SELECT", "resource": f"KEYSPACE {KS}"}]}]
    assert target.run(check=False, permissions=want, **base)["changed"] is True
    target.session.execute(f"GRANT MODIFY ON KEYSPACE {KS} TO {ROLE}")  # drift made by hand
    target.session.execute(f"REVOKE SELECT ON KEYSPACE {KS} FROM {ROLE}")

    shown = target.run(check=True, permissions=want, **base)
    assert sorted(shown["statements"]) == sorted([
        f'GRANT SELECT ON KEYSPACE {KS} TO "{ROLE}"', f'REVOKE MODIFY ON KEYSPACE {KS} FROM "{ROLE}"']), shown

    assert target.run(check=False, permissions=want, **base)["changed"] is True
    have = {(r.permission, r.resource) for r in target.session.execute(f"LIST ALL PERMISSIONS OF {ROLE} NORECURSIVE")}
    assert have == {("SELECT", f"<keyspace {KS}>")}


@pytest.mark.parametrize(("drifted", "message"), [
    (table(key="v"), "exists with a different primary key"),
    (table(value_type="int"), "declared int; change it by hand"),
])
def test_what_cannot_be_altered_fails_naming_it(target: Target, drifted: dict[str, Any], message: str) -> None:
    keyspaces = [{"name": KS, "replication": target.replication}]
    assert target.run(check=False, keyspaces=keyspaces, tables=[table()])["changed"] is True
    result = target.run(check=True, keyspaces=keyspaces, tables=[drifted])
    assert result.get("failed") is True and message in result["msg"], result
