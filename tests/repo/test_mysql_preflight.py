"""The mysql role's preflight, run for real on localhost (its first checks need no facts and no host)."""

from __future__ import annotations

from pathlib import Path

import pytest
from roletasks import run_role_tasks


@pytest.mark.parametrize("flavor", ["mysql", "percona"])
def test_mysql_preflight_refuses_a_flavor_other_than_mariadb(tmp_path: Path, flavor: str) -> None:
    """mysql_flavor is gone (MariaDB only): an inventory that still sets it to another server stops, naming it."""
    result = run_role_tasks(tmp_path, "mysql", "preflight", {"mysql_flavor": flavor})
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert f"mysql_flavor is '{flavor}', but the mysql role installs MariaDB only" in out, result.stdout
    assert "remove mysql_flavor from the inventory" in out


@pytest.mark.parametrize("extra", [{}, {"mysql_flavor": "mariadb"}], ids=["unset", "mariadb"])
def test_mysql_preflight_lets_mariadb_through(tmp_path: Path, extra: dict[str, object]) -> None:
    """Unset or `mariadb`, the check passes and preflight goes on (to the next check, which needs facts)."""
    result = run_role_tasks(tmp_path, "mysql", "preflight", extra)
    assert "installs MariaDB only" not in result.stdout
    assert "TASK [mysql : Preflight | Check the operating system]" in result.stdout, result.stdout
