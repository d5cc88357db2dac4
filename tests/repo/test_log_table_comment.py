"""The per-host log tables: the comment the cassandra role writes is the one readers look for."""

from pathlib import Path

import yaml
from iact_agents.logtables import COMMENT_PREFIX

ROOT = Path(__file__).resolve().parents[2]


def test_comment_prefix_is_the_role_s() -> None:
    role_vars = yaml.safe_load((ROOT / "roles" / "cassandra" / "vars" / "main.yml").read_text())
    assert role_vars["__cassandra_log_writer_comment_prefix"] == COMMENT_PREFIX


def test_the_shared_table_s_comment_names_no_host() -> None:
    role_vars = yaml.safe_load((ROOT / "roles" / "cassandra" / "vars" / "main.yml").read_text())
    assert not role_vars["__cassandra_log_table_options"]["comment"].startswith(COMMENT_PREFIX)
