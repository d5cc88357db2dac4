"""Config precedence and errors, `iact-agent collect` exit codes, the loop with an in-memory sink,
sd_notify, and SIGTERM handling of the real command in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from iact_agents.cli import main
from iact_agents.collector.config import CassandraSettings, CollectorConfig, load
from iact_agents.collector.daemon import Collector, sd_notify
from iact_agents.collector.position import FileState, OffsetStore
from iact_agents.collector.records import Record
from iact_agents.collector.rows import RowEncoder
from iact_agents.collector.sink import (
    BIND_ORDER,
    COLUMNS,
    CassandraSink,
    DeliveryAborted,
    Refused,
    row_values,
    write_cql,
)
from iact_agents.errors import ConfigError
from upsert import prepared


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(body)
    return path


BASE = """
host = "from-file"
state_dir = "{state}"
[cassandra]
contact_points = ["10.0.0.1"]
[[files]]
paths = ["{log}"]
"""


def base_config(tmp_path: Path, extra: str = "") -> Path:
    """BASE plus ``extra``: top-level keys go before the tables, tables after them."""
    body = BASE.format(state=tmp_path / "state", log=tmp_path / "syslog")
    return write_config(tmp_path, body + extra if extra.startswith("[") else extra + body)


# --- config ------------------------------------------------------------------------------------------

def test_precedence_defaults_file_env_cli(tmp_path: Path) -> None:
    path = base_config(tmp_path)
    cfg = load(path, environ={})
    assert cfg.host == "from-file" and cfg.batch_lines == 250 and cfg.cassandra.port == 9042  # defaults
    cfg = load(path, environ={"IACT_COLLECT__HOST": "from-env", "IACT_COLLECT__CASSANDRA__PORT": "9142",
                              "IACT_COLLECT__CASSANDRA__CONTACT_POINTS": "a, b"})
    assert (cfg.host, cfg.cassandra.port, cfg.cassandra.contact_points) == ("from-env", 9142, ["a", "b"])
    cfg = load(path, environ={"IACT_COLLECT__HOST": "from-env"}, overrides={"host": "from-cli"})
    assert cfg.host == "from-cli"


def test_config_is_frozen_and_never_shows_the_password(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("Sup3r-s3cret-Value\n")
    secret.chmod(0o600)
    path = base_config(tmp_path)
    path.write_text(path.read_text().replace(
        '["10.0.0.1"]', f'["10.0.0.1"]\nusername = "collector"\npassword_file = "{secret}"'))
    cfg = load(path, environ={})
    with pytest.raises(ValueError, match="frozen"):
        cfg.host = "x"  # type: ignore[misc]
    password = cfg.cassandra.password()
    assert password is not None and password.get_secret_value() == "Sup3r-s3cret-Value"  # it is there...
    for shown in (repr(cfg), str(cfg), repr(password), str(password), cfg.model_dump_json()):
        assert "Sup3r-s3cret-Value" not in shown  # ...and never shown


@pytest.mark.parametrize(("extra", "field"), [
    ("batch_lines = 0\n", "batch_lines"),
    ('syslog_timezone = "Mars/Olympus"\n', "syslog_timezone"),
    ("[journal]\nenable = true\n", "journal.enable"),
    ('[[files]]\npaths = ["relative.log"]\n', "files.1.paths"),
    ('[[files]]\npaths = ["/x"]\nformat = "xml"\n', "files.1.format"),
])
def test_bad_values_name_the_field(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(base_config(tmp_path, extra), environ={})
    assert f": {field}: " in str(err.value) and "\n" not in str(err.value)


def test_bad_nested_value_names_the_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[cassandra]\nport = "high"\n[[files]]\npaths = ["/x"]\n')
    with pytest.raises(ConfigError, match=r": cassandra\.port: "):
        load(path, environ={})


def test_the_role_deploys_the_collectors_own_defaults() -> None:
    """roles/collector writes batch_lines and concurrency into every host's collector.toml: its defaults are the
    collector's (one fact: a host runs what config.py documents and the bench measured)."""
    import yaml  # noqa: PLC0415

    role = Path(__file__).resolve().parents[4] / "roles" / "collector"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    assert defaults["collector_batch_lines"] == CollectorConfig.model_fields["batch_lines"].default
    assert defaults["collector_concurrency"] == CassandraSettings.model_fields["concurrency"].default


def test_no_sources_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no sources"):
        load(write_config(tmp_path, "host = 'x'\n"), environ={})


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = base_config(tmp_path, "[cassandra]\nport = 70000\n")  # duplicate table: TOML error
    code, _, err = run_cli(["collect", "--config", str(path), "--check-config"], capsys)
    assert code == 2 and err.count("\n") == 1 and "not valid TOML" in err
    path = write_config(tmp_path, BASE.format(state=tmp_path, log="/x").replace('["10.0.0.1"]', '[]'))
    code, _, err = run_cli(["collect", "--config", str(path), "--check-config"], capsys)
    assert code == 2 and err.count("\n") == 1 and "cassandra.contact_points" in err


def test_cli_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["collect", "--config", str(tmp_path / "nope.toml"), "--check-config"], capsys)
    assert code == 2 and "config file not found" in err


def test_cli_check_config_reads_the_credential_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    path = base_config(tmp_path).with_name("c.toml")
    path.write_text(base_config(tmp_path).read_text().replace(
        '["10.0.0.1"]', f'["10.0.0.1"]\nusername = "collector"\npassword_file = "{secret}"'))
    code, out, _ = run_cli(["collect", "--config", str(path), "--check-config"], capsys)
    assert code == 0 and "OK" in out and "s3cret" not in out
    secret.chmod(0o644)
    code, _, err = run_cli(["collect", "--config", str(path), "--check-config"], capsys)
    assert code == 2 and "readable by others" in err
    path.write_text(path.read_text().replace(f'password_file = "{secret}"', ""))
    code, _, err = run_cli(["collect", "--config", str(path), "--check-config"], capsys)
    assert code == 2 and "cassandra" in err and "password_file" in err


# --- loop with an in-memory sink -------------------------------------------------------------------

class MemorySink:
    """Stands in for Cassandra in unit tests of the loop only (integration tests use the real cluster)."""

    def __init__(self, fail_times: int = 0) -> None:
        self.rows: dict[tuple[str, str], Record] = {}
        self.writes = 0
        self.fail_times = fail_times

    def write(self, records: Sequence[Record]) -> list[Refused]:
        if self.fail_times:
            self.fail_times -= 1
            raise DeliveryAborted("down")
        self.writes += 1
        for r in records:
            self.rows[(r.source, r.position)] = r
        return []

    def write_plain(self, records: Sequence[Record], reason: str) -> None:
        self.write(records)

    def close(self) -> None:
        pass


def config_for(tmp_path: Path, **over: object) -> CollectorConfig:
    data: dict[str, object] = {"host": "h", "state_dir": str(tmp_path / "state"), "rotate_wait_s": 0,
                               "files": [{"paths": [str(tmp_path / "logs" / "*.log"), str(tmp_path / "syslog")]}]}
    data.update(over)
    return CollectorConfig.model_validate(data)


def test_loop_ships_every_line_once_and_commits_after_the_write(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("".join(f"Nov 27 18:00:00 h a: {i}\n" for i in range(7)))
    (tmp_path / "syslog").write_text("".join(f"Nov 27 18:00:00 h s: {i}\n" for i in range(5)))
    sink = MemorySink()
    cfg = config_for(tmp_path, batch_lines=3)
    assert Collector(cfg, sink).run(once=True) == 0
    assert len(sink.rows) == 12
    again = MemorySink()
    Collector(cfg, again).run(once=True)  # restart: nothing new
    assert again.rows == {}
    (tmp_path / "logs" / "b.log").write_text("Nov 27 18:00:00 h b: new file\n")
    Collector(cfg, again).run(once=True)
    assert [r.message for r in again.rows.values()] == ["new file"]


def test_failed_write_commits_nothing(tmp_path: Path) -> None:
    (tmp_path / "syslog").write_text("Nov 27 18:00:00 h s: 1\n")
    cfg = config_for(tmp_path)
    sink = MemorySink(fail_times=1)
    Collector(cfg, sink).run(once=True)
    store = OffsetStore(cfg.state_dir)
    store.load()
    state = store.get(f"file:{tmp_path / 'syslog'}")
    assert isinstance(state, FileState) and state.offset == 0  # identity only, the line is not acknowledged
    sink = MemorySink()
    Collector(cfg, sink).run(once=True)
    assert [r.message for r in sink.rows.values()] == ["1"]


def test_row_values_follow_the_column_list() -> None:
    rec = Record(source="/var/log/syslog", position="f:0", ts=datetime(2026, 11, 27, 23, 59, tzinfo=UTC),
                 message="m", raw="r", hostname="other", fields={"a": "b"})
    values = row_values("cass1", rec, store_raw=False, ingested_at=datetime(2026, 11, 28, tzinfo=UTC))
    cql = write_cql("iact_logs", "infrastructure_logs")
    assert cql.count("?") == len(values) == len(COLUMNS) == len(BIND_ORDER)
    # Bound values in statement order: SET columns, then WHERE columns; each marker names its column.
    markers = [part.split(" = ")[0].strip() for part in
               cql.split(" SET ")[1].replace(" WHERE ", ", ").replace(" AND ", ", ").split(", ")]
    assert sorted(markers) == sorted(COLUMNS)
    bound = dict(zip(markers, (values[i] for i in BIND_ORDER), strict=True))
    assert bound["host"] == "cass1" and bound["day"].isoformat() == "2026-11-27"
    assert bound["raw"] is None and bound["fields"] == {"a": "b", "hostname": "other"}
    assert "fields = fields + ?" in cql and cql.endswith("WHERE host = ? AND source = ? AND day = ? AND ts = ? "
                                                          "AND position = ?")


def test_sink_retries_an_unreachable_cluster_until_the_drain_deadline(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, cassandra={"contact_points": ["127.0.0.1"], "port": 1, "connect_timeout_s": 1})
    sink = CassandraSink(cfg.cassandra, host="h", store_raw=False, retry_initial_s=0.01, retry_max_s=0.02,
                         should_stop=lambda: sink.retries >= 3, drain_deadline=lambda: 0.0)
    rec = Record(source="s", position="p", ts=datetime.now(UTC), message="m", raw="m")
    with pytest.raises(DeliveryAborted, match="read again"):
        sink.write([rec])
    assert sink.retries >= 2 and sink.rows_written == 0
    sink.close()


# --- sd_notify and signals ------------------------------------------------------------------------------

def test_sd_notify_sends_a_datagram(tmp_path: Path) -> None:
    addr = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(addr)
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": addr})
        assert srv.recv(100) == b"READY=1"
    assert not sd_notify("READY=1", {})


def test_sigterm_drains_and_exits_0_without_committing_unacknowledged_lines(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_text("Nov 27 18:00:00 h s: 1\n")
    cfg = base_config(tmp_path, "drain_timeout_s = 1\nretry_initial_s = 0.1\n").read_text().replace(
        '["10.0.0.1"]', '["127.0.0.1"]\nport = 1\nconnect_timeout_s = 1')
    path = write_config(tmp_path, cfg)
    addr = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(addr)
        srv.settimeout(30)
        proc = subprocess.Popen([sys.executable, "-m", "iact_agents.cli", "collect", "--config", str(path)],
                                env={**os.environ, "NOTIFY_SOCKET": addr}, stderr=subprocess.PIPE, text=True)
        try:
            assert srv.recv(200).startswith(b"READY=1")
            time.sleep(1.0)  # it is now retrying the unreachable cluster
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
            assert time.monotonic() - sent < 10
            assert srv.recv(200) == b"STOPPING=1"
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate()
    assert code == 0, err
    state = json.loads((tmp_path / "state" / "positions.json").read_text())
    assert state["sources"][f"file:{log}"]["offset"] == 0


def test_sigterm_stops_an_idle_collector_promptly(tmp_path: Path) -> None:
    (tmp_path / "syslog").write_text("")
    path = base_config(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "iact_agents.cli", "-v", "collect", "--config", str(path)],
                            stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        # Signal only once it says it started (its handlers are installed by then): a fixed sleep is a race
        # on a loaded machine, where importing the driver alone can take seconds.
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "collector started" in line:
                break
        assert proc.poll() is None, "".join(seen)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    err = "".join(seen) + err
    assert code == 0, err
    assert "stopping on signal 15" in err


def test_partition_batches_never_mix_partitions_and_stay_small(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, cassandra={"partition_batch_rows": 3, "partition_batch_bytes": 1000})
    sink = CassandraSink(cfg.cassandra, host="h", store_raw=False, retry_initial_s=0.1, retry_max_s=1)
    encoder = RowEncoder.for_statement(prepared(), "h", store_raw=False)
    assert encoder is not None
    day1 = datetime(2026, 11, 27, 12, tzinfo=UTC)
    day2 = datetime(2026, 11, 28, 0, 1, tzinfo=UTC)
    recs = [Record(source=src, position=str(i), ts=ts, message="m" * size, raw="")
            for i, (src, ts, size) in enumerate(
                [("a", day1, 10)] * 7 + [("b", day1, 10)] * 2 + [("a", day2, 10)] * 2 + [("c", day1, 600)] * 3)]
    rows = [encoder.encode(r, encoder.stamp(day1)) for r in recs]
    chunks = sink._chunks(rows)
    assert sorted(len(c) for c in chunks) == [1, 1, 1, 1, 2, 2, 3, 3]
    for chunk in chunks:
        assert len({(r.source, r.ts.date()) for r in chunk}) == 1
        assert len({r.key for r in chunk}) == 1
    assert sum(len(c) for c in chunks) == len(rows)


def test_once_with_the_journal_stops_at_its_end(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "collector" / "journal.json"
    fake = tmp_path / "journalctl"
    fake.write_text(f"#!/bin/sh\ncat {fixture}\n")
    fake.chmod(0o755)
    cfg = config_for(tmp_path, files=[], journal={"enabled": True, "journalctl": str(fake)})
    sink = MemorySink()
    assert Collector(cfg, sink).run(once=True) == 0
    assert len(sink.rows) == 50


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[3] / "iact_agents" / "collector" / "collector.example.toml"
    cfg = load(example, environ={})
    assert cfg.cassandra.consistency == "LOCAL_QUORUM" and cfg.journal.enabled and len(cfg.files) == 2
    assert cfg == load(example, environ={}).model_copy()
    # Every field of the model appears in the example, so the example documents all of them.
    text = example.read_text()
    for model in (CollectorConfig, type(cfg.cassandra), type(cfg.journal), type(cfg.files[0])):
        for name in model.model_fields:
            assert f"{name} = " in text or f"[{name}]" in text, name


def test_collect_imports_no_other_agent() -> None:
    """The collector's memory ceiling counts every module loaded: `iact-agent collect` loads only its own."""
    code = ("import sys; from iact_agents import cli; cli.build_parser('collect'); "
            "print(' '.join(m for m in sys.modules if m.startswith('iact_agents.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "iact_agents.collector.cli" in out
    assert not [m for m in out if m.startswith(("iact_agents.health", "iact_agents.dora", "iact_agents.jobs"))], out


def test_command_table_names_what_the_modules_register() -> None:
    from iact_agents import cli  # noqa: PLC0415

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(c for names in cli.COMMAND_MODULES.values() for c in names)  # type: ignore[attr-defined]
    for names in cli.COMMAND_MODULES.values():
        for name in names:
            one = next(a for a in cli.build_parser(name)._actions if a.dest == "command")
            assert name in one.choices  # type: ignore[attr-defined]


def test_refused_credentials_are_fatal_until_they_once_worked(tmp_path: Path) -> None:
    """A wrong password stops the collector at start (exit 2); once it connected, the same refusal is a node
    still starting after a full-cluster restart, and is retried (else systemd's restarts end in `failed`)."""
    from cassandra import AuthenticationFailed, Unauthorized  # noqa: PLC0415
    from cassandra.cluster import NoHostAvailable  # noqa: PLC0415
    from iact_agents.errors import ServiceUnavailable  # noqa: PLC0415

    cfg = config_for(tmp_path)
    sink = CassandraSink(cfg.cassandra, host="h", store_raw=False, retry_initial_s=0.1, retry_max_s=1)
    auth = NoHostAvailable("no host", {"10.0.0.1:9042": AuthenticationFailed("Bad credentials")})
    denied = Unauthorized("User collector has no MODIFY permission")
    assert isinstance(sink._fatal(auth), ConfigError)
    assert isinstance(sink._fatal(denied), ServiceUnavailable)
    sink._proven = True
    assert sink._fatal(auth) is None and sink._fatal(denied) is None
