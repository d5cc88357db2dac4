"""RNF-002 guard: nothing in the repository installs or configures a forbidden component."""

from pathlib import Path

import pytest
from rnf002 import candidate_files, violations


def test_repository_has_no_forbidden_component(root: Path) -> None:
    found = violations(candidate_files(root), root)
    assert not found, "RNF-002 forbids Redis, Prometheus, Grafana, Celery and SMTP relays:\n" + "\n".join(found)


def test_scanner_sees_the_roles_and_requirements(root: Path) -> None:
    files = {p.relative_to(root).as_posix() for p in candidate_files(root)}
    assert "requirements.txt" in files
    assert any(f.startswith("roles/") for f in files)


@pytest.mark.parametrize(
    "line",
    [
        "    name: redis-server",
        "  - prometheus-node-exporter",
        "grafana_version: 10.4",
        "celery==5.4.0",
        "relayhost = [smtp.example.com]:587",
        "dc_smarthost='mail.example.com::587'",
        "server = smtplib.SMTP('mail.example.com', 587)",
        "smtp_host: mail.example.com",
    ],
)
def test_scanner_catches_forbidden_lines(tmp_path: Path, line: str) -> None:
    bad = tmp_path / "roles" / "x" / "tasks" / "main.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(line + "\n")
    assert violations(candidate_files(tmp_path), tmp_path)


@pytest.mark.parametrize(
    "line",
    ["smtp_host: localhost", "server = smtplib.SMTP('localhost')", "relay_domains =", "name: mariadb-server"],
)
def test_scanner_allows_local_delivery(tmp_path: Path, line: str) -> None:
    ok = tmp_path / "roles" / "x" / "tasks" / "main.yml"
    ok.parent.mkdir(parents=True)
    ok.write_text(line + "\n")
    assert not violations(candidate_files(tmp_path), tmp_path)
