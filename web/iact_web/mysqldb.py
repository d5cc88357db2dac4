"""Django's MySQL backend over PyMySQL, without a second copy of PyMySQL's modules.

``pymysql.install_as_MySQLdb()`` only makes ``MySQLdb`` another name of the ``pymysql`` package. Django then
imports ``MySQLdb.constants``, ``MySQLdb.converters`` and, through them, ``MySQLdb.err``: Python finds these
in pymysql's folder and runs them *again* as new modules, and binds the new ``err`` module as the package's
``err`` attribute. From then on ``pymysql.err.OperationalError`` (what the agents' code catches, e.g. the
retrying ``iact_agents.dora.store.Database``) is not the class PyMySQL raises (bound when its connections
module was first imported), so nothing catches it. Registering every loaded ``pymysql.*`` module under its
``MySQLdb.*`` name first makes those imports find the modules that already exist.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

import pymysql

if TYPE_CHECKING:
    from iact_agents.dora.store import Database

_SUBMODULES = (
    "pymysql.err", "pymysql.constants", "pymysql.constants.CLIENT", "pymysql.constants.COMMAND",
    "pymysql.constants.CR", "pymysql.constants.ER", "pymysql.constants.FIELD_TYPE", "pymysql.constants.FLAG",
    "pymysql.constants.SERVER_STATUS", "pymysql.converters", "pymysql.cursors", "pymysql.connections",
    "pymysql.times", "pymysql.charset", "pymysql.optionfile", "pymysql.protocol",
)


def agents_database() -> Database:
    """The agents' retrying connection (:class:`iact_agents.dora.store.Database`) over the web's own account,
    for the pages that read through the agents' own queries (DORA events, the last audits). Close it after use."""
    from django.conf import settings  # noqa: PLC0415 - settings imports this module first
    from iact_agents.dora.store import Database  # noqa: PLC0415 - not at the settings' import time

    return Database(settings.CONFIG.mysql.defaults_file, connect_timeout=settings.CONFIG.mysql.connect_timeout_s,
                    attempts=2, base_delay=0.2)


def install() -> None:
    for name in _SUBMODULES:
        importlib.import_module(name)
    for name, module in list(sys.modules.items()):
        if name.startswith("pymysql."):
            sys.modules.setdefault("MySQLdb." + name.removeprefix("pymysql."), module)
    pymysql.install_as_MySQLdb()
