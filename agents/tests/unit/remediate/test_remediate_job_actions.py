"""The three job actions (rerun_backup, prune_backups, repair_node): their triggers, the pure functions that judge
their evidence, and their commands, which must be exactly the cron entries the roles install and what the sudoers
rule of roles/health allows."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from iact_agents.errors import ConfigError
from iact_agents.health.models import CheckResult, Status
from iact_agents.remediate import config as remediate_config
from iact_agents.remediate.actions import (
    ALLOW_LIST,
    IACT_AGENT,
    PRUNE_BACKUPS,
    REPAIR_NODE,
    RERUN_BACKUP,
)
from iact_agents.remediate.decide import (
    JobRun,
    Outage,
    last_outage,
    outage_refusal,
    repaired_refusal,
    rerun_refusal,
)

ROOT = Path(__file__).resolve().parents[4]
T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
SIX_H = 6 * 3600.0
HINT_WINDOW_S = 3 * 3600.0


def result(component: str, check: str, status: Status, **detail: Any) -> CheckResult:
    return CheckResult(component, check, "h1", status, "summary", None, detail)


def defaults(role: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()))


def render(text: str, variables: dict[str, Any]) -> str:
    """Render a role default's Jinja expression until no expression is left (defaults refer to defaults)."""
    for _ in range(5):
        if "{{" not in text:
            return text
        text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(variables)
    raise AssertionError(f"unresolved: {text}")


def job_part(argv: tuple[str, ...]) -> list[str]:
    """The ``iact-agent job run ...`` part of an action's argv (after the systemd-run prefix)."""
    return list(argv[argv.index(IACT_AGENT):])


# --- triggers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("res", "fires"), [
    (result("backup", "last_success", Status.WARNING), True),
    (result("backup", "last_success", Status.CRITICAL), True),
    (result("backup", "last_success", Status.OK), False),
    (result("backup", "last_success", Status.UNKNOWN), False),  # job_runs not readable: nothing is known
    (result("jobs", "backup_binlogs", Status.CRITICAL), False),
])
def test_rerun_backup_trigger(res: CheckResult, fires: bool) -> None:
    assert bool(RERUN_BACKUP.fired_by([res])) is fires


@pytest.mark.parametrize(("res", "fires"), [
    (result("disk", "/srv/iact-backup", Status.CRITICAL), True),
    (result("disk", "/", Status.CRITICAL), True),
    (result("disk", "/", Status.WARNING), False),
    (result("disk", "/", Status.UNKNOWN), False),
    (result("service", "/", Status.CRITICAL), False),
])
def test_prune_backups_trigger(res: CheckResult, fires: bool) -> None:
    assert bool(PRUNE_BACKUPS.fired_by([res])) is fires


@pytest.mark.parametrize(("res", "fires"), [
    (result("service", "cassandra.service", Status.OK, state="active"), True),
    (result("service", "cassandra.service", Status.CRITICAL, state="failed"), False),
    (result("service", "cassandra.service", Status.WARNING, state="activating"), False),
    (result("service", "cassandra.service", Status.OK), False),
])
def test_repair_node_trigger(res: CheckResult, fires: bool) -> None:
    assert bool(REPAIR_NODE.fired_by([res])) is fires


# --- commands: the roles' own entries ------------------------------------------------------------------


def cron_job_argv(file: str, name: str) -> tuple[str, list[str]]:
    cron = defaults("cron")
    job = next(j for j in cron["cron_jobs"][file]["jobs"] if j["name"] == name)
    line = (f"iact-agent job run --name {job['name']} --timeout {job['timeout']} --mysql-defaults"
            f" {job['mysql_defaults']} -- {job['command']}")
    return str(job["user"]), shlex.split(render(line, cron))


@pytest.mark.parametrize(("action", "file"), [(RERUN_BACKUP, "iact-backup"), (PRUNE_BACKUPS, "iact-backup-target")])
def test_job_actions_run_the_cron_entry_of_roles_cron(action: Any, file: str) -> None:
    user, argv = cron_job_argv(file, action.target)
    assert user == "root"
    assert job_part(action.argv)[1:] == argv[1:]
    assert not action.cron_file or action.cron_file == f"/etc/cron.d/{file}"


def test_repair_node_runs_the_weekly_repair_of_roles_cassandra() -> None:
    cas = defaults("cassandra")
    template = (ROOT / "roles" / "cassandra" / "templates" / "etc" / "cron.d" / "cassandra-repair.j2").read_text()
    assert "root {{ cassandra_repair_wrapper | trim }} nodetool repair -pr" in template
    argv = shlex.split(render(cas["cassandra_repair_wrapper"], cas).strip() + " nodetool repair -pr")
    ours = job_part(REPAIR_NODE.argv)
    assert ours[0] == argv[0] == IACT_AGENT
    # nodetool by its full path (sudo's secure_path would find the same /usr/local/bin/nodetool)
    assert ours[1:-3] == argv[1:-3] and ours[-3:] == ["/usr/local/bin/nodetool", "repair", "-pr"]
    assert argv[-3:] == ["nodetool", "repair", "-pr"]


def test_the_hint_window_is_the_one_roles_cassandra_configures() -> None:
    # roles/cassandra sets max_hint_window only through cassandra_yaml_extra (else Cassandra's default, 3h);
    # roles/health renders that value into remediate.toml
    cas = ROOT / "roles" / "cassandra"
    assert "max_hint_window" in (cas / "vars" / "main.yml").read_text()
    assert "max_hint_window" not in (cas / "templates" / "etc" / "cassandra" / "cassandra.yaml.j2").read_text()
    health = defaults("health")["health_remediate_max_hint_window"]
    assert "cassandra_yaml_extra" in health and "'3h'" in health
    template = (ROOT / "roles" / "health" / "templates" / "etc" / "iact" / "remediate.toml.j2").read_text()
    assert "max_hint_window = {{ health_remediate_max_hint_window | string | to_json }}" in template
    assert remediate_config.load(None, environ={}).cassandra.hint_window_s == HINT_WINDOW_S


@pytest.mark.parametrize(("text", "seconds"), [
    ("3h", 10800.0), ("10800000ms", 10800.0), ("180m", 10800.0), ("1d", 86400.0), ("3H", 10800.0),
    (" 2h ", 7200.0), ("90s", 90.0), ("5000000us", 5.0),
])
def test_durations(text: str, seconds: float) -> None:
    assert remediate_config.duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "3", "3 h", "3.5h", "-3h", "3hours", "h", "10800000"])
def test_bad_durations_name_the_field(tmp_path: Path, text: str) -> None:
    assert isinstance(remediate_config.duration_s(text), str)
    path = tmp_path / "r.toml"
    path.write_text(f'[cassandra]\nmax_hint_window = "{text}"\n')
    with pytest.raises(ConfigError, match="max_hint_window"):
        remediate_config.load(path, environ={})


@given(st.text(max_size=30))
def test_duration_is_total(text: str) -> None:
    value = remediate_config.duration_s(text)
    assert isinstance(value, str) or value >= 0


def test_sudoers_allows_exactly_the_commands_of_the_enabled_actions() -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "\n".join(f"# {line}" for line in str(text).splitlines())
    env.filters["extract"] = lambda key, mapping: mapping[key]
    path = ROOT / "roles" / "health" / "templates" / "etc" / "sudoers.d" / "iact-remediate.j2"
    template = env.from_string(path.read_text())
    for enabled in (list(ALLOW_LIST), ["rerun_backup"], ["restart_collector", "repair_node"]):
        text = template.render(ansible_managed="managed", health_remediate_actions=enabled)
        alias = next(ln for ln in text.splitlines() if ln.startswith("Cmnd_Alias IACT_REMEDIATE = "))
        allowed = alias.removeprefix("Cmnd_Alias IACT_REMEDIATE = ").split(", ")
        assert allowed == [shlex.join(ALLOW_LIST[a].argv) for a in enabled]
        # nothing sudoers reads specially inside a command (it would need a backslash)
        assert not any(ch in command for command in allowed for ch in "=:,\\")
        assert "iact ALL = (root) NOPASSWD: IACT_REMEDIATE" in text


def test_job_actions_start_a_transient_unit_and_no_shell() -> None:
    for action in (RERUN_BACKUP, PRUNE_BACKUPS, REPAIR_NODE):
        assert action.argv[:3] == ("/usr/bin/systemd-run", "--unit", f"iact-remediate-{action.target}".replace(
            "_", "-"))
        assert action.then == "started" and "sh" not in action.argv
        assert all(a == shlex.quote(a) for a in action.argv)  # the sudoers rule lists them as they are


# --- rerun_backup --------------------------------------------------------------------------------------


def run(status: str, started: datetime = T0 - timedelta(hours=2), run_id: int = 7) -> JobRun:
    return JobRun(run_id, started, started + timedelta(minutes=3), status, 1 if status == "failure" else 0, "")


@pytest.mark.parametrize(("last", "decided", "upcoming", "why"), [
    (run("failure"), False, T0 + timedelta(hours=22), None),
    (run("failure"), False, T0 + timedelta(hours=6, seconds=1), None),
    (run("failure"), False, T0 + timedelta(hours=6), "not more than 6 h"),
    (run("failure"), False, T0 + timedelta(hours=1), "1.0 h from now"),
    (run("failure"), True, T0 + timedelta(hours=22), "already decided on the failed run 7"),
    (run("success"), False, T0 + timedelta(hours=22), "is success, not a failure"),
    (run("running"), False, T0 + timedelta(hours=22), "is running, not a failure"),  # e.g. the re-run itself
    (None, False, T0 + timedelta(hours=22), "no run of the job is recorded"),
    (run("failure"), False, "/etc/cron.d/iact-backup: No such file or directory", "not known: /etc/cron.d"),
    (run("failure"), False, None, "cron has no next run"),
])
def test_rerun_refusal(last: JobRun | None, decided: bool, upcoming: datetime | str | None, why: str | None) -> None:
    refusal = rerun_refusal(last, decided, upcoming, T0, SIX_H)
    assert refusal is None if why is None else (refusal is not None and why in refusal)


# --- repair_node ---------------------------------------------------------------------------------------


def samples(*ups: bool, every_min: int = 5, start: datetime = T0) -> list[tuple[datetime, bool]]:
    return [(start + timedelta(minutes=every_min * i), up) for i, up in enumerate(ups)]


def test_last_outage_of_a_series() -> None:
    series = samples(True, False, False, False, True, True)
    outage = last_outage("s", series)
    assert outage == Outage("s", T0 + timedelta(minutes=5), T0 + timedelta(minutes=15), T0 + timedelta(minutes=20),
                            False)
    assert outage.down_s == 600
    assert last_outage("s", list(reversed(series))) == outage  # order of reading does not matter


@pytest.mark.parametrize("ups", [(), (True, True), (True, False), (False,), (True, False, True, False)])
def test_no_ended_outage(ups: tuple[bool, ...]) -> None:
    assert last_outage("s", samples(*ups)) is None


def test_only_the_last_outage_counts_and_an_open_start_is_flagged() -> None:
    outage = last_outage("s", samples(False, False, True, False, True))
    assert outage is not None and outage.down_s == 0 and outage.back_at == T0 + timedelta(minutes=20)
    first = last_outage("s", samples(False, False, True))
    assert first is not None and first.open_start and first.down_s == 300


def hours_down(source: str, hours: float) -> Outage:
    back = T0 - timedelta(minutes=10)
    return Outage(source, back - timedelta(minutes=5) - timedelta(hours=hours), back - timedelta(minutes=5), back,
                  False)


def test_outage_refusal_takes_the_longest_view() -> None:
    own, peer = hours_down("own", 0.5), hours_down("peer", 4)  # e.g. the host was off: its own agent saw little
    longest, why = outage_refusal([own, None, peer], HINT_WINDOW_S)
    assert longest is peer and why is None
    longest, why = outage_refusal([own, hours_down("peer", 3)], HINT_WINDOW_S)
    assert longest is not None and why is not None and "within the hint window (3 h)" in why
    assert outage_refusal([None, None], HINT_WINDOW_S) == (None, "no ended outage of this node in the health results"
                                                                 " read")


def test_repaired_refusal() -> None:
    outage = hours_down("peer", 4)
    before = JobRun(1, outage.back_at - timedelta(hours=5), None, "success", 0, "")
    failed = JobRun(2, outage.back_at + timedelta(minutes=1), None, "failure", 1, "")
    assert repaired_refusal(outage, [before, failed], decided=False) is None
    assert "already decided" in (repaired_refusal(outage, [before], decided=True) or "")
    for status in ("running", "success"):
        after = JobRun(3, outage.back_at + timedelta(minutes=1), None, status, None, "")
        assert f"repair run 3 ({status})" in (repaired_refusal(outage, [after], decided=False) or "")


@given(st.lists(st.tuples(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                       timezones=st.just(UTC)), st.booleans()), max_size=40))
def test_last_outage_is_total_and_consistent(series: list[tuple[datetime, bool]]) -> None:
    outage = last_outage("s", series)
    if outage is None:
        return
    assert outage.down_from <= outage.down_until <= outage.back_at and outage.down_s >= 0
    newest = max(at for at, _ in series)
    assert any(at == newest and up for at, up in series)
    assert any(at == outage.down_until and not up for at, up in series)


# --- roles/health ----------------------------------------------------------------------------------------


def test_the_roles_allow_list_is_the_agents() -> None:
    role_vars = yaml.safe_load((ROOT / "roles" / "health" / "vars" / "main.yml").read_text())
    assert role_vars["__health_remediate_allow_list"] == list(ALLOW_LIST)
    spec = yaml.safe_load((ROOT / "roles" / "health" / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    assert options["health_remediate_actions"]["choices"] == list(ALLOW_LIST)


def test_the_rendered_configuration_of_a_cassandra_node_loads(tmp_path: Path) -> None:
    """remediate.toml.j2 as the role renders it (Ansible's filters by their plain equivalents), read by the agent."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["comment"] = lambda text: f"# {text}"
    env.filters["to_json"] = json.dumps
    env.filters["bool"] = bool
    env.tests["eq"] = lambda a, b: a == b
    health = defaults("health")
    variables = {
        "ansible_managed": "managed", "inventory_hostname": "cass1", "health_config_path": "/etc/iact/health.toml",
        "groups": {"cassandra": ["cass1", "cass2", "cass3"]}, "cassandra_listen_address": "10.0.0.21",
        "health_remediate_dry_run": True, "health_remediate_actions": ["restart_cassandra", "repair_node",
                                                                       "rerun_backup"],
        "health_remediate_per_hour": health["health_remediate_per_hour"],
        "health_remediate_per_day": health["health_remediate_per_day"],
        "health_remediate_budgets": health["health_remediate_budgets"],
        "health_remediate_cassandra_up_timeout_s": health["health_remediate_cassandra_up_timeout_s"],
        "health_remediate_max_hint_window": render(health["health_remediate_max_hint_window"],
                                                   {"cassandra_yaml_extra": {"max_hint_window": "90m"}}),
    }
    path = ROOT / "roles" / "health" / "templates" / "etc" / "iact" / "remediate.toml.j2"
    out = tmp_path / "remediate.toml"
    out.write_text(env.from_string(path.read_text()).render(variables))
    cfg = remediate_config.load(out, environ={})
    assert cfg.actions == ["restart_cassandra", "repair_node", "rerun_backup"] and cfg.dry_run
    assert cfg.budget_of("rerun_backup") == remediate_config.Budget(per_hour=1, per_day=1)
    assert cfg.budget_of("restart_cassandra") == remediate_config.Budget(per_hour=1, per_day=3)
    assert cfg.cassandra.hint_window_s == 5400 and cfg.cassandra.peers == ["cass2", "cass3"]
    assert render(health["health_remediate_max_hint_window"], {}) == "3h"
