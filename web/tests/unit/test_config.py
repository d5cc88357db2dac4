"""The typed configuration: precedence, secrets from files (masked), the deprecation policy, the example."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from iact_agents.errors import ConfigError
from iact_web import config

EXAMPLE = Path(__file__).resolve().parents[2] / "web.example.toml"


def test_defaults_are_the_deployed_values(tmp_path: Path) -> None:
    cfg = config.load(None, environ={})
    assert cfg.server.debug is False and cfg.server.secure_cookies is True
    assert cfg.mysql.defaults_file == Path("/etc/iact/mysql-app.cnf")
    assert cfg.logging.file == Path("/var/log/iact/web-app.json.log")
    assert (cfg.ratelimit.burst_limit, cfg.ratelimit.burst_window_s) == (100, 60)
    assert (cfg.ratelimit.sustained_limit, cfg.ratelimit.sustained_window_s) == (1000, 3600)
    assert cfg.logs.username == "reader"


def test_precedence_defaults_file_environment(tmp_path: Path) -> None:
    path = tmp_path / "web.toml"
    path.write_text('[server]\nallowed_hosts = ["file.example"]\npoll_interval_s = 30\n[ratelimit]\nburst_limit = 7\n')
    cfg = config.load(path, environ={"IACT_WEB__RATELIMIT__BURST_LIMIT": "9",
                                     "IACT_WEB__SERVER__ALLOWED_HOSTS": "a.example,b.example"})
    assert cfg.server.poll_interval_s == 30  # file over default
    assert cfg.ratelimit.burst_limit == 9  # environment over file
    assert cfg.server.allowed_hosts == ["a.example", "b.example"]
    assert cfg.ratelimit.sustained_limit == 1000  # default


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    assert config.config_path({"IACT_WEB_CONFIG": str(tmp_path / "x.toml")}) == tmp_path / "x.toml"
    with pytest.raises(ConfigError, match="not found"):
        config.load(None, environ={"IACT_WEB_CONFIG": str(tmp_path / "missing.toml")})


def test_unknown_keys_and_bad_values_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "web.toml"
    path.write_text("[ratelimit]\nburst_limt = 5\n")
    with pytest.raises(ConfigError, match=r"ratelimit\.burst_limt"):
        config.load(path, environ={})
    path.write_text("[logs]\nkeyspace = \"x; DROP\"\n")
    with pytest.raises(ConfigError, match=r"logs\.keyspace"):
        config.load(path, environ={})


def test_secret_key_is_read_from_a_private_file_and_masked(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k" * 60)
    key.chmod(0o644)
    server = config.ServerSettings(secret_key_file=key)
    with pytest.raises(ConfigError, match="readable by others"):
        server.secret_key()
    key.chmod(0o600)
    secret = server.secret_key()
    assert secret.get_secret_value() == "k" * 60 and "kkkk" not in repr(secret)
    key.write_text("short")
    with pytest.raises(ConfigError, match="at least 50"):
        server.secret_key()


def test_the_deprecation_policy_is_enforced() -> None:
    dep = datetime(2027, 1, 4, tzinfo=UTC)
    ok = config.ApiVersionSettings(deprecated_at=dep, sunset_at=datetime(2027, 7, 5, tzinfo=UTC))
    assert ok.sunset_at is not None
    for sunset in (datetime(2027, 3, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)):
        with pytest.raises(ValueError, match="6 to 12 months"):
            config.ApiVersionSettings(deprecated_at=dep, sunset_at=sunset)
    with pytest.raises(ValueError, match="needs deprecated_at"):
        config.ApiVersionSettings(sunset_at=dep)
    with pytest.raises(ValueError, match="newest version"):
        config.ApiSettings(versions={"v2": config.ApiVersionSettings(deprecated_at=dep)})
    with pytest.raises(ValueError, match="unknown API versions"):
        config.ApiSettings(versions={"v9": config.ApiVersionSettings()})


def test_the_example_documents_every_key_and_loads() -> None:
    cfg = config.load(EXAMPLE, environ={})
    assert cfg.server.allowed_hosts == ["web1.example.org"]
    text = EXAMPLE.read_text()
    for section, model in config.WebConfig.model_fields.items():
        assert f"[{section}]" in text, section
        sub = model.annotation
        assert sub is not None
        for key in sub.model_fields:  # type: ignore[union-attr]
            if key != "versions":
                assert f"\n{key} =" in text or f"\n# {key} =" in text, f"{section}.{key} is not in web.example.toml"
