"""Channels against real things: an mbox file with a competing fcntl lock, a local HTTP server on
127.0.0.1, and the host's syslog where there is one (best effort)."""

from __future__ import annotations

import json
import mailbox
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from iact_agents.health.channels import (
    MailboxChannel,
    Notification,
    SyslogChannel,
    WebhookChannel,
    build_channels,
)
from iact_agents.health.config import (
    AlertingSettings,
    MailboxChannelSettings,
    SyslogChannelSettings,
    WebhookChannelSettings,
    is_internal_address,
)

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def note(event: str = "open", summary: str = "2 of 3 nodes UN") -> Notification:
    return Notification(event, "cassandra:nodes_up:cass1", "cassandra", "nodes_up", "cass1", "critical",
                        "critical", summary, AT, AT, detail={"down": ["10.0.0.3"]})


def test_mailbox_appends_readable_mbox_messages(tmp_path: Path) -> None:
    box = tmp_path / "iact"
    channel = MailboxChannel(MailboxChannelSettings(enabled=True, path=box), hostname="cass1.lab")
    assert channel.send(note()).ok
    # A body line starting with "From " must be quoted so that it does not start a new message.
    assert channel.send(note("resolved", "From now on all good")).ok
    messages = list(mailbox.mbox(str(box)))
    assert len(messages) == 2
    first, second = messages
    assert first["From"] == "iact-health@cass1.lab" and first["To"] == "iact@cass1.lab"
    assert first["X-IACT-Event"] == "open"
    assert "ALERT critical: cassandra:nodes_up:cass1" in first["Subject"]
    assert "10.0.0.3" in first.get_payload()
    assert second["X-IACT-Event"] == "resolved"
    assert box.read_text().count("\nFrom iact-health@cass1.lab ") == 1  # the second envelope only


def test_mailbox_waits_for_a_competing_lock_then_gives_up(tmp_path: Path) -> None:
    box = tmp_path / "iact"
    box.touch()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.lockf(f, fcntl.LOCK_EX);"
         " print('locked', flush=True); time.sleep(3)", str(box)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        channel = MailboxChannel(MailboxChannelSettings(enabled=True, path=box, lock_timeout_s=0.3), "h")
        started = time.monotonic()
        result = channel.send(note())
        assert not result.ok and "still locked" in result.reason
        assert time.monotonic() - started < 2
        assert box.read_text() == ""
        holder.wait(timeout=10)
        assert channel.send(note()).ok  # the lock is gone with its process
        assert len(mailbox.mbox(str(box))) == 1
    finally:
        holder.kill()
        holder.wait()


def test_mailbox_reports_an_unwritable_path(tmp_path: Path) -> None:
    channel = MailboxChannel(MailboxChannelSettings(enabled=True, path=tmp_path / "no" / "dir"), "h")
    result = channel.send(note())
    assert not result.ok and "cannot open" in result.reason


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []
    answer: ClassVar[int] = 204

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).answer)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "answer": 204})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_json_to_a_local_server(hook_server: tuple[str, type[_Hook]]) -> None:
    url, handler = hook_server
    channel = WebhookChannel(WebhookChannelSettings(enabled=True, url=url, timeout_s=5))
    result = channel.send(note())
    assert result.ok and result.reason == "HTTP 204"
    [body] = handler.received
    assert body["alert_key"] == "cassandra:nodes_up:cass1" and body["event"] == "open"
    assert body["source"] == "iact-health"


def test_webhook_reports_http_errors_and_refused_connections(hook_server: tuple[str, type[_Hook]]) -> None:
    url, handler = hook_server
    handler.answer = 500
    result = WebhookChannel(WebhookChannelSettings(enabled=True, url=url)).send(note())
    assert not result.ok and result.reason.startswith("HTTP 500")
    closed = WebhookChannel(WebhookChannelSettings(enabled=True, url="http://127.0.0.1:9/x", timeout_s=2))
    result = closed.send(note())
    assert not result.ok and "refused" in result.reason.lower()


def test_webhook_refuses_public_addresses_unless_allowed() -> None:
    public = WebhookChannel(WebhookChannelSettings(enabled=True, url="http://8.8.8.8/hook", timeout_s=1))
    result = public.send(note())
    assert not result.ok and "public address (8.8.8.8)" in result.reason
    for address in ("127.0.0.1", "10.1.2.3", "172.30.80.11", "192.168.0.1", "fe80::1", "::1", "fd00::5"):
        assert is_internal_address(address), address
    assert not is_internal_address("2001:4860:4860::8888")


def test_webhook_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection but never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        started = time.monotonic()
        result = WebhookChannel(WebhookChannelSettings(enabled=True, url=url, timeout_s=0.5)).send(note())
        assert not result.ok and "timed out" in result.reason.lower()
        assert time.monotonic() - started < 3
    finally:
        listener.close()


def test_syslog_best_effort() -> None:
    result = SyslogChannel(SyslogChannelSettings()).send(note())
    if Path("/dev/log").exists():
        assert result.ok
    else:
        assert not result.ok and "/dev/log" in result.reason


def test_build_channels_follows_the_settings(tmp_path: Path) -> None:
    settings = AlertingSettings.model_validate({
        "syslog": {"enabled": True},
        "mailbox": {"enabled": True, "path": str(tmp_path / "box")},
        "webhook": {"enabled": True, "url": "http://10.0.0.9/hook"},
    })
    assert [c.name for c in build_channels(settings, "h")] == ["syslog", "mailbox", "webhook"]
    assert [c.name for c in build_channels(AlertingSettings(), "h")] == ["syslog"]
