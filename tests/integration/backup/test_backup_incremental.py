"""roles/backup: a Cassandra backup sends only what is new, and the newest backup is still complete.

The node keeps the ciphertext of the SSTable files it has backed up (backup_cassandra_cache_dir) and the upload
names the previous complete backup as rsync --link-dest, so after a small write the next backup sends the new
SSTable (and the new metadata), takes the rest from the previous backup on the target, and still fetches,
verifies and decrypts on its own. Hosts as in test_backup_role.py; by hand against the lab:
    pytest --ansible-inventory=inventory/lab --connection=ansible tests/integration/backup
"""

from __future__ import annotations

import shlex
import uuid

from test_backup_role import (
    BACKUP,
    ID,
    conf,
    decrypt,
    first_source_of_kind,
    other_host,
    private_key_on,
    target_dir,
    target_of,
)

testinfra_hosts = ["ansible://cassandra"]

KS = "iact_backup_itest"


def cql(host, statement: str) -> None:
    run = host.run(f"cqlsh -e {shlex.quote(statement)}")  # root's cqlshrc on the node (admin login)
    assert run.rc == 0, run.stderr


def backup(host) -> tuple[str, int]:
    """(id, bytes of file data sent over the network) of a new Cassandra backup."""
    run = host.run(f"{BACKUP} run cassandra")
    assert run.rc == 0, run.stderr
    fields = run.stdout.split()
    assert len(fields) == 4 and ID.match(fields[0]), run.stdout
    return fields[0], int(fields[3])


def sizes(target, top: str) -> dict[str, tuple[int, int]]:
    """{relative path: (size, inode)} of every file of a backup directory on the target."""
    out = target.check_output(f"cd {top} && find . -type f -printf '%P %s %i\\n'")
    return {name: (int(size), int(ino)) for name, size, ino in (line.split() for line in out.splitlines())}


def test_a_second_backup_sends_only_the_new_files_and_restores(host):
    first_source_of_kind(host, "cassandra")
    dc = host.check_output("nodetool info | awk -F': *' '/^Data Center/ {print $2}'")
    nodes = len(host.ansible.get_variables()["groups"]["cassandra"])
    cql(host, f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
              f"{{'class': 'NetworkTopologyStrategy', '{dc}': {nodes}}}")
    cql(host, f"CREATE TABLE IF NOT EXISTS {KS}.incr (k text PRIMARY KEY, v text) "
              "WITH compression = {'enabled': 'false'}")
    target = target_of(host)
    work = f"{conf(host)['CASSANDRA_RESTORE_DIR']}/itest-incr"
    rotted = ""
    try:
        first, _ = backup(host)  # fills the cache with the node's current files
        marker = f"iact-incr-marker-{uuid.uuid4().hex}"
        cql(host, f"INSERT INTO {KS}.incr (k, v) VALUES ('{marker}', '{marker}')")
        host.check_output(f"nodetool flush {KS}")
        second, sent = backup(host)
        top1, top2 = f"{target_dir(host)}/{first}", f"{target_dir(host)}/{second}"
        old, new = sizes(target, top1), sizes(target, top2)
        # What the second backup could not take from the first: files the first has not, or not the same bytes.
        differ = target.check_output(f"cd {top2} && find . -type f -printf '%P\\n' | while read -r f; do"
                                     f" cmp -s {top1}/\"$f\" \"$f\" || echo \"$f\"; done").split()
        fresh = sum(new[name][0] for name in differ)
        total = sum(size for size, _ in new.values())
        assert any(name.startswith(f"data/{KS}/") and name.endswith("-Data.db.zst.age") for name in differ), differ
        assert sent <= fresh, f"sent {sent} bytes, but only {fresh} bytes of files are new: {differ}"
        assert fresh < total / 2, f"{fresh} of {total} bytes are new: the cache did not reuse the ciphertext"
        if target.file(f"{target_dir(host)}/{first}").user != "root":  # not sealed yet: hard links, one copy
            same = [name for name in new if name not in differ]
            assert same and all(new[name][1] == old[name][1] for name in same), "unchanged files are not linked"
        # The newest backup is complete by itself: fetched, verified, decrypted, the new row in it.
        fetched = host.run(f"{BACKUP} fetch {second} {work}")
        assert fetched.rc == 0, fetched.stderr
        with private_key_on(host):
            decrypt(host, second, work, f"{work}.plain")
        found = host.run(f"grep -r -l -a -F {marker} {work}.plain/data/{KS}")
        assert found.rc == 0, f"the new row is not in backup {second}"
        host.run(f"rm -rf {work} {work}.plain")
        # A file of the basis that rotted on the target (same size and mtime, other bytes; a new inode, so the
        # backups that share the old one stay intact) is sent again, not linked: the next backup still verifies.
        rotten = next(name for name in new if name not in differ and name.startswith("data/"))
        rotted = top2
        target.check_output(f"f={top2}/{rotten}; cp -p $f $f.rot && printf X | dd of=$f.rot bs=1 seek=0"
                            f" conv=notrunc status=none && touch -r $f $f.rot && mv $f.rot $f")
        third, _ = backup(host)
        assert target.run(f"cmp -s {top2}/{rotten} {target_dir(host)}/{third}/{rotten}").rc == 1
        checked = host.run(f"{BACKUP} fetch {third} {work}")
        assert checked.rc == 0, checked.stderr
    finally:
        host.run(f"rm -rf {work} {work}.plain")
        if rotted:  # made unrestorable on purpose: gone, as the target's retention would delete it
            target.run(f"rm -rf {rotted}")
        cql(host, f"DROP KEYSPACE IF EXISTS {KS}")
        for name in host.ansible.get_variables()["groups"]["cassandra"]:  # the drop's auto_snapshot is ours
            other_host(host, name).run(f"nodetool clearsnapshot --all -- {KS}")
