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

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
from cassandra.policies import WhiteListRoundRobinPolicy


def main() -> int:
    warnings.simplefilter("ignore", DeprecationWarning)
    rc = configparser.ConfigParser()
    rc.read(os.environ.get("CQLSHRC", os.path.expanduser("~/.cassandra/cqlshrc")))
    host = rc.get("connection", "hostname", fallback="127.0.0.1")
    port = rc.getint("connection", "port", fallback=9042)
    auth = None
    if rc.has_option("authentication", "username"):
        auth = PlainTextAuthProvider(rc.get("authentication", "username"), rc.get("authentication", "password"))
    ssl_context = None
    if rc.getboolean("connection", "ssl", fallback=False):
        ssl_context = ssl.create_default_context(cafile=rc.get("ssl", "certfile"))
        ssl_context.check_hostname = True
    cluster = Cluster([host], port=port, auth_provider=auth, ssl_context=ssl_context,
                      load_balancing_policy=WhiteListRoundRobinPolicy([host]), protocol_version=5)
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
