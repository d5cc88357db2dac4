"""RNF-002: no Redis, Prometheus, Grafana, Celery, cache server or SMTP relay to an outside host, anywhere.

A small scanner shared by the guard test and its own self-test, so the guard is proven able to fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

# What the stack must never install, configure or depend on.
FORBIDDEN = re.compile(
    r"\b(redis(-server|-py|-tools)?|prometheus[\w-]*|grafana[\w-]*|celery|node[_-]exporter|alertmanager"
    # Cache servers and the Django cache backends that need one (the web layer keeps sessions and rate-limit
    # counters in MariaDB; a per-process LocMemCache is no server).
    r"|memcached?|pymemcache|pylibmc|varnish|django_redis|backends\.(memcached|redis)\w*|RedisCache|PyMemcacheCache)\b",
    re.IGNORECASE,
)
# An SMTP relay to another host: postfix relayhost / smarthost / smtp connections to a remote server.
RELAY = re.compile(
    r"(relayhost\s*=\s*\S+|smarthost|dc_smarthost\s*=\s*'?\S+|smtplib\.SMTP(_SSL)?\(\s*['\"](?!localhost|127\.)"
    r"|smtp_host\s*[:=]\s*['\"]?(?!localhost|127\.)[\w.-]+)",
    re.IGNORECASE,
)
SCANNED_DIRS = (
    "roles", "playbooks", "templates", "files", "inventory", "agents/iact_agents", "web/iact_web", "scripts",
    "molecule", "bench",
)
SCANNED_FILES = (
    "requirements.txt", "requirements.in", "agents/pyproject.toml", "agents/requirements-runtime.txt",
    "web/pyproject.toml", "web/requirements-runtime.txt", "web/web.example.toml", "Makefile", "ansible.cfg",
)
TEXT_SUFFIXES = {
    ".yml", ".yaml", ".j2", ".py", ".sh", ".cfg", ".conf", ".toml", ".txt", ".in", ".sql", ".html", ".js", "",
}
# Lines that name the forbidden tools only to forbid them.
ALLOW_MARK = "rnf-002: allowed mention"


def candidate_files(root: Path) -> Iterator[Path]:
    for rel in SCANNED_FILES:
        if (root / rel).is_file():
            yield root / rel
    for rel in SCANNED_DIRS:
        base = root / rel
        if base.is_dir():
            for p in sorted(base.rglob("*")):
                if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts:
                    yield p


def violations(files: Iterable[Path], root: Path) -> list[str]:
    found = []
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(lines, 1):
            if ALLOW_MARK in line.lower():
                continue
            for pattern in (FORBIDDEN, RELAY):
                m = pattern.search(line)
                if m:
                    found.append(f"{path.relative_to(root)}:{number}: {m.group(0)!r}")
    return found
