"""`iact-agent health --check-config`: validates the file without running any check (used by the role)."""

from pathlib import Path

import pytest
from iact_agents import cli


def test_valid_config_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "health.toml"
    cfg.write_text('[disk]\nwarn_percent = 70\ncrit_percent = 80\n')
    assert cli.main(["health", "--check-config", "--config", str(cfg)]) == 0
    assert "OK" in capsys.readouterr().out


def test_invalid_config_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "health.toml"
    cfg.write_text('[disk]\nwarn_percent = 170\n')
    assert cli.main(["health", "--check-config", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "disk.warn_percent" in err
    assert err.count("\n") == 1
