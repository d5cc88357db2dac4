"""Root pytest plugin: with ``IACT_STRICT_SKIPS=1`` (set by ``make unit`` and the stack scenario's verify),
a skip that is not on the allow-list fails the run. Suites skip when what they test against is missing (an
unset environment variable, a group absent from the inventory); in the places where the services are
supposed to be there, such a skip would turn a whole suite green without running it.

The allow-list, ``tests/allowed_skips.yml``, names the skips that are by design (per-host parametrisation:
a check that applies to backup targets only is skipped on the other hosts) with the reason for each.

It also loads the hypothesis profile of every suite: no per-example deadline (a deadline is a wall-clock
assertion, and tests never assert on wall-clock time: one failed at a load average of 29).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

settings.register_profile("iact", deadline=None)
settings.load_profile("iact")

ALLOWED = Path(__file__).resolve().parent / "tests" / "allowed_skips.yml"


def _allowed() -> list[re.Pattern[str]]:
    doc = yaml.safe_load(ALLOWED.read_text(encoding="utf-8")) or []
    return [re.compile(entry["reason"]) for entry in doc]


_unexpected: list[tuple[str, str]] = []


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get("IACT_STRICT_SKIPS") != "1" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _reason(report)
    if not any(p.search(reason) for p in _allowed()):
        _unexpected.append((report.nodeid, reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _unexpected:
        terminalreporter.section("unexpected skips (IACT_STRICT_SKIPS=1; allow-list: tests/allowed_skips.yml)")
        for nodeid, reason in _unexpected:
            terminalreporter.line(f"UNEXPECTED SKIP {nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unexpected and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
