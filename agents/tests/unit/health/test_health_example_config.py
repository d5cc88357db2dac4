"""The example configuration shipped with the agent stays valid and uses every section."""

from __future__ import annotations

from pathlib import Path

import iact_agents.health
from iact_agents.health import config as health_config

EXAMPLE = Path(iact_agents.health.__file__).with_name("health.example.toml")


def test_example_config_is_valid_and_complete() -> None:
    cfg = health_config.load(EXAMPLE, environ={})
    assert cfg.cassandra.enabled and cfg.cassandra.username == "reader"
    assert [str(p.path) for p in cfg.disk.paths] == ["/", "/var/lib/cassandra", "/var/log"]
    assert cfg.disk.thresholds(cfg.disk.paths[1]) == (75, 85)
    assert set(cfg.jobs) == {"backup", "session_cleanup"}
    assert cfg.collector.source_max_age_s == {"journal:journal": 900}
    assert cfg.alerting.threshold("cassandra", "nodes_up") == 2
    assert cfg.alerting.threshold("mysql", "writable") == 1
    assert cfg.alerting.mailbox.enabled and not cfg.alerting.webhook.enabled
    assert cfg.services.crash_loop_units == ["iact-collector.service"]
    assert cfg.collector.quarantine_window_h == 24 and cfg.alerting.mysql_down_reminder_min == 60
    top_level = set(health_config.HealthConfig.model_fields) - {"host", "state_dir"}
    text = EXAMPLE.read_text()
    assert all(f"[{name}" in text for name in top_level)
