"""A corrupted backup file is caught by the sha256 manifest and the restore refuses before touching data.

Each test takes a fresh backup, flips one byte of one file of it ON THE TARGET, runs the restore playbook
with confirm=yes and checks that it failed with the manifest message while the service kept running
untouched. The corrupted backup is deleted afterwards (it would otherwise be the newest one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import drill

ROOT = Path(__file__).resolve().parents[2]
BACKUP = "/usr/local/sbin/iact-backup"


def playbook(inventory: str, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "ansible-playbook"
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_FORCE_COLOR": "0"}
    args = [str(exe), "-i", inventory, f"playbooks/ops/{name}", "-e", "confirm=yes"]
    for e in extra:
        args += ["-e", e]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def target_dir(c: drill.Cluster, source: str) -> tuple[str, str]:
    target = c.groups["backup_targets"][0]
    root = c.hosts[source].data.get("ansible_vars", {}).get("backup_target_root", "/srv/iact-backup")
    return target, f"{root}/{source}/data"


def wait_all_up_normal(c: drill.Cluster, timeout: float = 600) -> None:
    """The node restore refuses an unhealthy cluster before it reads any manifest (its repair needs the
    replicas): wait for every node UN, e.g. after the drill has just restored one."""
    nodes = c.groups["cassandra"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = c.run(nodes[0], "nodetool status 2>/dev/null | grep -c '^UN' || true", check=False).strip()
        if out == str(len(nodes)):
            return
        time.sleep(5)
    raise AssertionError(f"not every Cassandra node is UN after {timeout:.0f} s")


def corrupt(c: drill.Cluster, target: str, path: str) -> None:
    c.run(target, f"test -s {path} && printf 'X' | dd of={path} bs=1 seek=0 conv=notrunc status=none")


def main_pid(c: drill.Cluster, host: str, unit: str) -> str:
    return c.run(host, f"systemctl is-active {unit} >/dev/null && systemctl show -p MainPID --value {unit}").strip()


def test_corrupt_mysql_backup_is_refused(cluster: drill.Cluster, inventory: str) -> None:
    db = cluster.groups["mysql"][0]
    backup_id = cluster.run(db, f"{BACKUP} run mysql").strip().splitlines()[-1].split()[0]
    target, base = target_dir(cluster, db)
    try:
        corrupt(cluster, target, f"{base}/{backup_id}/data/ibdata1")
        pid = main_pid(cluster, db, "mariadb")
        run = playbook(inventory, "restore_mysql.yml", f"backup_restore_id={backup_id}")
        said = run.stdout + run.stderr  # where ansible-core prints the failure depends on its settings
        assert run.returncode != 0, said[-2000:]
        assert "sha256 mismatch" in said, said[-2000:]
        assert "data/ibdata1" in said
        assert "refusing to restore" in said
        # The restore command itself refuses too (exit 3), and the server was never stopped.
        direct = cluster.run(db, f"{BACKUP} restore-mysql --backup {backup_id} --no-binlogs >/dev/null 2>&1;"
                                 " echo rc=$?", check=False)
        assert direct.strip() == "rc=3"
        assert main_pid(cluster, db, "mariadb") == pid
    finally:
        cluster.run(target, f"rm -rf {base}/{backup_id}")


def test_corrupt_cassandra_backup_is_refused(cluster: drill.Cluster, inventory: str) -> None:
    node = cluster.groups["cassandra"][-1]
    backup_id = cluster.run(node, f"{BACKUP} run cassandra").strip().splitlines()[-1].split()[0]
    target, base = target_dir(cluster, node)
    try:
        victim = cluster.run(target, f"find {base}/{backup_id}/data/system_schema -name '*-Data.db' | head -1").strip()
        assert victim, "no Data.db in the backup"
        corrupt(cluster, target, victim)
        pid = main_pid(cluster, node, "cassandra")
        wait_all_up_normal(cluster)
        run = playbook(inventory, "restore_cassandra_node.yml", f"backup_restore_node={node}",
                       f"backup_restore_id={backup_id}", "backup_restore_repair=false")
        said = run.stdout + run.stderr
        assert run.returncode != 0, said[-2000:]
        assert "sha256 mismatch" in said, said[-2000:]
        assert "refusing to restore" in said
        assert main_pid(cluster, node, "cassandra") == pid
    finally:
        cluster.run(target, f"rm -rf {base}/{backup_id}")
