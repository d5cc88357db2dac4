"""MySQL/MariaDB connections from option files (``[client]`` user, password, host/socket, database).

Credentials are never passed on a command line or kept in agent configs: every agent names the
option file the mysql role wrote for its purpose (``/etc/iact/mysql-<purpose>.cnf``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pymysql
import pymysql.cursors

from .errors import ConfigError, ServiceUnavailable


def connect(defaults_file: Path, *, connect_timeout: float = 5.0, autocommit: bool = True) -> pymysql.Connection:
    """Open a connection described by ``defaults_file``; errors are one-line agent errors."""
    if not defaults_file.is_file():
        raise ConfigError(f"{defaults_file}: MySQL credential file not found")
    if not os.access(defaults_file, os.R_OK):
        raise ConfigError(f"{defaults_file}: MySQL credential file is not readable by this user")
    try:
        return pymysql.connect(
            read_default_file=str(defaults_file),
            read_default_group="client",
            connect_timeout=int(connect_timeout),
            autocommit=autocommit,
            charset="utf8mb4",
        )
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else "?"
        message = exc.args[1] if len(exc.args) > 1 else str(exc)
        raise ServiceUnavailable(f"MySQL is not reachable with {defaults_file}: ({code}) {message}") from None
