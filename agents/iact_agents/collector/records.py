"""The collector's record model and its pure parsers.

One :class:`Record` per log line or journal entry. It is a slotted dataclass, not a pydantic model: the
collector builds one per line, and validation happens once, at the config/JSON boundary, not per line.

Parsers never raise on bad input and never drop a line: what does not parse is returned with
``parse_error=True``, the raw text kept in ``raw`` and as ``message``, and the timestamp of the last line
that did parse in the same source (``fallback_ts``), so that a replay produces the same row again.

Supported inputs:

* syslog files written by rsyslog: ``RSYSLOG_TraditionalFileFormat`` (``Nov 27 18:33:23 host prog[pid]:
  msg``, year and zone inferred), the high-precision RFC 3339 variant (``2026-11-27T18:33:23.123456+00:00
  host prog[pid]: msg``), either with an optional ``<PRI>`` prefix (RFC 3164 on the wire), and RFC 5424
  (``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG``);
* JSON lines (``/var/log/iact/*.json.log``): ``ts``, ``level``, ``message`` (or ``msg``), ``logger``;
  every other key goes into the ``fields`` text map;
* journal entries, one ``journalctl -o json`` object per line.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from ..storable import InvalidJson, clean_text, dumps_compact, loads, utc_in_range

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SEVERITIES: tuple[str, ...] = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

# Syslog facility codes (RFC 5424 table 1, Linux names). authpriv is reported as "auth": both are the
# authentication logs, and hosts without rsyslog must label them the same way as /var/log/auth.log.
FACILITIES: dict[int, str] = {
    0: "kern", 1: "user", 2: "mail", 3: "daemon", 4: "auth", 5: "syslog", 6: "lpr", 7: "news",
    8: "uucp", 9: "cron", 10: "auth", 11: "ftp", 12: "ntp", 13: "security", 14: "console", 15: "cron",
    16: "local0", 17: "local1", 18: "local2", 19: "local3", 20: "local4", 21: "local5", 22: "local6",
    23: "local7",
}

# Level names of JSON application logs (Python logging and common others) -> syslog severity names.
LEVELS: dict[str, str] = {
    "trace": "debug", "debug": "debug", "info": "info", "information": "info", "notice": "notice",
    "warn": "warning", "warning": "warning", "error": "err", "err": "err", "critical": "crit",
    "crit": "crit", "fatal": "crit", "alert": "alert", "emerg": "emerg", "emergency": "emerg",
}

MONTHS: dict[str, int] = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}


@dataclass(slots=True)
class Record:
    """One log line or journal entry, ready to be written as one row."""

    source: str
    """Where it came from: the configured file path, or ``journal``."""
    position: str
    """Row key inside the source: ``<file_id>:<offset>`` or the journal cursor. Replays reuse it."""
    ts: datetime
    """When it happened (timezone-aware, UTC)."""
    message: str
    raw: str
    parse_error: bool = False
    facility: str | None = None
    severity: str | None = None
    program: str | None = None
    pid: int | None = None
    hostname: str | None = None
    """The host named in the line or entry (the row's ``host`` is the collecting host)."""
    fields: dict[str, str] = field(default_factory=dict)
    quarantine: str | None = None
    """Why this record was set aside (collector/quarantine.py); None for every ordinary record."""

    @property
    def day(self) -> date:
        return self.ts.astimezone(UTC).date()


def quarantined(parser: str, line: str, exc: Exception, *, source: str, position: str | None,
                fallback_ts: datetime) -> Record:
    """The record of a line whose parser raised: kept as a ``parse_error`` row with its raw text, and marked
    for the quarantine (the daemon counts it and keeps it in the local quarantine file)."""
    text = clean_text(line)
    return Record(source=source, position=position or journal_position_for_unparsed(text), ts=fallback_ts,
                  message=text, raw=text, parse_error=True,
                  quarantine=f"parser {parser} raised {type(exc).__name__}: {exc}"[:1000])


def guarded(parse: Callable[..., Record]) -> Callable[..., Record]:
    """``parse`` that cannot raise: a parser bug turns the line into a quarantined ``parse_error`` record
    (raw text kept) instead of stopping its source. The parsers are total; this is the last line of defence,
    and what it catches is counted and kept in the local quarantine file by the daemon. (The file reader
    guards its parser inline, in the same way, to save a call per line.)"""

    @functools.wraps(parse)
    def safe(line: str, *, source: str, position: str | None = None, fallback_ts: datetime,
             **kwargs: Any) -> Record:
        try:
            if position is None:
                return parse(line, source=source, fallback_ts=fallback_ts, **kwargs)
            return parse(line, source=source, position=position, fallback_ts=fallback_ts, **kwargs)
        except Exception as exc:  # on purpose: whatever the bug, the line is kept and the source goes on
            return quarantined(parse.__name__, line, exc, source=source, position=position, fallback_ts=fallback_ts)

    return safe


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

# Traditional (RFC 3164 / rsyslog's file formats) in one match: priority, timestamp (month, day, time: sliced
# from ``bsd`` when it is first seen, not captured per line), host, then the tag
# (``prog[pid]: ``) when there is one, and the message. Digits and the host are ASCII classes; the tag's
# ``\s`` is any Unicode space.
_TRADITIONAL = re.compile(
    r"(?:<(?P<pri>[0-9]{1,3})>)?"
    r"(?:(?P<bsd>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?)"
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


def _rfc5424(m5: re.Match[str], line: str, source: str, position: str) -> Record | None:
    """The record of a line _RFC5424 matched, or None if its timestamp, structured data or priority is bad."""
    pri5, ts_text, host, app, procid, msgid, rest = m5.groups()
    ts = parse_rfc3339(ts_text)
    sd = _parse_sd(rest)
    pri = int(pri5)
    if ts is None or sd is None or pri >= 192:
        return None
    facility, severity, extra = _pri(pri)
    fields, msg = sd
    fields.update(extra)
    if msgid != "-":
        fields["msgid"] = msgid
    pid = _int_or_none(procid)
    if procid != "-" and pid is None:
        fields["procid"] = procid
    return Record(source, position, ts, msg.removeprefix("\ufeff"), line, False, facility, severity,
                  None if app == "-" else app, pid, None if host == "-" else host, fields)


_BSD_KEPT = 4096
"""Traditional timestamps one syslog parser remembers (its lines share their second; bounded)."""

LineParser = Callable[[str, str, datetime], Record]
"""``(line, position, fallback_ts) -> Record``: the parser of one source's lines, positional, with what the lines
share (source, the time of reading, the zone) bound. The file reader calls one per line; guard it as
:func:`guarded` does."""


def syslog_parser(source: str, now: datetime, zone: tzinfo = UTC) -> LineParser:
    """:func:`parse_syslog` for the lines of ``source`` read at ``now``: the file reader makes one per batch.

    Traditional timestamps carry no year; the year a timestamp text gets depends only on ``now`` and ``zone``,
    so each parser remembers it per text (the lines of a busy log share their second)."""
    bsd_known: dict[str, datetime | None] = {}
    fromisoformat = datetime.fromisoformat

    def parse(line: str, position: str, fallback_ts: datetime) -> Record:  # noqa: PLR0912 (one function: it runs per line)
        if line.isascii():  # (clean_text's own first test, without its call: no BOM either)
            text = line
        else:
            line = clean_text(line)
            text = line.removeprefix("\ufeff")
        if text.startswith("<") and (m5 := _RFC5424.match(text)) is not None \
                and (rec := _rfc5424(m5, line, source, position)) is not None:
            return rec
        m = _TRADITIONAL.match(text)
        if m is not None:
            pri_text, bsd, iso, host, program, pid_text, msg = m.groups()
            if bsd is not None:
                try:
                    ts = bsd_known[bsd]
                except KeyError:
                    if len(bsd_known) >= _BSD_KEPT:
                        bsd_known.clear()
                    # (bsd: ``Nov 27 18:33:23[.123]`` as _TRADITIONAL's ``bsd`` group matched it)
                    ts = bsd_known[bsd] = _bsd_time(bsd[:3], bsd[4:6].strip(), bsd[7:15], now, zone)
            else:
                # _TRADITIONAL matched the shape parse_rfc3339 hands to fromisoformat as it is (more than 6
                # fractional digits aside, which it cuts and fromisoformat truncates alike): skip its test.
                try:
                    ts = utc_in_range(fromisoformat(iso))
                except ValueError:  # month 13, hour 25 ...
                    ts = parse_rfc3339(iso)
            if ts is not None:
                if pri_text is None:
                    facility = severity = None
                    extra: dict[str, str] = {}
                else:
                    tpri = int(pri_text)
                    if tpri >= 192:
                        return Record(source, position, fallback_ts, line, line, True)
                    facility, severity, extra = _pri(tpri)
                pid = None
                if pid_text is not None:
                    pid = int(pid_text) if pid_text.isdigit() and pid_text.isascii() and len(pid_text) <= 10 else None
                    if pid is None or pid > 2**31 - 1:  # (as _int_or_none, inline: every line has one)
                        pid = None
                        extra["procid"] = pid_text
                # (positional: this runs for every line; the order is Record's field order)
                return Record(source, position, ts, msg, line, False, facility, severity, program, pid, host, extra)
        return Record(source, position, fallback_ts, line, line, True)

    return parse


def parse_syslog(
    line: str, *, source: str, position: str, fallback_ts: datetime, now: datetime, zone: tzinfo = UTC
) -> Record:
    """Parse one syslog line (traditional, RFC 3339 high-precision, RFC 3164 or RFC 5424 format)."""
    return syslog_parser(source, now, zone)(line, position, fallback_ts)


# --- JSON lines -------------------------------------------------------------------------------------

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


def json_line_parser(source: str) -> LineParser:
    """:func:`parse_json_line` for the lines of ``source`` (positional, as the file reader calls it)."""

    def parse(line: str, position: str, fallback_ts: datetime) -> Record:
        line = clean_text(line)
        try:
            obj = loads(line.removeprefix("\ufeff"), non_finite=True)
        except InvalidJson:
            obj = None
        if not isinstance(obj, dict):
            return Record(source, position, fallback_ts, line, line, True)
        ts = _json_ts(obj.get("ts", obj.get("timestamp", obj.get("time"))))
        level = obj.get("level", obj.get("levelname"))
        message = obj.get("message", obj.get("msg"))
        logger = obj.get("logger", obj.get("name"))
        pid = obj.get("pid")
        host = obj.get("host", obj.get("hostname"))
        fields = {clean_text(k): _text(v) for k, v in obj.items() if k not in _JSON_KNOWN}
        return Record(
            source,
            position,
            ts if ts is not None else fallback_ts,
            _text(message) if message is not None else "",
            line,
            ts is None,
            None,
            LEVELS.get(level.lower()) if isinstance(level, str) else None,
            _str_or_none(logger),
            pid if isinstance(pid, int) and not isinstance(pid, bool) and 0 <= pid < 2**31 else None,
            _str_or_none(host),
            fields,
        )

    return parse


def parse_json_line(line: str, *, source: str, position: str, fallback_ts: datetime) -> Record:
    """Parse one JSON application log line: ``ts``, ``level``, ``message``/``msg``, ``logger``, extras."""
    return json_line_parser(source)(line, position, fallback_ts)


def raw_line_parser(source: str) -> LineParser:
    """:func:`parse_raw_line` for the lines of ``source`` (positional, as the file reader calls it)."""

    def parse(line: str, position: str, fallback_ts: datetime) -> Record:
        line = clean_text(line)
        return Record(source, position, fallback_ts, line, line)

    return parse


def parse_raw_line(line: str, *, source: str, position: str, fallback_ts: datetime) -> Record:
    """A line kept as it is (format ``raw``): no parse, no error."""
    return raw_line_parser(source)(line, position, fallback_ts)


# --- journal ------------------------------------------------------------------------------------------

# Journal fields copied into ``fields`` (others are dropped: the journal keeps them all anyway).
JOURNAL_FIELDS = ("_SYSTEMD_UNIT", "_TRANSPORT", "_UID", "_COMM", "_BOOT_ID", "SYSLOG_FACILITY")


def _byte_array(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value
    )


def _journal_text(value: Any) -> tuple[str, bool]:
    """A journal field value: a string, a byte array (binary or non-UTF-8 data), a list of those (a field
    given several times), or null; anything else as compact JSON. Always storable text."""
    if isinstance(value, str):
        return clean_text(value), False
    if _byte_array(value):
        return bytes(value).decode("utf-8", errors="replace"), True
    if isinstance(value, list):  # a field given several times: journalctl lists the values
        parts = [
            clean_text(v) if isinstance(v, str)
            else bytes(v).decode("utf-8", errors="replace") if _byte_array(v)
            else _text(v)
            for v in value
        ]
        return "\n".join(parts), False
    return "" if value is None else _text(value), False


def _journal_scalar(value: Any) -> Any:
    """A field given several times (a list) counts by its first value, as journalctl shows it."""
    if isinstance(value, list) and value and not _byte_array(value):
        return value[0]
    return value


def _realtime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    try:
        return utc_in_range(EPOCH + timedelta(microseconds=int(value)))
    except OverflowError:
        return None


def journal_position_for_unparsed(line: str) -> str:
    """Row key for a journal line that is not an entry (it has no cursor): a hash of the line."""
    return "unparsed:" + hashlib.sha256(line.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def parse_journal_entry(line: str, *, source: str, fallback_ts: datetime) -> Record:
    """Parse one line of ``journalctl -o json``; the row key is the entry's ``__CURSOR``."""
    line = clean_text(line)
    try:
        obj = loads(line, non_finite=True)
    except InvalidJson:
        obj = None
    cursor = obj.get("__CURSOR") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or not isinstance(cursor, str) or not cursor or not cursor.isprintable():
        return Record(source=source, position=journal_position_for_unparsed(line), ts=fallback_ts, message=line,
                      raw=line, parse_error=True)
    cursor = clean_text(cursor)
    ts = _realtime(obj.get("__REALTIME_TIMESTAMP"))
    message, binary = _journal_text(obj.get("MESSAGE"))
    prio = _int_or_none(_journal_scalar(obj.get("PRIORITY")))
    fac = _int_or_none(_journal_scalar(obj.get("SYSLOG_FACILITY")))
    program = _journal_scalar(obj.get("SYSLOG_IDENTIFIER")) or _journal_scalar(obj.get("_COMM"))
    pid = _int_or_none(_journal_scalar(obj.get("_PID"))) or _int_or_none(_journal_scalar(obj.get("SYSLOG_PID")))
    fields = {k.lstrip("_").lower(): _journal_text(obj[k])[0] for k in JOURNAL_FIELDS if k in obj}
    if "syslog_facility" in fields:
        fields["facility_code"] = fields.pop("syslog_facility")
    if binary:
        fields["message_binary"] = "true"
    facility = FACILITIES.get(fac) if fac is not None else None
    if facility is None and obj.get("_TRANSPORT") == "kernel":
        facility = "kern"
    host = obj.get("_HOSTNAME")
    return Record(
        source=source,
        position=cursor,
        ts=ts if ts is not None else fallback_ts,
        message=message,
        raw=line,
        parse_error=ts is None,
        facility=facility,
        severity=SEVERITIES[prio] if prio is not None and prio < 8 else None,
        program=_str_or_none(program),
        pid=pid,
        hostname=_str_or_none(_journal_scalar(host)),
        fields=fields,
    )
