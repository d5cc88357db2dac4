"""Accounts, API clients, the audit trail, the rate limiter and the management commands."""
