#!/usr/bin/python3
"""Print the whole schema of the cluster as CQL (what cqlsh's DESCRIBE SCHEMA prints).

iact-ops roles/backup. The login and the node address come from root's ~/.cassandra/cqlshrc (0600, written
by roles/cassandra), never from the command line; so does TLS (``ssl = true`` and the CA in ``[ssl] certfile``:
the node's certificate and address are verified). Uses Debian's python3-cassandra driver (as the CQL module of
roles/cassandra).
"""

import configparser
import os
import ssl
import sys
import warnings
from typing import Any

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy


def cluster_from_cqlshrc(path: str | None = None, **profile: Any) -> Cluster:
    """A driver Cluster for the node root's cqlshrc names: its login, address, port and TLS (the CA and the
    node's address verified), all requests to that node only; ``profile``: more ExecutionProfile options.

    The one cqlshrc login of the scripts run on a node: the DR drill's marker script imports it from this
    folder (drill/remote/cql_markers.py)."""
    rc = configparser.ConfigParser(interpolation=None)
    rc.read(path or os.environ.get("CQLSHRC", os.path.expanduser("~/.cassandra/cqlshrc")))
    host = rc.get("connection", "hostname", fallback="127.0.0.1")
    auth = None
    if rc.has_option("authentication", "username"):
        auth = PlainTextAuthProvider(rc.get("authentication", "username"), rc.get("authentication", "password"))
    ssl_context = None
    if rc.getboolean("connection", "ssl", fallback=False):
        ssl_context = ssl.create_default_context(cafile=rc.get("ssl", "certfile"))
        ssl_context.check_hostname = True
    default = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), **profile)
    return Cluster([host], port=rc.getint("connection", "port", fallback=9042), auth_provider=auth,
                   ssl_context=ssl_context, execution_profiles={EXEC_PROFILE_DEFAULT: default}, protocol_version=5)


def main() -> int:
    warnings.simplefilter("ignore", DeprecationWarning)
    cluster = cluster_from_cqlshrc()
    try:
        cluster.connect()
        sys.stdout.write(cluster.metadata.export_schema_as_string())
        sys.stdout.write("\n")
    except Exception as exc:  # one line for the operator, no traceback
        print(f"cassandra_schema: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
