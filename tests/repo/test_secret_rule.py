"""The secret rule lives once (playbooks/test_plugins/real_secret.py): every preflight that checks a secret uses
it, each role reaches that one file through a link in its test_plugins/, and no role or playbook spells a
placeholder list of its own again. The rule itself runs for real through Ansible here (the collector role's
preflight on localhost), so a broken link or plugin fails this test, not a deploy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from roletasks import run_role_tasks

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "playbooks/test_plugins/real_secret.py"
USERS = {
    "roles/cassandra/tasks/preflight.yml": 1,
    "roles/collector/tasks/preflight.yml": 1,
    "roles/mysql/tasks/preflight.yml": 1,
    "roles/web/tasks/preflight.yml": 2,
    "roles/backup/tasks/preflight.yml": 1,
    "playbooks/validate_inventory.yml": 1,
}
# What a home-made placeholder rule looks like: a changeme spelling or a list of refused values.
HOME_MADE = re.compile(r"change[-_.?]*me|_placeholders?\b|not in \w*placeholder", re.IGNORECASE)


@pytest.mark.parametrize(("path", "uses"), sorted(USERS.items()))
def test_each_secret_check_uses_the_one_rule(path: str, uses: int) -> None:
    assert (ROOT / path).read_text(encoding="utf-8").count("is real_secret(") + (
        ROOT / path).read_text(encoding="utf-8").count("is not real_secret(") == uses


def test_each_role_links_the_one_plugin_file() -> None:
    for path in USERS:
        if path.startswith("roles/"):
            link = ROOT / path.split("/tasks/")[0] / "test_plugins/real_secret.py"
            assert link.is_symlink(), f"{link} must be a link to {PLUGIN} (one rule), not a copy"
            assert link.resolve() == PLUGIN.resolve()


def test_no_role_or_playbook_spells_its_own_placeholder_rule() -> None:
    offenders = []
    for path in [*ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("roles/*/defaults/*.yml"),
                 *ROOT.glob("roles/*/vars/*.yml"), *ROOT.glob("playbooks/**/*.yml")]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HOME_MADE.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "use `is real_secret(n)` instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize("value", ["changeme-changeme", "xxxxxxxxxxxxxxxx", "<the collector password>"])
def test_a_role_refuses_a_placeholder_through_the_plugin(tmp_path: Path, value: str) -> None:
    result = run_role_tasks(tmp_path, "collector", "preflight", {"collector_cassandra_password": value})
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert "collector_cassandra_password is missing, short or a placeholder" in out, result.stdout


def test_a_role_lets_a_real_secret_through_the_plugin(tmp_path: Path) -> None:
    result = run_role_tasks(tmp_path, "collector", "preflight",
                            {"collector_cassandra_password": "Vq3jz7Lr0pXc9TbN2mWd5s"})
    assert "short or a placeholder" not in result.stdout
    assert "TASK [collector : Preflight | Check there are Cassandra contact points]" in result.stdout, result.stdout
