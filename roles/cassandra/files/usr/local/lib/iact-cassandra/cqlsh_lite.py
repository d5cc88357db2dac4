#!/usr/bin/python3
"""A small CQL shell for nodes whose Cassandra release ships no cqlsh (iact-ops roles/cassandra).

Reads the login and the node address from ~/.cassandra/cqlshrc (or --cqlshrc), like cqlsh, and runs
statements from -e, -f or standard input. Supports the cqlsh command CONSISTENCY <level>. Passwords are
never accepted on the command line. TLS as cqlsh does it: ``ssl = true`` in ``[connection]`` (or ``--ssl``),
the CA in ``[ssl] certfile``; the node's certificate and its address are always verified here.
"""

import argparse
import configparser
import os
import ssl
import sys

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement


def split_statements(text):
    """Split CQL text on semicolons outside quotes and comments."""
    out, buf, quote, i = [], [], None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            buf.append(ch)
        elif text.startswith("--", i) or text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch == ";":
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    out.append("".join(buf).strip())
    return [s for s in out if s]


def main():
    parser = argparse.ArgumentParser(prog="cqlsh", description=__doc__.splitlines()[0])
    parser.add_argument("host", nargs="?")
    parser.add_argument("port", nargs="?", type=int)
    parser.add_argument("-e", "--execute")
    parser.add_argument("-f", "--file")
    parser.add_argument("-k", "--keyspace")
    parser.add_argument("-u", "--username", help="role (its password must be in the cqlshrc)")
    parser.add_argument("--cqlshrc", default=os.path.expanduser("~/.cassandra/cqlshrc"))
    parser.add_argument("--request-timeout", type=float, default=60)
    parser.add_argument("--ssl", action="store_true", help="TLS with the CA of the cqlshrc's [ssl] certfile")
    args = parser.parse_args()

    rc = configparser.ConfigParser(interpolation=None)
    rc.read(args.cqlshrc)
    host = args.host or rc.get("connection", "hostname", fallback="127.0.0.1")
    port = args.port or rc.getint("connection", "port", fallback=9042)
    username = args.username or rc.get("authentication", "username", fallback=None)
    password = rc.get("authentication", "password", fallback=None)
    auth = PlainTextAuthProvider(username, password) if username else None
    ssl_context = None
    if args.ssl or rc.getboolean("connection", "ssl", fallback=False):
        certfile = os.environ.get("SSL_CERTFILE") or rc.get("ssl", "certfile", fallback=None)
        if not certfile:
            parser.error("TLS needs the CA: set [ssl] certfile in the cqlshrc (or SSL_CERTFILE)")
        ssl_context = ssl.create_default_context(cafile=certfile)
        ssl_context.check_hostname = True

    if args.execute:
        text = args.execute
    elif args.file:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    else:
        text = sys.stdin.read()

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]),
                               request_timeout=args.request_timeout)
    cluster = Cluster([host], port=port, auth_provider=auth, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      ssl_context=ssl_context)
    session = cluster.connect(args.keyspace)
    level = ConsistencyLevel.ONE
    status = 0
    try:
        for stmt in split_statements(text):
            words = stmt.split()
            if words[0].upper() == "CONSISTENCY":
                if len(words) > 1:
                    level = ConsistencyLevel.name_to_value[words[1].upper()]
                print(f"Consistency level set to {ConsistencyLevel.value_to_name[level]}.")
                continue
            try:
                result = session.execute(SimpleStatement(stmt, consistency_level=level),
                                         timeout=args.request_timeout)
            except Exception as exc:
                print(f"<stdin>: {type(exc).__name__}: {exc}", file=sys.stderr)
                status = 2
                continue
            if result.column_names:
                print(" | ".join(result.column_names))
                print("-+-".join("-" * len(c) for c in result.column_names))
                count = 0
                for row in result:
                    print(" | ".join("null" if v is None else str(v) for v in row))
                    count += 1
                print(f"\n({count} rows)")
    finally:
        cluster.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
