"""The collector's file parsers as they were before the parse17 work (commit 3dec650 of
agents/iact_agents/collector/records.py, syslog and JSON lines, and the file reader's line split of tailer.py),
frozen here as the reference of the differential tests (test_collector_parse_differential.py): the faster code
must give every record field identical for every input. Do not "fix" this copy: it is the old behaviour."""


from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from iact_agents.collector.records import EPOCH, FACILITIES, LEVELS, MONTHS, SEVERITIES, Record
from iact_agents.storable import InvalidJson, clean_text, dumps_compact, loads, utc_in_range


def _pri(value: int) -> tuple[str | None, str | None, dict[str, str]]:
    fac, sev = divmod(value, 8)
    extra = {"facility_code": str(fac)} if fac == 10 else {}
    return FACILITIES.get(fac), SEVERITIES[sev], extra


def _int_or_none(text: Any) -> int | None:
    """A non-negative int that fits a signed 32-bit column, from ASCII digits only; else None.

    (``str.isdigit`` alone is not enough: ``"²".isdigit()`` is true and ``int("²")`` raises.)
    """
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= 2**31 - 1 else None


# --- syslog ---------------------------------------------------------------------------------------

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
_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<rest>.*)",
    re.DOTALL | re.ASCII,
)
_SD_ID = re.compile(r"[^ \]]*")
_SD_PARAM = re.compile(r'\s*([^\s=\]"]+)="((?:[^"\\]|\\.)*)"')


# The shape almost every sender uses, which datetime.fromisoformat reads as it is (Python 3.11+); anything
# else goes through the normalisation below first.
_RFC3339_PLAIN = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:?\d\d)", re.ASCII)


def parse_rfc3339(text: str) -> datetime | None:
    """An RFC 3339 / ISO 8601 instant with an offset (``Z``, ``+00:00`` or ``+0000``), as UTC; else None.

    None too for an instant outside the storable range (``storable.TS_MIN`` .. ``TS_MAX``)."""
    if _RFC3339_PLAIN.fullmatch(text):
        try:
            return utc_in_range(datetime.fromisoformat(text))
        except ValueError:  # month 13, hour 25 ...
            return None
    if not text or text == "-" or not text.isascii():
        return None
    value = text.replace(" ", "T", 1)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = value[:-2] + ":" + value[-2:]
    head, dot, frac_and_zone = value.partition(".")
    if dot:
        # Python accepts up to 6 fractional digits; RFC 5424 allows 6, some senders give 9.
        digits = len(frac_and_zone) - len(frac_and_zone.lstrip("0123456789"))
        if digits > 6:
            value = f"{head}.{frac_and_zone[:6]}{frac_and_zone[digits:]}"
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return utc_in_range(ts)


def _bsd_time(mon: str, day: str, hms: str, now: datetime, zone: tzinfo) -> datetime | None:
    """Traditional timestamps carry no year: take the year that puts the line at most a day in the future."""
    month = MONTHS.get(mon)
    if month is None:
        return None
    try:
        hour, minute, second = (int(p) for p in hms.split(":"))
        local_now = now.astimezone(zone)
        ts = datetime(local_now.year, month, int(day), hour, minute, second, tzinfo=zone)
        if ts - local_now > timedelta(days=1):
            ts = ts.replace(year=local_now.year - 1)
    except (ValueError, OverflowError):  # Feb 29 in a year without it, 24:00:00, ...
        return None
    return utc_in_range(ts)


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


def _parse_sd(rest: str) -> tuple[dict[str, str], str] | None:
    """Structured data of RFC 5424: ``-`` or ``[id k="v" ...]...``; returns (fields, message) or None."""
    if rest.startswith("-"):
        return {}, rest[2:] if rest.startswith("- ") else rest[1:]
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(rest) and rest[pos] == "[":
        end_id = _SD_ID.match(rest, pos + 1).end()  # type: ignore[union-attr] # (it matches the empty string)
        sd_id = rest[pos + 1 : end_id]
        pos = end_id
        while True:
            m = _SD_PARAM.match(rest, pos)
            if m is None:
                break
            value = m.group(2).replace('\\"', '"').replace("\\]", "]").replace("\\\\", "\\")
            fields[f"sd.{sd_id}.{m.group(1)}"] = value
            pos = m.end()
        if pos >= len(rest) or rest[pos] != "]" or not sd_id:
            return None
        pos += 1
    if pos == 0:
        return None
    msg = rest[pos:]
    if msg.startswith(" "):
        msg = msg[1:]
    return fields, msg


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


def _text(value: Any) -> str:
    """A JSON value as storable text: strings as they are, anything else as compact JSON."""
    if type(value) is str:
        return clean_text(value)
    if type(value) is int:  # (not bool) what json.dumps writes for it
        return str(value)
    return clean_text(dumps_compact(value))


def _json_ts(value: Any) -> datetime | None:
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Seconds since the epoch (Python's time.time()); milliseconds if it can only be that.
        if abs(value) > 1e15 or not math.isfinite(value):  # past any storable year, NaN, Infinity
            return None
        seconds = value / 1000 if value > 1e11 else value
        try:
            return utc_in_range(EPOCH + timedelta(seconds=seconds))
        except (OverflowError, ValueError):
            return None
    return None


def _str_or_none(value: Any) -> str | None:
    return clean_text(value) if isinstance(value, str) else None


_JSON_KNOWN = frozenset(("ts", "timestamp", "time", "level", "levelname", "message", "msg", "logger", "name", "pid",
                         "host", "hostname"))


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
