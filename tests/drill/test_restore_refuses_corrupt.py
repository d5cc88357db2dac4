"""A backup changed ON THE TARGET is refused before anything is touched: a corrupted file (sha256), a manifest
edited to match a changed file (its MAC), a planted symlink, an extra file, a backup copied under a newer id,
and a corrupted binary log (its .auth). Each test tampers with a fresh backup as root on the target (who holds
no manifest key), runs the restore playbook with confirm=yes (it brings the private key, as in a real
restore) and checks that it failed with the refusal while the service kept running untouched. Tampered
backups are deleted afterwards (they would otherwise be the newest ones).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

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
        ring = c.ring(nodes[0])
        if ring["ok"] and ring["up_normal"] == len(nodes):
            return
        time.sleep(5)
    raise AssertionError(f"not every Cassandra node is UN after {timeout:.0f} s")


def corrupt(c: drill.Cluster, target: str, path: str) -> None:
    """Change the first byte of this backup's copy of ``path`` only: an unchanged Cassandra file is one inode shared
    with the host's earlier backups on the target (roles/backup: hard links), so it is changed in a copy that then
    replaces this backup's name, and the earlier backups keep their bytes."""
    c.run(target, f"test -s {path} && cp -p {path} {path}.tamper && printf 'X' | dd of={path}.tamper bs=1 seek=0"
                  f" conv=notrunc status=none && mv -f {path}.tamper {path}")


def main_pid(c: drill.Cluster, host: str, unit: str) -> str:
    return c.run(host, f"systemctl is-active {unit} >/dev/null && systemctl show -p MainPID --value {unit}").strip()


def test_corrupt_mysql_backup_is_refused(cluster: drill.Cluster, inventory: str) -> None:
    db = cluster.groups["mysql"][0]
    backup_id = cluster.run(db, f"{BACKUP} run mysql").strip().splitlines()[-1].split()[0]
    target, base = target_dir(cluster, db)
    try:
        corrupt(cluster, target, f"{base}/{backup_id}/data/ibdata1.zst.age")
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
        victim = cluster.run(target, f"find {base}/{backup_id}/data/system_schema -name '*-Data.db.zst.age'"
                                     " | head -1").strip()
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


@pytest.fixture(scope="module")
def mysql_backup(cluster: drill.Cluster) -> Iterator[tuple[str, str, str]]:
    """(mysql host, backup id, its directory on the target) of a fresh backup, deleted at the end."""
    db = cluster.groups["mysql"][0]
    backup_id = cluster.run(db, f"{BACKUP} run mysql").strip().splitlines()[-1].split()[0]
    target, base = target_dir(cluster, db)
    yield db, backup_id, f"{base}/{backup_id}"
    cluster.run(target, f"rm -rf {base}/{backup_id}")


@contextmanager
def tampered(cluster: drill.Cluster, do: str, undo: str) -> Iterator[None]:
    """Run ``do`` as root on the backup target, and ``undo`` afterwards whatever happens."""
    target = cluster.groups["backup_targets"][0]
    try:
        cluster.run(target, do)
        yield
    finally:
        cluster.run(target, undo)


def refused(cluster: drill.Cluster, inventory: str, db: str, backup_id: str, *words: str) -> None:
    pid = main_pid(cluster, db, "mariadb")
    run = playbook(inventory, "restore_mysql.yml", f"backup_restore_id={backup_id}")
    said = run.stdout + run.stderr
    assert run.returncode != 0, said[-2000:]
    assert "refusing to restore" in said, said[-2000:]
    for word in words:
        assert word in said, said[-2000:]
    assert main_pid(cluster, db, "mariadb") == pid
    assert cluster.run(db, f"test -e {drill.IDENTITY} && echo left || echo gone").strip() == "gone"


def test_a_manifest_edited_to_match_a_changed_file_is_refused(cluster: drill.Cluster, inventory: str,
                                                               mysql_backup: tuple[str, str, str]) -> None:
    db, backup_id, top = mysql_backup
    target = cluster.groups["backup_targets"][0]
    # What someone on the target would do: change a file, and its line in the manifest with it.
    edit = ("sed -i 's/^binlog_pos=.*/binlog_pos=4/' meta.env && new=$(sha256sum < meta.env | cut -c1-64)"
            ' && sed -i "s/^[0-9a-f]\\{64\\}  meta.env$/$new  meta.env/" MANIFEST.sha256')
    with tampered(cluster, f"cp -p {top}/MANIFEST.sha256 {top}/meta.env /root/ && cd {top} && bash -c"
                           f" {shlex.quote(edit)}",
                  f"cp -p /root/MANIFEST.sha256 /root/meta.env {top}/ && rm -f /root/MANIFEST.sha256 /root/meta.env"):
        assert cluster.run(target, f"cd {top} && sha256sum --quiet -c MANIFEST.sha256 && echo consistent").strip() \
            == "consistent"
        refused(cluster, inventory, db, backup_id, "MANIFEST.sha256", "is not authentic")


@pytest.mark.parametrize(("plant", "words"), [
    ("ln -s /etc/shadow {top}/data/mysql/shadow.frm", ("not a regular file", "data/mysql/shadow.frm")),
    ("echo planted > {top}/data/mysql/planted.ibd", ("not in the manifest", "data/mysql/planted.ibd")),
], ids=["symlink", "extra-file"])
def test_a_planted_entry_is_refused(cluster: drill.Cluster, inventory: str, mysql_backup: tuple[str, str, str],
                                    plant: str, words: tuple[str, ...]) -> None:
    db, backup_id, top = mysql_backup
    with tampered(cluster, plant.format(top=top), f"rm -f {plant.rsplit(maxsplit=1)[-1].format(top=top)}"):
        refused(cluster, inventory, db, backup_id, *words)


def test_a_backup_copied_under_a_newer_id_is_refused(cluster: drill.Cluster, inventory: str,
                                                     mysql_backup: tuple[str, str, str]) -> None:
    db, _, top = mysql_backup
    newer = "mysql-29991231T235959Z"
    copy = f"{os.path.dirname(top)}/{newer}"
    with tampered(cluster, f"cp -a {top} {copy}", f"rm -rf {copy}"):
        refused(cluster, inventory, db, newer, "is not authentic")


def test_a_corrupted_binary_log_is_refused(cluster: drill.Cluster, inventory: str,
                                           mysql_backup: tuple[str, str, str]) -> None:
    db, backup_id, top = mysql_backup
    target = cluster.groups["backup_targets"][0]
    cluster.run(db, "mariadb -e 'CREATE DATABASE IF NOT EXISTS iact_backup_itest; DROP DATABASE iact_backup_itest'")
    cluster.run(db, f"{BACKUP} binlogs")
    timeline = cluster.run(target, f"sed -n 's/^timeline=//p' {top}/meta.env").strip()
    newest = cluster.run(target, f"ls {os.path.dirname(top)}/binlog-{timeline}/*.age | sort | tail -1").strip()
    assert newest, "no binary log shipped after the backup"
    flip = f"printf X | dd of={newest} bs=1 conv=notrunc status=none"
    with tampered(cluster, f"cp -p {newest} /root/binlog.save && {flip}",
                  f"cp -p /root/binlog.save {newest} && rm -f /root/binlog.save"):
        refused(cluster, inventory, db, backup_id, "sha256 mismatch", os.path.basename(newest))


def test_the_untampered_backup_is_accepted(cluster: drill.Cluster, mysql_backup: tuple[str, str, str]) -> None:
    """The control: once every tampering is undone, the same backup downloads and verifies."""
    db, backup_id, _ = mysql_backup
    out = cluster.run(db, f"{BACKUP} fetch {backup_id} /var/backups/iact-backup/restore/itest-control 2>&1;"
                          " echo rc=$?; rm -rf /var/backups/iact-backup/restore/itest-control", check=False)
    assert out.strip().endswith("rc=0"), out
    assert "whose MAC is authentic" in out
