"""``cassandra:cql_login``: the configured role can log in over CQL (TLS with ``ssl_ca_file``, the node's
certificate and address verified) and read ``system.local``."""

from __future__ import annotations

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import RoundRobinPolicy

from ..errors import ConfigError
from .checks import stopwatch
from .config import CassandraSettings
from .models import CheckResult, Status


def cql_login_check(cfg: CassandraSettings, host: str) -> CheckResult:
    """``cassandra:cql_login``: log in with the configured role and read ``system.local``."""
    if cfg.username is None:
        return CheckResult("cassandra", "cql_login", host, Status.UNKNOWN, "no cassandra.username configured")
    try:
        password = cfg.password()
        ssl_context = cfg.ssl_context()
    except ConfigError as exc:  # a credential or CA file missing, empty or unreadable: this check fails, not the run
        return CheckResult("cassandra", "cql_login", host, Status.CRITICAL, str(exc))
    assert password is not None
    cluster = Cluster(
        contact_points=cfg.contact_points,
        port=cfg.port,
        auth_provider=PlainTextAuthProvider(username=cfg.username, password=password.get_secret_value()),
        execution_profiles={
            EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=RoundRobinPolicy(),
                                                   request_timeout=cfg.connect_timeout_s),
        },
        protocol_version=cfg.protocol_version,
        connect_timeout=cfg.connect_timeout_s,
        control_connection_timeout=cfg.connect_timeout_s,
        ssl_context=ssl_context,
    )
    try:
        with stopwatch() as watch:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local").one()
        version = getattr(row, "release_version", None)
        return CheckResult("cassandra", "cql_login", host, Status.OK, f"logged in as {cfg.username}",
                           watch.ms, {"release_version": version, "contact_points": cfg.contact_points,
                                      "tls": ssl_context is not None})
    except Exception as exc:  # the driver raises many types (NoHostAvailable, AuthenticationFailed...)
        return CheckResult("cassandra", "cql_login", host, Status.CRITICAL,
                           f"CQL login as {cfg.username} failed: {describe_driver_error(exc)}", None,
                           {"contact_points": cfg.contact_points})
    finally:
        cluster.shutdown()


def describe_driver_error(exc: Exception) -> str:
    """One short line: for NoHostAvailable, the first host's own error (bad credentials, refused...)."""
    if isinstance(exc, NoHostAvailable) and isinstance(getattr(exc, "errors", None), dict) and exc.errors:
        endpoint, inner = next(iter(exc.errors.items()))
        return f"{endpoint}: {type(inner).__name__}: {_first_line(inner)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "(no message)"
