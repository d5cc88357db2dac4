"""The allow-list fires on the health results it names and nothing else; the configuration only picks from it."""

from __future__ import annotations

import io
from argparse import Namespace
from pathlib import Path
from typing import Any

import iact_agents.remediate
import pytest
from iact_agents.errors import ConfigError
from iact_agents.health.models import CheckResult, Status
from iact_agents.remediate import config as remediate_config
from iact_agents.remediate.actions import ALLOW_LIST, RESTART_CASSANDRA, RESTART_COLLECTOR
from iact_agents.remediate.cli import cmd_run

EXAMPLE = Path(iact_agents.remediate.__file__).with_name("remediate.example.toml")


def result(component: str, check: str, status: Status, **detail: Any) -> CheckResult:
    return CheckResult(component, check, "h1", status, "summary", None, detail)


def test_the_allow_list_is_exactly_the_five_actions() -> None:
    assert set(ALLOW_LIST) == {"restart_collector", "restart_cassandra", "rerun_backup", "prune_backups", "repair_node"}
    assert RESTART_COLLECTOR.scope == "host" and RESTART_CASSANDRA.scope == "cluster"
    assert RESTART_CASSANDRA.command(["sudo", "-n"]) == [
        "sudo", "-n", "/usr/bin/systemctl", "restart", "cassandra.service"]


@pytest.mark.parametrize(("res", "fires"), [
    (result("service", "iact-collector.service", Status.CRITICAL, state="failed"), True),
    # stopped on purpose (systemctl stop: maintenance, the DR drill, a rolling restart): never started again
    (result("service", "iact-collector.service", Status.CRITICAL, state="inactive"), False),
    # a crash loop under Restart= is critical while "activating": systemd is restarting it already
    (result("service", "iact-collector.service", Status.CRITICAL, state="activating"), False),
    (result("service", "iact-collector.service", Status.WARNING, state="activating"), False),
    (result("service", "iact-collector.service", Status.WARNING, state="inactive"), False),
    (result("service", "iact-collector.service", Status.OK, state="active"), False),
    (result("collector", "lag", Status.CRITICAL), True),  # stuck: lines wait, nothing committed
    (result("collector", "lag", Status.WARNING), False),
    (result("collector", "backlog", Status.CRITICAL), False),
    (result("service", "cassandra.service", Status.CRITICAL, state="failed"), False),
])
def test_collector_triggers(res: CheckResult, fires: bool) -> None:
    assert bool(RESTART_COLLECTOR.fired_by([res])) is fires


@pytest.mark.parametrize(("res", "fires"), [
    (result("service", "cassandra.service", Status.CRITICAL, state="failed"), True),
    (result("service", "cassandra.service", Status.CRITICAL, state="inactive"), False),  # stopped on purpose
    (result("service", "cassandra.service", Status.CRITICAL, state="activating"), False),  # systemd restarts it
    (result("service", "cassandra.service", Status.CRITICAL), False),  # no state: not understood, no action
    (result("cassandra", "nodes_up", Status.CRITICAL), False),  # another node down is not ours to restart
])
def test_cassandra_triggers(res: CheckResult, fires: bool) -> None:
    assert bool(RESTART_CASSANDRA.fired_by([res])) is fires


def test_defaults_are_dry_and_do_nothing() -> None:
    cfg = remediate_config.load(None, environ={})
    assert cfg.dry_run and cfg.actions == []
    assert cfg.budget_of("restart_collector") == remediate_config.Budget(per_hour=1, per_day=3)


def test_example_is_valid_and_complete() -> None:
    cfg = remediate_config.load(EXAMPLE, environ={})
    assert cfg.actions == ["restart_collector", "restart_cassandra"] and cfg.dry_run
    assert cfg.budget_of("restart_cassandra").per_day == 2 and cfg.budget_of("restart_collector").per_day == 3
    text = EXAMPLE.read_text()
    assert all(f"[{name}" in text or f"{name} =" in text for name in remediate_config.RemediateConfig.model_fields)


def test_precedence_file_env_override(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('dry_run = true\nactions = ["restart_collector"]\n')
    assert remediate_config.load(path, environ={}).dry_run
    env = {"IACT_REMEDIATE__DRY_RUN": "false", "IACT_REMEDIATE__BUDGET__PER_DAY": "5"}
    cfg = remediate_config.load(path, environ=env)
    assert not cfg.dry_run and cfg.budget.per_day == 5
    assert remediate_config.load(path, environ=env, overrides={"dry_run": True}).dry_run


@pytest.mark.parametrize(("text", "field"), [
    ('actions = ["rm_rf"]', "not in the allow-list: rm_rf"),
    ('[budgets.drop_keyspace]\nper_hour = 1', "budgets: not in the allow-list"),
    ('actions = ["restart_cassandra"]', "cassandra.self_address is required"),
    ('[budget]\nper_hour = 4\nper_day = 3', "per_hour must not exceed per_day"),
    ('command = "rm -rf /"', "command"),
])
def test_bad_configs_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=field):
        remediate_config.load(path, environ={})


def test_check_config_reads_the_health_config_too(tmp_path: Path) -> None:
    health = tmp_path / "health.toml"
    health.write_text('host = "h1"\n')
    path = tmp_path / "r.toml"
    path.write_text(f'health_config = "{health}"\nactions = ["restart_collector"]\ndry_run = false\n')
    out = io.StringIO()
    assert cmd_run(Namespace(config=path, check_config=True, dry_run=False, json=False), out) == 0
    assert out.getvalue() == f"{path}: OK (actions: restart_collector; dry_run: false)\n"
    health.write_text('hots = "typo"\n')
    with pytest.raises(ConfigError, match="hots"):
        cmd_run(Namespace(config=path, check_config=True, dry_run=False, json=False), out)
