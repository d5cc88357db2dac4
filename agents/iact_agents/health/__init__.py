"""Health checks and self-hosted alerting (`iact-agent health`)."""

from __future__ import annotations

from .cli import register

__all__ = ["register"]
