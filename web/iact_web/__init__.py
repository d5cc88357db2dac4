"""IACT web layer: DORA dashboard, operations pages, log search and a versioned, rate-limited JSON API."""

__version__ = "0.1.0"
