"""Self-healing with guardrails (`iact-agent remediate`), run by the health job after the health checks."""

from __future__ import annotations

from .cli import register

__all__ = ["register"]
