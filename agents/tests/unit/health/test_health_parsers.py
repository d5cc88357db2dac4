"""nodetool and chrony parsers on output captured from the Cassandra 5.0.8 molecule cluster (see the
fixtures' README for which files were derived from the captures)."""

from __future__ import annotations

import json
from dataclasses import asdict

from health_support import FIXTURES, fixture_text
from iact_agents.health.checks import judge_nodes, judge_schema
from iact_agents.health.models import Status
from iact_agents.health.parsers import parse_chrony_tracking, parse_describecluster, parse_nodetool_status


def test_status_of_three_up_nodes_matches_the_golden_file() -> None:
    nodes = parse_nodetool_status(fixture_text("status_3up.txt"))
    golden = json.loads((FIXTURES / "status_3up.golden.json").read_text())
    assert [asdict(n) for n in nodes] == golden
    assert [n.code for n in nodes] == ["UN", "UN", "UN"]


def test_status_with_a_down_node() -> None:
    nodes = parse_nodetool_status(fixture_text("status_1down.txt"))
    assert {n.address: n.code for n in nodes} == {"172.18.0.3": "UN", "172.18.0.2": "UN", "172.18.0.4": "DN"}


def test_status_with_unknown_ownership_and_a_joining_node() -> None:
    nodes = parse_nodetool_status(fixture_text("status_joining.txt"))
    assert [n.owns for n in nodes] == ["?", "?", "?"]
    assert nodes[2].code == "UJ"
    assert nodes[1].load == "120 KiB"


def test_status_ignores_noise_and_empty_output() -> None:
    assert parse_nodetool_status("") == []
    noisy = "Failed to instantiate [ch.qos.logback.classic.LoggerContext]\n" + fixture_text("status_3up.txt")
    assert len(parse_nodetool_status(noisy)) == 3


def test_judge_nodes() -> None:
    ok = judge_nodes(fixture_text("status_3up.txt"), 3, "cass1")
    assert ok.status is Status.OK and ok.summary == "3 nodes UN"
    down = judge_nodes(fixture_text("status_1down.txt"), 3, "cass1")
    assert down.status is Status.CRITICAL
    assert "down: 172.18.0.4" in down.summary
    assert down.detail["nodes"]["172.18.0.4"] == "DN"
    joining = judge_nodes(fixture_text("status_joining.txt"), 3, "cass1")
    assert joining.status is Status.WARNING and "172.18.0.4 UJ" in joining.summary
    missing = judge_nodes(fixture_text("status_3up.txt"), 4, "cass1")
    assert missing.status is Status.CRITICAL and "3 of 4 expected" in missing.summary
    assert judge_nodes("nonsense", 3, "cass1").status is Status.UNKNOWN


def test_describecluster_in_agreement() -> None:
    desc = parse_describecluster(fixture_text("describecluster_agree.txt"))
    assert desc.name == "iact-lab"
    assert desc.schema_versions == {
        "255bf5dc-e97e-357f-918e-23329d81d6be": ["172.18.0.2", "172.18.0.3", "172.18.0.4"]
    }
    assert desc.agreement
    assert judge_schema(fixture_text("describecluster_agree.txt"), "cass1").status is Status.OK


def test_describecluster_with_an_unreachable_node() -> None:
    desc = parse_describecluster(fixture_text("describecluster_unreachable.txt"))
    assert desc.unreachable == ["172.18.0.4"]
    assert not desc.agreement
    result = judge_schema(fixture_text("describecluster_unreachable.txt"), "cass1")
    assert result.status is Status.CRITICAL and "unreachable: 172.18.0.4" in result.summary


def test_describecluster_with_two_schema_versions() -> None:
    desc = parse_describecluster(fixture_text("describecluster_disagree.txt"))
    assert len(desc.versions) == 2 and not desc.unreachable
    assert "2 schema versions" in judge_schema(fixture_text("describecluster_disagree.txt"), "c").summary
    assert judge_schema("", "c").status is Status.UNKNOWN


def test_chrony_tracking() -> None:
    tracking = parse_chrony_tracking(fixture_text("chrony_tracking.txt"))
    assert tracking.leap_status == "Normal"
    assert tracking.system_time_offset_s == -0.000012345
    assert parse_chrony_tracking("").leap_status is None
