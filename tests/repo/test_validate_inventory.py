"""playbooks/validate_inventory.yml against bad inventories: each fails, naming what to fix.

These run ansible-playbook for real; the validation only uses `assert` (no connection to any host),
so the inventories name hosts that do not exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "validate_inventory.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
GOOD_SECRET = "Vq3jz7Lr0pXc9TbN2mWd5s"

GOOD_VARS = {
    "health_mysql_password": GOOD_SECRET,
    "audit_mysql_password": GOOD_SECRET,
    "cassandra_admin_password": GOOD_SECRET,
    "cassandra_collector_password": GOOD_SECRET,
    "cassandra_reader_password": GOOD_SECRET,
    "cassandra_jmx_password": GOOD_SECRET,
}


def inventory(cass_hosts: dict[str, dict[str, str]], mysql: bool = True, extra: dict[str, str] | None = None) -> str:
    lines = ["all:", "  vars:"]
    for k, v in {**GOOD_VARS, **(extra or {})}.items():
        lines.append(f"    {k}: {v!r}")
    lines += ["  children:", "    cassandra:", "      hosts:"]
    for name, hv in cass_hosts.items():
        lines.append(f"        {name}:" + ("" if hv else " {}"))
        for k, v in hv.items():
            lines.append(f"          {k}: {v}")
    if mysql:
        lines += ["    mysql:", "      hosts:", "        db1: {}"]
    return "\n".join(lines) + "\n"


def run(tmp_path: Path, text: str, playbook: Path = PLAYBOOK) -> subprocess.CompletedProcess[str]:
    inv = tmp_path / "hosts.yml"
    inv.write_text(textwrap.dedent(text))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inv), str(playbook)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


THREE = {"c1": {}, "c2": {}, "c3": {}}


def test_good_inventory_passes(tmp_path: Path) -> None:
    result = run(tmp_path, inventory(THREE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_cassandra_nodes_are_refused(tmp_path: Path) -> None:
    result = run(tmp_path, inventory({"c1": {}, "c2": {}}))
    assert result.returncode != 0
    assert "Cassandra datacenter 'dc1' has 2 node(s)" in result.stdout


def test_each_datacenter_needs_three_nodes(tmp_path: Path) -> None:
    hosts = {**THREE, "d1": {"cassandra_dc": "dc2"}, "d2": {"cassandra_dc": "dc2"}}
    result = run(tmp_path, inventory(hosts))
    assert result.returncode != 0
    assert "datacenter 'dc2' has 2 node(s)" in result.stdout


def test_missing_mysql_group_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, inventory(THREE, mysql=False))
    assert result.returncode != 0
    assert "Inventory group 'mysql' is empty or missing" in result.stdout


@pytest.mark.parametrize("value", ["changeme", "short", "CASSANDRA", "{{ vault_x }}"])
def test_placeholder_secret_is_refused_by_name_without_its_value(tmp_path: Path, value: str) -> None:
    result = run(tmp_path, inventory(THREE, extra={"cassandra_reader_password": value}))
    assert result.returncode != 0
    assert "Secret(s) cassandra_reader_password on c1" in result.stdout
    assert GOOD_SECRET not in result.stdout


def test_renamed_variable_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, inventory(THREE, extra={"cassandra_heap": "1G"}))
    assert result.returncode != 0
    assert "Variable 'cassandra_heap' on c1 was renamed: use 'cassandra_heap_size' instead." in result.stdout


def _with_web_host(text: str, web_vars: dict[str, str]) -> str:
    lines = ["    web:", "      hosts:", "        w1:"] + [f"          {k}: {v!r}" for k, v in web_vars.items()]
    return text + "\n".join(lines) + "\n"


WEB_SECRETS = {"web_secret_key": GOOD_SECRET * 3, "web_mysql_password": GOOD_SECRET,
               "web_cassandra_password": GOOD_SECRET}


def test_a_web_host_with_its_secrets_passes(tmp_path: Path) -> None:
    result = run(tmp_path, _with_web_host(inventory(THREE), WEB_SECRETS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", sorted(WEB_SECRETS))
def test_a_web_host_without_a_secret_is_refused_by_name(tmp_path: Path, missing: str) -> None:
    web_vars = {k: v for k, v in WEB_SECRETS.items() if k != missing}
    result = run(tmp_path, _with_web_host(inventory(THREE), web_vars))
    assert result.returncode != 0
    assert f"Secret(s) {missing} on w1" in result.stdout
    assert GOOD_SECRET not in result.stdout


def test_a_playbook_validates_only_the_groups_it_names(tmp_path: Path) -> None:
    """cassandra.yml names [cassandra]: an inventory without a mysql group is fine for it, not for site.yml."""
    play = tmp_path / "cassandra_only.yml"
    play.write_text(
        f"- name: Validate\n  ansible.builtin.import_playbook: {PLAYBOOK}\n"
        "  vars: {validate_inventory_groups: [cassandra]}\n"
    )
    result = run(tmp_path, inventory(THREE, mysql=False), play)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(tmp_path, inventory(THREE, mysql=False))  # the default: both groups
    assert result.returncode != 0 and "Inventory group 'mysql' is empty or missing" in result.stdout


def test_validated_once_per_run(tmp_path: Path) -> None:
    """site.yml imports the validation once itself and once per imported playbook: it runs the checks once."""
    play = tmp_path / "site_like.yml"
    play.write_text("".join(
        f"- name: Validate {n}\n  ansible.builtin.import_playbook: {PLAYBOOK}\n" for n in (1, 2, 3)
    ))
    result = run(tmp_path, inventory(THREE), play)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("TASK [Inventory | Check required secrets are set and not placeholders]") == 1
    assert result.stdout.count("PLAY [Validate the inventory]") == 3


def test_a_later_import_naming_more_groups_validates_them(tmp_path: Path) -> None:
    """common.yml validates no group; cassandra.yml after it in the same run still checks the cassandra group."""
    play = tmp_path / "common_then_cassandra.yml"
    play.write_text(
        f"- name: Validate none\n  ansible.builtin.import_playbook: {PLAYBOOK}\n"
        "  vars: {validate_inventory_groups: []}\n"
        f"- name: Validate cassandra\n  ansible.builtin.import_playbook: {PLAYBOOK}\n"
        "  vars: {validate_inventory_groups: [cassandra]}\n"
    )
    result = run(tmp_path, inventory({"c1": {}, "c2": {}}), play)
    assert result.returncode != 0 and "datacenter 'dc1' has 2 node(s)" in result.stdout, result.stdout


def test_keystore_passwords_are_refused_as_renamed(tmp_path: Path) -> None:
    result = run(tmp_path, inventory(THREE, extra={"cassandra_tls_keystore_password": GOOD_SECRET}))
    assert result.returncode != 0
    assert "Variable 'cassandra_tls_keystore_password' on c1 was renamed: use 'pki_files_key'" in result.stdout
