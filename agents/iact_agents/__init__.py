"""IACT agents: one package, one console script (`iact-agent`), a library part and a thin CLI."""

__version__ = "0.1.0"
