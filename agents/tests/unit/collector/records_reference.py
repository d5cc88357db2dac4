"""The collector's file parsers as they were before the parse17 work (commit 3dec650 of
agents/iact_agents/collector/records.py: parse_syslog with its regular expression and remembered timestamps,
parse_json_line, parse_raw_line; and the file reader's line split and row key), frozen here as the reference of
the differential tests (test_collector_parse_differential.py): the faster code must give every record field
identical for every input. The helpers that work left unchanged (parse_rfc3339, _bsd_time, _parse_sd, _pri,
_int_or_none, the JSON value helpers) are imported, not copied. Do not "fix" this copy: it is the old behaviour.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

from iact_agents.collector.records import (
    _JSON_KNOWN,
    _RFC5424,
    LEVELS,
    Record,
    _bsd_time,
    _int_or_none,
    _json_ts,
    _parse_sd,
    _pri,
    _str_or_none,
    _text,
    parse_rfc3339,
)
from iact_agents.storable import InvalidJson, clean_text, loads

# Traditional (RFC 3164 / rsyslog's file formats) in one match: priority, timestamp, host, then the tag
# (``prog[pid]: ``) when there is one, and the message. Digits and the host are ASCII classes; the tag's
# ``\s`` is any Unicode space.
_TRADITIONAL = re.compile(
    r"(?:<(?P<pri>[0-9]{1,3})>)?"
    r"(?:(?P<bsd>(?P<mon>[A-Z][a-z]{2}) (?P<day>[ 0-9][0-9]) (?P<hms>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.[0-9]+)?)"
    r"|(?P<iso>[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})))"
    r" (?P<host>[^ \t\n\r\f\v]+) ?"
    r"(?:(?P<prog>[^\s\[\]:]{1,128})(?:\[(?P<pid>[^\]\s]{1,32})\])?: ?)?(?P<msg>.*)",
    re.DOTALL,
)
class _BsdTimes:
    """:func:`_bsd_time` remembered per timestamp text for one ``(now, zone)``: the lines of a busy log share
    their second, and the file reader passes one ``now`` per batch. Bounded; used by the main thread only."""

    def __init__(self) -> None:
        self.key: tuple[datetime, tzinfo] | None = None
        self.known: dict[str, datetime | None] = {}

    def get(self, text: str, now: datetime, zone: tzinfo) -> datetime | None:
        """``text``: the timestamp as _TRADITIONAL's ``bsd`` group matched it (``Nov 27 18:33:23[.123]``)."""
        if self.key != (now, zone) or len(self.known) >= 4096:
            self.key = (now, zone)
            self.known = {}
        try:
            return self.known[text]
        except KeyError:
            ts = self.known[text] = _bsd_time(text[:3], text[4:6].strip(), text[7:15], now, zone)
            return ts


_bsd_times = _BsdTimes()


def parse_syslog(
    line: str, *, source: str, position: str, fallback_ts: datetime, now: datetime, zone: tzinfo = UTC
) -> Record:
    """Parse one syslog line (traditional, RFC 3339 high-precision, RFC 3164 or RFC 5424 format)."""
    line = clean_text(line)
    text = line.removeprefix("\ufeff")
    if text.startswith("<") and (m5 := _RFC5424.match(text)) is not None:
        ts = parse_rfc3339(m5.group("ts"))
        sd = _parse_sd(m5.group("rest"))
        pri = int(m5.group("pri"))
        if ts is not None and sd is not None and pri < 192:
            facility, severity, extra = _pri(pri)
            fields, msg = sd
            fields.update(extra)
            msgid = m5.group("msgid")
            if msgid != "-":
                fields["msgid"] = msgid
            procid = m5.group("procid")
            pid = _int_or_none(procid)
            if procid != "-" and pid is None:
                fields["procid"] = procid
            app = m5.group("app")
            host = m5.group("host")
            return Record(
                source=source, position=position, ts=ts, message=msg.removeprefix("\ufeff"), raw=line,
                facility=facility, severity=severity, program=None if app == "-" else app, pid=pid,
                hostname=None if host == "-" else host, fields=fields,
            )
    m = _TRADITIONAL.match(text)
    if m is not None:
        pri_text, bsd, _, _, _, iso, host, program, pid_text, msg = m.groups()
        ts = _bsd_times.get(bsd, now, zone) if bsd is not None else parse_rfc3339(iso)
        tpri = int(pri_text) if pri_text is not None else None
        if ts is not None and (tpri is None or tpri < 192):
            facility, severity, extra = _pri(tpri) if tpri is not None else (None, None, {})
            pid = None
            if pid_text is not None:
                pid = int(pid_text) if pid_text.isdigit() and pid_text.isascii() and len(pid_text) <= 10 else None
                if pid is None or pid > 2**31 - 1:  # (as _int_or_none, inline: every line has one)
                    pid = None
                    extra["procid"] = pid_text
            # (positional: this runs for every line; the order is Record's field order)
            return Record(source, position, ts, msg, line, False, facility, severity, program, pid, host, extra)
    return Record(source=source, position=position, ts=fallback_ts, message=line, raw=line, parse_error=True)


def parse_json_line(line: str, *, source: str, position: str, fallback_ts: datetime) -> Record:
    """Parse one JSON application log line: ``ts``, ``level``, ``message``/``msg``, ``logger``, extras."""
    line = clean_text(line)
    try:
        obj = loads(line.removeprefix("\ufeff"), non_finite=True)
    except InvalidJson:
        obj = None
    if not isinstance(obj, dict):
        return Record(source=source, position=position, ts=fallback_ts, message=line, raw=line, parse_error=True)
    ts = _json_ts(obj.get("ts", obj.get("timestamp", obj.get("time"))))
    level = obj.get("level", obj.get("levelname"))
    message = obj.get("message", obj.get("msg"))
    logger = obj.get("logger", obj.get("name"))
    pid = obj.get("pid")
    host = obj.get("host", obj.get("hostname"))
    fields = {clean_text(k): _text(v) for k, v in obj.items() if k not in _JSON_KNOWN}
    return Record(
        source=source,
        position=position,
        ts=ts if ts is not None else fallback_ts,
        message=_text(message) if message is not None else "",
        raw=line,
        parse_error=ts is None,
        severity=LEVELS.get(level.lower()) if isinstance(level, str) else None,
        program=_str_or_none(logger),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and 0 <= pid < 2**31 else None,
        hostname=_str_or_none(host),
        fields=fields,
    )


def parse_raw_line(line: str, *, source: str, position: str, fallback_ts: datetime) -> Record:
    """A line kept as it is (format ``raw``): no parse, no error."""
    line = clean_text(line)
    return Record(source=source, position=position, ts=fallback_ts, message=line, raw=line)



def split_lines(data: bytes, max_lines: int, max_line_bytes: int, *,
                flush: bool) -> tuple[list[tuple[int, bytes]], int]:
    """The first ``max_lines`` lines of ``data`` as (offset, line without its newline and a trailing CR), and
    the offset after the last one. Only complete lines count, but a line longer than ``max_line_bytes`` is cut
    there (the rest is the next line) and, with ``flush`` (the end of a file that will not grow), the last
    partial line counts too."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    complete = data.split(b"\n", max_lines)
    del complete[-1]  # what follows the last newline taken
    if complete and max(map(len, complete)) <= max_line_bytes:  # nearly always: split in one go
        for line in complete:
            out.append((pos, line[:-1] if line.endswith(b"\r") else line))
            pos += len(line) + 1
    n = len(data)
    while pos < n and len(out) < max_lines:  # over-long lines, the last partial line
        nl = data.find(b"\n", pos, pos + max_line_bytes + 1)
        if nl >= 0:
            line_end, nxt = nl, nl + 1
        elif n - pos >= max_line_bytes:  # an over-long line: cut it
            line_end = nxt = pos + max_line_bytes
        elif flush:  # the last line of a rotated file, never finished
            line_end = nxt = n
        else:
            break
        line = data[pos:line_end]
        out.append((pos, line[:-1] if line.endswith(b"\r") else line))
        pos = nxt
    return out, pos


def file_position(file_id: str, offset: int) -> str:
    return f"{file_id}:{offset:016d}"
