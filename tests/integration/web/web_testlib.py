"""What the web layer's integration tests share (imported by conftest.py and the tests; no fixtures here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Site:
    host: str
    """Inventory name of the web host the site is served from."""
    url: str
    """Base URL, ``https://<address>/``."""
    address: str
    ca: Path
    """The lab CA certificate (PEM) the site's certificate is signed by."""
    users: dict[str, str]
    """username -> password (from the vault)."""
    superuser: str
    viewer: str | None
    tokens: dict[str, str]
    """API client name -> token (from the vault)."""
    output: Path
    """Where screenshots, CSV downloads and measurements go."""
