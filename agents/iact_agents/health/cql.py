"""``cassandra:cql_login``: the configured role can log in over CQL and read ``system.local``."""

from __future__ import annotations

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster

from .checks import stopwatch
from .config import CassandraSettings
from .models import CheckResult, Status


def cql_login_check(cfg: CassandraSettings, host: str) -> CheckResult:
    """``cassandra:cql_login``: log in with the configured role and read ``system.local``."""
    if cfg.username is None:
        return CheckResult("cassandra", "cql_login", host, Status.UNKNOWN, "no cassandra.username configured")
    password = cfg.password()  # ConfigError (one line) when the file is missing or too open
    assert password is not None
    cluster = Cluster(
        contact_points=cfg.contact_points,
        port=cfg.port,
        auth_provider=PlainTextAuthProvider(username=cfg.username, password=password.get_secret_value()),
        connect_timeout=cfg.connect_timeout_s,
        control_connection_timeout=cfg.connect_timeout_s,
    )
    try:
        with stopwatch() as watch:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local", timeout=cfg.connect_timeout_s).one()
        version = getattr(row, "release_version", None)
        return CheckResult("cassandra", "cql_login", host, Status.OK, f"logged in as {cfg.username}",
                           watch.ms, {"release_version": version, "contact_points": cfg.contact_points})
    except Exception as exc:  # the driver raises many types (NoHostAvailable, AuthenticationFailed...)
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return CheckResult("cassandra", "cql_login", host, Status.CRITICAL,
                           f"CQL login as {cfg.username} failed: {type(exc).__name__}: {reason}", None,
                           {"contact_points": cfg.contact_points})
    finally:
        cluster.shutdown()
