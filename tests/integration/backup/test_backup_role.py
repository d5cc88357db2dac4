"""roles/backup on its hosts: files and modes, the target's confinement, and a real backup end to end.

Sources are the mysql and cassandra hosts, the target the backup_targets hosts. By hand against the lab:
    pytest --ansible-inventory=inventory/lab --connection=ansible tests/integration/backup
"""

from __future__ import annotations

import re

import pytest

testinfra_hosts = ["ansible://mysql", "ansible://cassandra", "ansible://backup_targets"]

BACKUP = "/usr/local/sbin/iact-backup"
ID = re.compile(r"^(mysql|cassandra)-\d{8}T\d{6}Z$")


def groups(host) -> list[str]:
    return list(host.ansible.get_variables().get("group_names", []))


def conf(host) -> dict[str, str]:
    out = {}
    for line in host.file("/etc/iact/backup.conf").content_string.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value.strip("'")
    return out


def is_source(host) -> bool:
    return bool({"mysql", "cassandra"} & set(groups(host)))


def source_only(host) -> None:
    if not is_source(host):
        pytest.skip("not a backup source")


def target_only(host) -> None:
    if "backup_targets" not in groups(host):
        pytest.skip("not a backup target")


@pytest.mark.parametrize(
    ("path", "mode"),
    [(BACKUP, 0o750), ("/etc/iact/backup.conf", 0o600), ("/root/.ssh/iact-backup_ed25519", 0o600),
     ("/var/lib/iact-backup", 0o700)],
)
def test_source_files_are_root_only(host, path, mode):
    source_only(host)
    f = host.file(path)
    assert f.exists, path
    assert f.user == "root"
    assert f.mode == mode


def test_source_pins_the_target_host_key(host):
    source_only(host)
    target = conf(host)["BACKUP_TARGET"]
    assert host.file("/etc/iact/backup-known_hosts").contains(re.escape(target) + " ssh-ed25519 ")


def test_source_reaches_only_its_own_directory(host):
    source_only(host)
    c = conf(host)
    listing = host.run(f"{BACKUP} list")
    assert listing.rc == 0, listing.stderr
    assert all(ID.match(line) for line in listing.stdout.split()), listing.stdout
    ssh = (f"ssh -i {c['BACKUP_SSH_KEY']} -o BatchMode=yes -o UserKnownHostsFile={c['BACKUP_KNOWN_HOSTS']}"
           f" -o StrictHostKeyChecking=yes")
    remote = f"{c['BACKUP_TARGET_USER']}@{c['BACKUP_TARGET']}"
    # A shell is refused by the forced command; so is a path outside the host's own directory.
    shell = host.run(f"{ssh} {remote} cat /etc/passwd")
    assert shell.rc != 0
    assert "root:" not in shell.stdout
    escape = host.run(f"rsync -e {ssh!r} --list-only {remote}:../")
    assert escape.rc != 0
    assert "iactbk-" not in escape.stdout


def test_target_confines_each_source(host):
    target_only(host)
    root = "/srv/iact-backup"
    sources = [d for d in host.file(root).listdir() if not d.startswith(".")]
    assert sources, "no source directory on the target"
    for name in sources:
        home = host.file(f"{root}/{name}")
        assert home.user == "root"
        assert home.mode == 0o755
        keys = host.file(f"{root}/{name}/.ssh/authorized_keys")
        assert keys.user == "root"
        assert keys.mode == 0o644
        assert keys.contains(f'^restrict,command="/usr/bin/rrsync {root}/{name}/data" ssh-ed25519 ')
        data = host.file(f"{root}/{name}/data")
        assert data.mode == 0o700
        assert data.user.startswith("iactbk-")


def test_mysql_backup_through_the_job_wrapper(host):
    if "mysql" not in groups(host):
        pytest.skip("not a mysql host")

    def sql(statement: str) -> str:
        cmd = host.run("mariadb -N -B iact -e %s", statement)
        assert cmd.rc == 0, cmd.stderr
        return cmd.stdout.strip()

    before = int(sql("SELECT COUNT(*) FROM job_runs WHERE job_name = 'backup' AND status = 'success'"))
    run = host.run("iact-agent job run --name backup --timeout 1800 --mysql-defaults /etc/iact/backup-job.cnf"
                   f" -- {BACKUP} run mysql")
    assert run.rc == 0, run.stderr
    after = int(sql("SELECT COUNT(*) FROM job_runs WHERE job_name = 'backup' AND status = 'success'"))
    assert after == before + 1
    newest = host.check_output(f"{BACKUP} list mysql | tail -1")
    assert ID.match(newest)
    # The copy on the target carries its manifest and marker and verifies file by file.
    fetched = host.run(f"{BACKUP} fetch {newest} /var/backups/iact-backup/restore/itest")
    assert fetched.rc == 0, fetched.stderr
    assert "files match MANIFEST.sha256" in fetched.stderr
    meta = host.file("/var/backups/iact-backup/restore/itest/meta.env").content_string
    assert "binlog_file=mysql-bin." in meta
    host.run("rm -rf /var/backups/iact-backup/restore/itest")


def test_cassandra_backup_clears_its_snapshot(host):
    if "cassandra" not in groups(host):
        pytest.skip("not a cassandra host")
    if host.ansible.get_variables()["inventory_hostname"] != host.ansible.get_variables()["groups"]["cassandra"][0]:
        pytest.skip("one node is enough")
    run = host.run(f"{BACKUP} run cassandra")
    assert run.rc == 0, run.stderr
    backup_id = run.stdout.split()[0]
    assert ID.match(backup_id)
    assert "iact-" not in host.check_output("nodetool listsnapshots")
    fetched = host.run(f"{BACKUP} fetch {backup_id} /var/lib/cassandra/iact-restore/itest")
    assert fetched.rc == 0, fetched.stderr
    meta = host.file("/var/lib/cassandra/iact-restore/itest/meta").listdir()
    assert {"schema.cql", "nodetool-info.txt", "nodetool-ring.txt", "describecluster.txt"} <= set(meta)
    schema = host.file("/var/lib/cassandra/iact-restore/itest/meta/schema.cql").content_string
    assert "CREATE KEYSPACE iact_logs" in schema
    host.run("rm -rf /var/lib/cassandra/iact-restore/itest")
