"""Syntax of the /etc/cron.d files in files/cron/: names cron accepts, valid schedules, one wrapper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CRON_FILES = sorted(p for p in (ROOT / "files" / "cron").iterdir() if p.is_file() and p.suffix != ".md")
RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
NAMES = {3: "jan feb mar apr may jun jul aug sep oct nov dec", 4: "sun mon tue wed thu fri sat"}
ENV_LINE = re.compile(r"^[A-Z_]+=")


def field_ok(field: str, index: int) -> bool:
    lo, hi = RANGES[index]
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base == "*":
            continue
        bounds = base.split("-")
        if len(bounds) > 2:
            return False
        for b in bounds:
            if b.isdigit():
                if not lo <= int(b) <= hi:
                    return False
            elif b.lower() not in NAMES.get(index, "").split():
                return False
    return True


def cron_errors(path: Path) -> list[str]:
    errors = []
    if not re.fullmatch(r"[A-Za-z0-9_-]+", path.name):
        errors.append(f"{path.name}: cron ignores /etc/cron.d files named with other than letters, digits, _, -")
    text = path.read_text()
    if not text.endswith("\n"):
        errors.append(f"{path.name}: must end with a newline or cron ignores the last line")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#") or ENV_LINE.match(line):
            continue
        fields = line.split(None, 6)
        if len(fields) < 7:
            errors.append(f"{path.name}:{n}: needs 5 time fields, a user and a command")
            continue
        for i in range(5):
            if not field_ok(fields[i], i):
                errors.append(f"{path.name}:{n}: time field {i + 1} {fields[i]!r} is invalid")
        if fields[5] not in {"root", "iact"}:
            errors.append(f"{path.name}:{n}: user {fields[5]!r} is not root or iact")
        if not fields[6].startswith("iact-agent job run --name "):
            errors.append(f"{path.name}:{n}: every job runs through 'iact-agent job run'")
    return errors


def test_there_are_cron_files() -> None:
    assert CRON_FILES


@pytest.mark.parametrize("path", CRON_FILES, ids=[p.name for p in CRON_FILES])
def test_cron_file_syntax(path: Path) -> None:
    assert cron_errors(path) == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.name", "0 * * * * iact iact-agent job run --name x -- true\n", "cron ignores"),
        ("ok", "0 * * * * iact iact-agent job run --name x -- true", "newline"),
        ("ok", "61 * * * * iact iact-agent job run --name x -- true\n", "time field 1"),
        ("ok", "0 */0 * * * iact iact-agent job run --name x -- true\n", "time field 2"),
        ("ok", "0 * * * * iact\n", "needs 5 time fields"),
        ("ok", "0 * * * * www-data iact-agent job run --name x -- true\n", "user"),
        ("ok", "0 * * * * iact /usr/bin/true\n", "iact-agent job run"),
    ],
)
def test_checker_catches_mistakes(tmp_path: Path, name: str, content: str, expected: str) -> None:
    f = tmp_path / name
    f.write_text(content)
    assert any(expected in e for e in cron_errors(f))
