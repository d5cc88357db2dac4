"""Compliance (RNF-002) and security audit of the running host (`iact-agent audit`)."""

from __future__ import annotations

from .cli import register

__all__ = ["register"]
