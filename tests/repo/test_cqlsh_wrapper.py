"""roles/cassandra's /usr/local/bin/cqlsh (templates/usr/local/bin/cqlsh.j2), a Python template, rendered: it is
lint clean (ruff, mypy --strict, like the files scripts/source-files.sh finds) and turns cqlsh's TLS options
into a verifying client context when the cqlshrc asks for validation, and only then. Runs with the controller's
cqlsh (requirements.txt pins the same version as roles/cassandra/files/cqlsh)."""

from __future__ import annotations

import importlib.util
import ssl
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles/cassandra/templates/usr/local/bin/cqlsh.j2"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = TEMPLATE.read_text(encoding="utf-8").replace("{{ __cassandra_cqlsh_prefix }}", "/opt/iact-cqlsh")
    lines = text.splitlines()
    assert lines[1] == "{{ ansible_managed | comment }}"
    lines[1] = "# Ansible managed"
    path = tmp_path_factory.mktemp("cqlsh") / "cqlsh_wrapper.py"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("cqlsh_wrapper", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rendered_command_is_lint_clean(rendered: Path) -> None:
    for argv in ([BIN / "ruff", "check", "--config", ROOT / "ruff.toml", rendered],
                 [BIN / "mypy", "--config-file", ROOT / "mypy-standalone.ini", rendered]):
        done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("validate", "verifying"), [("true", True), ("false", False)])
def test_validation_asks_for_a_client_context(rendered: Path, tmp_path: Path, validate: str, verifying: bool) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not read here\n")
    rc = tmp_path / "cqlshrc"
    rc.write_text(f"[connection]\nssl = true\n[ssl]\ncertfile = {ca}\nvalidate = {validate}\n")
    wrapper = load(rendered)
    options = wrapper.sslhandling.ssl_settings("10.0.0.1", str(rc), env={})
    assert wrapper.sslhandling.ssl_settings is wrapper.ssl_settings  # what cqlsh's main calls
    assert options["ca_certs"] == str(ca)
    if verifying:
        assert options["ssl_version"] == ssl.PROTOCOL_TLS_CLIENT and options["check_hostname"] is True
        assert options["cert_reqs"] == ssl.CERT_REQUIRED
    else:
        assert "check_hostname" not in options and options["cert_reqs"] == ssl.CERT_NONE
