"""Notification channels that need no outside service (RNF-002).

- :class:`SyslogChannel`: one line to the local syslog (facility daemon, tag ``iact-health``), which the
  collector ships to Cassandra like every other log line;
- :class:`MailboxChannel`: appends an mbox message to a local mailbox file (``/var/mail/iact``) under an
  fcntl lock, as local delivery does. There is no SMTP and no relay: the message never leaves the host;
- :class:`WebhookChannel`: POSTs one JSON object to an internal URL, with a timeout, no proxy, and a
  refusal of addresses outside loopback/private/link-local ranges unless explicitly allowed.

Each ``send`` returns a :class:`ChannelResult` with a reason instead of raising, so one failing channel
never blocks the others (:func:`iact_agents.health.alerting.send_all` also catches what slips through).
"""

from __future__ import annotations

import email.utils
import errno
import fcntl
import json
import os
import socket
import syslog
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..fsutil import write_all_and_sync
from .config import (
    AlertingSettings,
    MailboxChannelSettings,
    SyslogChannelSettings,
    WebhookChannelSettings,
    is_internal_address,
)


@dataclass(frozen=True)
class Notification:
    event: str
    """``open``, ``reminder``, ``escalated`` or ``resolved``."""
    alert_key: str
    component: str
    check_name: str
    host: str
    severity: str
    status: str
    """Status of the check result that caused this notification."""
    summary: str
    first_seen_at: datetime
    at: datetime
    duration_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        head = {"open": "ALERT", "reminder": "STILL FAILING", "escalated": "ESCALATED", "resolved": "RESOLVED"}
        label = head.get(self.event, self.event.upper())
        return f"[iact-health] {label} {self.severity}: {self.alert_key}: {self.summary}"[:300]

    def text(self) -> str:
        lines = [
            f"Event:      {self.event}",
            f"Alert:      {self.alert_key}",
            f"Severity:   {self.severity}",
            f"Check:      {self.component} {self.check_name} on {self.host}: {self.status}",
            f"Summary:    {self.summary}",
            f"First seen: {_iso(self.first_seen_at)}",
            f"At:         {_iso(self.at)}",
        ]
        if self.duration_s is not None:
            lines.append(f"Duration:   {self.duration_s:.0f} s")
        if self.detail:
            lines += ["", "Detail:", json.dumps(self.detail, indent=2, sort_keys=True, default=str)]
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        return {
            "source": "iact-health",
            "event": self.event,
            "alert_key": self.alert_key,
            "component": self.component,
            "check": self.check_name,
            "host": self.host,
            "severity": self.severity,
            "status": self.status,
            "summary": self.summary,
            "first_seen_at": _iso(self.first_seen_at),
            "at": _iso(self.at),
            "duration_s": self.duration_s,
            "detail": self.detail,
        }


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    ok: bool
    reason: str = ""


class Channel(Protocol):
    name: str

    def send(self, note: Notification) -> ChannelResult: ...


_FACILITIES = {"daemon": syslog.LOG_DAEMON, **{f"local{i}": getattr(syslog, f"LOG_LOCAL{i}") for i in range(8)}}


class SyslogChannel:
    name = "syslog"

    def __init__(self, settings: SyslogChannelSettings) -> None:
        self.settings = settings

    def send(self, note: Notification) -> ChannelResult:
        if note.event == "resolved":
            priority = syslog.LOG_NOTICE
        elif note.severity == "critical":
            priority = syslog.LOG_CRIT
        else:
            priority = syslog.LOG_WARNING
        message = f"{note.event} {note.severity} {note.alert_key}: {note.summary}"
        if note.duration_s is not None:
            message += f" (after {note.duration_s:.0f} s)"
        syslog.openlog(self.settings.tag, syslog.LOG_PID, _FACILITIES[self.settings.facility])
        try:
            # The C library call reports nothing: a missing /dev/log is only seen as a silent loss, so
            # check that something listens there before claiming success.
            syslog.syslog(priority, message.replace("\n", " ")[:1000])
        finally:
            syslog.closelog()
        if not Path("/dev/log").exists():
            return ChannelResult(self.name, False, "/dev/log does not exist: no local syslog daemon")
        return ChannelResult(self.name, True, "")


def _mbox_escape(text: str) -> str:
    """mboxrd quoting: a body line starting with ``From `` (after any ``>``) gets one more ``>``."""
    out = []
    for line in text.split("\n"):
        out.append(">" + line if line.lstrip(">").startswith("From ") else line)
    return "\n".join(out)


class MailboxChannel:
    name = "mailbox"

    def __init__(self, settings: MailboxChannelSettings, hostname: str | None = None) -> None:
        self.settings = settings
        self.hostname = hostname or socket.getfqdn()

    def render(self, note: Notification) -> bytes:
        sender = f"{self.settings.sender}@{self.hostname}"
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = f"{self.settings.recipient}@{self.hostname}"
        msg["Subject"] = note.subject
        msg["Date"] = email.utils.format_datetime(note.at if note.at.tzinfo else note.at.replace(tzinfo=UTC))
        msg["Message-ID"] = email.utils.make_msgid("iact-health", domain=self.hostname)
        msg["X-IACT-Alert-Key"] = note.alert_key
        msg["X-IACT-Event"] = note.event
        msg.set_content(note.text())
        body = _mbox_escape(msg.as_string())
        envelope = f"From {sender} {time.asctime(time.gmtime(note.at.timestamp()))}\n"
        return (envelope + body.rstrip("\n") + "\n\n").encode("utf-8")

    def send(self, note: Notification) -> ChannelResult:
        data = self.render(note)
        path = self.settings.path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o660)
        except OSError as exc:
            return ChannelResult(self.name, False, f"{path}: cannot open: {exc.strerror}")
        try:
            if not self._lock(fd):
                waited = self.settings.lock_timeout_s
                return ChannelResult(self.name, False, f"{path}: still locked by another process after {waited:g} s")
            try:
                write_all_and_sync(fd, data)
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)
        except OSError as exc:
            return ChannelResult(self.name, False, f"{path}: cannot write: {exc.strerror}")
        finally:
            os.close(fd)
        return ChannelResult(self.name, True, "")

    def _lock(self, fd: int) -> bool:
        """fcntl (POSIX) lock on the whole mailbox, as MUAs and local delivery agents take it."""
        deadline = time.monotonic() + self.settings.lock_timeout_s
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


class WebhookChannel:
    name = "webhook"

    def __init__(self, settings: WebhookChannelSettings) -> None:
        self.settings = settings
        # No proxy from the environment: an internal endpoint is reached directly or not at all.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _check_address(self) -> str | None:
        parts = urlsplit(self.settings.url)
        host = parts.hostname or ""
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                       type=socket.SOCK_STREAM)
        except OSError as exc:
            return f"cannot resolve {host}: {exc}"
        outside = sorted({str(info[4][0]) for info in infos if not is_internal_address(str(info[4][0]))})
        if outside and not self.settings.allow_public:
            return f"{host} resolves to a public address ({', '.join(outside)}); set allow_public to allow it"
        return None

    def send(self, note: Notification) -> ChannelResult:
        refused = self._check_address()
        if refused:
            return ChannelResult(self.name, False, refused)
        body = json.dumps(note.as_json(), default=str).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) by the config
            self.settings.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "iact-health"},
        )
        try:
            with self._opener.open(request, timeout=self.settings.timeout_s) as response:
                code = response.status
        except urllib.error.HTTPError as exc:
            return ChannelResult(self.name, False, f"HTTP {exc.code} {exc.reason}")
        except urllib.error.URLError as exc:
            return ChannelResult(self.name, False, f"{exc.reason}")
        except (TimeoutError, OSError) as exc:
            return ChannelResult(self.name, False, f"{type(exc).__name__}: {exc}")
        if 200 <= code < 300:
            return ChannelResult(self.name, True, f"HTTP {code}")
        return ChannelResult(self.name, False, f"HTTP {code}")


def build_channels(settings: AlertingSettings, hostname: str | None = None) -> list[Channel]:
    channels: list[Channel] = []
    if settings.syslog.enabled:
        channels.append(SyslogChannel(settings.syslog))
    if settings.mailbox.enabled:
        channels.append(MailboxChannel(settings.mailbox, hostname))
    if settings.webhook.enabled:
        channels.append(WebhookChannel(settings.webhook))
    return channels
