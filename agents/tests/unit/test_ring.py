"""`iact-agent cassandra status`: the one judge of `nodetool status` / `describecluster` output (captured)."""

from __future__ import annotations

import json
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from iact_agents.cli import main
from iact_agents.health.checks import CommandFailed, CommandOutput, Runner
from iact_agents.ring import read_ring

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "health"


def runner(status: str, describe: str = "describecluster_agree.txt", rc: int = 0) -> Runner:
    def run(argv: Sequence[str], timeout: float) -> CommandOutput:
        name = status if argv[-1] == "status" else describe
        return CommandOutput(rc, (FIXTURES / name).read_text(encoding="utf-8"), "")
    return run


def test_three_up_is_ok_and_counts() -> None:
    ring = read_ring(["nodetool"], schema=True, timeout=5, run=runner("status_3up.txt"))
    assert ring.judge(expect=3, schema=True) == (True, "ok")
    assert ring.judge(expect=4) == (False, "3 node(s) listed, 4 expected")


def test_a_down_node_is_named_and_another_node_can_still_be_judged() -> None:
    ring = read_ring(["nodetool"], schema=False, timeout=5, run=runner("status_1down.txt"))
    assert ring.judge() == (False, "not up and normal: DN 172.18.0.4")
    assert ring.judge(node="172.18.0.2") == (True, "ok")
    assert ring.judge(node="172.18.0.4") == (False, "172.18.0.4 is DN")
    assert ring.judge(node="10.9.9.9") == (False, "10.9.9.9 is not in the ring")
    assert ring.as_dict(*ring.judge())["not_up_normal"] == ["DN 172.18.0.4"]


@pytest.mark.parametrize("describe", ["describecluster_disagree.txt", "describecluster_unreachable.txt"])
def test_schema_disagreement_or_unreachable_is_not_ok(describe: str) -> None:
    ring = read_ring(["nodetool"], schema=True, timeout=5, run=runner("status_3up.txt", describe))
    ok, reason = ring.judge(schema=True)
    assert not ok and reason.startswith("schema:")
    assert ring.judge(schema=False) == (True, "ok")  # without --schema, only the ring


def test_nodetool_failing_or_missing_or_unreadable_is_an_error_never_an_exception() -> None:
    ring = read_ring(["nodetool"], schema=False, timeout=5, run=runner("status_3up.txt", rc=1))
    assert ring.error.startswith("nodetool status failed")

    def missing(argv: Sequence[str], timeout: float) -> CommandOutput:
        raise CommandFailed("nodetool: program not found")

    assert read_ring(["nodetool"], schema=False, timeout=5, run=missing).error == (
        "nodetool status: nodetool: program not found")
    garbage = read_ring(["nodetool"], schema=False, timeout=5, run=runner("chrony_tracking.txt"))
    assert garbage.judge() == (False, "nodetool status listed no node (output not understood)")


def fake_nodetool(tmp_path: Path, status_fixture: str) -> Path:
    """A real executable standing in for nodetool: prints a captured output per sub-command."""
    tool = tmp_path / "nodetool"
    tool.write_text(
        "#!/bin/sh\n"
        f'case "$1" in status) cat {FIXTURES / status_fixture} ;; '
        f"describecluster) cat {FIXTURES / 'describecluster_agree.txt'} ;; *) exit 2 ;; esac\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    up, down = fake_nodetool(tmp_path / "a", "status_3up.txt"), fake_nodetool(tmp_path / "b", "status_1down.txt")
    assert main(["cassandra", "status", "--json", "--schema", "--expect", "3", "--nodetool", str(up)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["up_normal"] == 3 and doc["schema"]["agreement"]
    assert main(["cassandra", "status", "--nodetool", str(down)]) == 1
    assert "DN 172.18.0.4" in capsys.readouterr().out
    assert main(["cassandra", "status", "--node", "172.18.0.2", "--nodetool", str(down)]) == 0
    assert main(["cassandra", "status", "--nodetool", str(tmp_path / "absent")]) == 3
