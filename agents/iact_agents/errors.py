"""Exception hierarchy shared by every agent. The CLI maps each class to an exit code; the library
never calls ``sys.exit()``."""

from __future__ import annotations


class AgentError(Exception):
    """Base class: an expected failure with a one-line message for people."""

    exit_code = 1


class ConfigError(AgentError):
    """The configuration is missing, unreadable or invalid. Exit code 2 (usage/config error)."""

    exit_code = 2


class InputError(AgentError):
    """Input data (a file, an event) is invalid. Exit code 2."""

    exit_code = 2


class ServiceUnavailable(AgentError):
    """A backing service (MySQL, Cassandra) cannot be reached. Exit code 3 (Nagios: unknown)."""

    exit_code = 3
