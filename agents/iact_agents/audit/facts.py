"""What the checks look at, gathered once per run and shared: the host view and each service's facts.

A fact that cannot be gathered (MariaDB does not answer, a file cannot be parsed) raises
:class:`FactUnavailable` each time a check asks for it, and every check that needs it reports ``error`` with
the reason: never a pass. The gathering is memoised, failures included, so one unreachable server costs one
timeout per run, not one per check.

The services are reached only by reading: MariaDB through an account that can SELECT a few columns and
nothing else, in a read-only session; Cassandra by protocol probes and logins that run no statement but
one SELECT; the web layer by GET requests and one POST that its CSRF protection must refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .config import AuditConfig
from .host import HostView
from .model import Scope

T = TypeVar("T")


class FactUnavailable(Exception):
    """A fact could not be gathered; the message says why (it becomes the evidence of an ``error``)."""


class Facts:
    """The facts of one host for one run. Service facts are gathered on first use (see ``mariadb.py``,
    ``cassandra.py``, ``web.py``); tests may pre-set them with :meth:`provide`."""

    def __init__(self, cfg: AuditConfig, host: HostView) -> None:
        self.cfg = cfg
        self.host = host
        self._memo: dict[str, Any] = {}

    def memo(self, name: str, gather: Callable[[], T]) -> T:
        """``gather()`` once; a :class:`FactUnavailable` it raised is raised again on every later call."""
        if name not in self._memo:
            try:
                self._memo[name] = gather()
            except FactUnavailable as exc:
                self._memo[name] = exc
        value = self._memo[name]
        if isinstance(value, FactUnavailable):
            raise value
        return value  # type: ignore[no-any-return]

    def provide(self, name: str, value: Any) -> None:
        self._memo[name] = value

    # --- which parts of the stack this host runs ----------------------------------------------------

    def has_unit(self, *names: str) -> bool:
        return any(n in self.host.unit_files for n in names)

    def processes_named(self, *names: str) -> list[Any]:
        return [p for p in self.host.processes if p.names & set(names)]

    def scope_reason(self, scope: Scope) -> str | None:
        """None when checks of ``scope`` apply to this host, else why not (the "not applicable" evidence).

        A service applies when the configuration says this host runs it, or when it is found anyway (a unit
        file or a process): a server installed by hand is audited too."""
        if scope is Scope.HOST:
            return None
        if scope is Scope.MYSQL:
            found = (self.cfg.mysql.enabled or self.has_unit("mariadb.service", "mysql.service")
                     or bool(self.processes_named("mariadbd", "mysqld")))
            return None if found else "no MariaDB/MySQL server on this host (no unit, no process, not configured)"
        if scope is Scope.CASSANDRA:
            found = (self.cfg.cassandra.enabled or self.has_unit("cassandra.service")
                     or bool(self.processes_named("CassandraDaemon")))
            return None if found else "no Cassandra node on this host (no unit, no process, not configured)"
        found = self.cfg.web.enabled or self.has_unit(self.cfg.web.unit)
        return None if found else f"no web layer on this host ({self.cfg.web.unit} is not installed)"
