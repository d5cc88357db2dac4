#!/usr/bin/python3
"""DR drill marker rows in Cassandra (uploaded by drill/drill.py to a Cassandra node and run there as root).

Login, address and TLS from root's ~/.cassandra/cqlshrc through the node's one cqlshrc login,
``cluster_from_cqlshrc`` of the backup's schema script (roles/backup installs it in /usr/local/lib/iact-backup
on every Cassandra node it backs up, which is every node a drill touches); the Python driver of the node.
  cql_markers.py setup                       keyspace iact_drill (RF 3 in every DC) and table markers
  cql_markers.py write DRILL BATCH N         N rows in partition (DRILL, BATCH) at consistency ALL
  cql_markers.py read DRILL BATCH            JSON: count, sha256 of the rows, newest write (consistency ALL)
  cql_markers.py drop                        drop the keyspace iact_drill
"""

import hashlib
import json
import sys
import warnings
from datetime import UTC, datetime
from typing import Any

from cassandra import ConsistencyLevel

sys.path.insert(0, "/usr/local/lib/iact-backup")
from cassandra_schema import cluster_from_cqlshrc  # roles/backup's, on the node

warnings.simplefilter("ignore", DeprecationWarning)


def session() -> tuple[Any, Any]:
    cluster = cluster_from_cqlshrc(consistency_level=ConsistencyLevel.ALL, request_timeout=60)
    return cluster, cluster.connect()


def main(argv: list[str]) -> int:
    cluster, s = session()
    try:
        if argv[0] == "setup":
            dcs = sorted({h.datacenter for h in cluster.metadata.all_hosts()})
            repl = ", ".join(f"'{dc}': 3" for dc in dcs)
            s.execute("CREATE KEYSPACE IF NOT EXISTS iact_drill WITH replication = "
                      f"{{'class': 'NetworkTopologyStrategy', {repl}}}")
            s.execute("CREATE TABLE IF NOT EXISTS iact_drill.markers (drill_id text, grp text, seq int,"
                      " payload text, written_at timestamp, PRIMARY KEY ((drill_id, grp), seq))")
            cluster.control_connection.wait_for_schema_agreement()
        elif argv[0] == "write":
            drill, batch, n = argv[1], argv[2], int(argv[3])
            ins = s.prepare("INSERT INTO iact_drill.markers (drill_id, grp, seq, payload, written_at)"
                            " VALUES (?, ?, ?, ?, ?)")
            for seq in range(n):
                payload = hashlib.sha256(f"{drill}/{batch}/{seq}".encode()).hexdigest()
                s.execute(ins, (drill, batch, seq, payload, datetime.now(UTC)))
            print(json.dumps({"written": n}))
        elif argv[0] == "read":
            drill, batch = argv[1], argv[2]
            rows = list(s.execute("SELECT seq, payload, written_at FROM iact_drill.markers"
                                  " WHERE drill_id = %s AND grp = %s", (drill, batch)))
            digest = hashlib.sha256("\n".join(f"{r.seq}:{r.payload}" for r in rows).encode()).hexdigest()
            newest = max((r.written_at for r in rows), default=None)
            print(json.dumps({"count": len(rows), "sha256": digest, "seqs": [r.seq for r in rows],
                              "newest": newest.replace(tzinfo=UTC).isoformat() if newest else None}))
        elif argv[0] == "drop":
            s.execute("DROP KEYSPACE IF EXISTS iact_drill")
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as exc:
        print(f"cql_markers: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["help"]))
