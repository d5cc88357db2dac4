"""Shared helpers of the health agent's unit tests (a plain module: every test folder has its own conftest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from iact_agents.health.checks import CommandOutput

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "health"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class FakeRunner:
    """Answers commands by their argv (joined with spaces); records what was asked."""

    def __init__(self, answers: dict[str, CommandOutput | Exception]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandOutput:
        self.calls.append(list(argv))
        answer = self.answers[" ".join(argv)]
        if isinstance(answer, Exception):
            raise answer
        return answer
