"""roles/backup on its hosts: files and modes, the target's confinement, and real backups end to end.

Sources are the mysql and cassandra hosts, the target the backup_targets hosts. The target takes new files
only (rrsync -no-del -no-overwrite) and seals complete backups; every file but meta.env is encrypted with age
on its source, whose private key is not on any host (the tests bring it from the inventory, as the restore
playbooks do, only to prove a round trip). By hand against the lab:
    pytest --ansible-inventory=inventory/lab --connection=ansible tests/integration/backup
"""

from __future__ import annotations

import contextlib
import re
import shlex
import uuid
from collections.abc import Iterator

import pytest
import testinfra

testinfra_hosts = ["ansible://mysql", "ansible://cassandra", "ansible://backup_targets"]

BACKUP = "/usr/local/sbin/iact-backup"
BACKUPDIR = "/usr/local/lib/iact-backup/backupdir.py"
TARGET_CMD = "/usr/local/sbin/iact-backup-target"
IDENTITY = "/run/iact-backup/age-identity"
ID = re.compile(r"^(mysql|cassandra)-\d{8}T\d{6}Z$")
AGE_HEADER = "age-encryption.org/v1"


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


def first_source_of_kind(host, kind: str) -> None:
    """One host per kind is enough for the slow end-to-end tests."""
    variables = host.ansible.get_variables()
    if kind not in variables.get("group_names", []) or variables["inventory_hostname"] != variables["groups"][kind][0]:
        pytest.skip(f"runs on the first {kind} host only")


def other_host(host, name: str):
    """Host ``name`` of the same inventory, reached the way ``host`` is (through Ansible when it is: the lab's SSH
    settings are inventory variables)."""
    url = f"ansible://{name}?ansible_inventory={host.backend.ansible_inventory}"
    if getattr(host.backend, "force_ansible", False):
        url += "&force_ansible=True"
    return testinfra.get_host(url)


def target_of(host):
    """The backup target of a source, as a testinfra host (by its inventory name)."""
    return other_host(host, host.ansible.get_variables()["groups"]["backup_targets"][0])


def target_dir(host) -> str:
    return f"/srv/iact-backup/{conf(host)['BACKUP_HOST']}/data"


def rsync_cmd(host) -> tuple[str, str]:
    """(rsync with this source's key, "account@target") exactly as iact-backup connects."""
    c = conf(host)
    ssh = (f"ssh -i {c['BACKUP_SSH_KEY']} -o BatchMode=yes -o UserKnownHostsFile={c['BACKUP_KNOWN_HOSTS']}"
           f" -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes")
    return f"rsync -e {shlex.quote(ssh)}", f"{c['BACKUP_TARGET_USER']}@{c['BACKUP_TARGET']}"


def new_backup(host, kind: str) -> str:
    run = host.run(f"{BACKUP} run {kind}")
    assert run.rc == 0, run.stderr
    backup_id = run.stdout.split()[0]
    assert ID.match(backup_id), run.stdout
    return backup_id


@contextlib.contextmanager
def private_key_on(host) -> Iterator[None]:
    """The backups' age private key on the host (from the inventory, rendered by Ansible), removed afterwards:
    what the restore playbooks do around a restore."""
    host.run("install -d -m 0700 /run/iact-backup")
    try:
        done = host.ansible("ansible.builtin.copy",
                            f"dest={IDENTITY} owner=root group=root mode=0600 content={{{{ backup_age_identity }}}}",
                            become=True, check=False)
        assert not done.get("failed"), "cannot bring backup_age_identity to the host"
        yield
    finally:
        host.run(f"rm -f {IDENTITY}")


def decrypt(host, backup_id: str, fetched: str, out: str) -> None:
    c = conf(host)
    run = host.run(f"/usr/bin/python3 {BACKUPDIR} decrypt {fetched} {out} --key {c['BACKUP_MANIFEST_KEY']}"
                   f" --host {c['BACKUP_HOST']} --id {backup_id} --identity {IDENTITY}")
    assert run.rc == 0, run.stderr


def target_only(host) -> None:
    if "backup_targets" not in groups(host):
        pytest.skip("not a backup target")


@pytest.mark.parametrize(
    ("path", "mode"),
    [(BACKUP, 0o750), ("/etc/iact/backup.conf", 0o600), ("/root/.ssh/iact-backup_ed25519", 0o600),
     ("/var/lib/iact-backup", 0o700), ("/etc/iact/backup-manifest.key", 0o600), (BACKUPDIR, 0o644),
     ("/etc/iact/backup-recipients.txt", 0o644)],
)
def test_source_files_are_root_only(host, path, mode):
    source_only(host)
    f = host.file(path)
    assert f.exists, path
    assert f.user == "root"
    assert f.mode == mode


def test_source_holds_no_private_key(host):
    """The sources encrypt to the public key only: no private key of the backups anywhere they keep files."""
    source_only(host)
    assert not host.file(IDENTITY).exists
    found = host.run("grep -rlsI -- AGE-SECRET-KEY- /etc /root /usr/local /var/lib/iact-backup /var/backups /run")
    assert found.rc == 1, f"a private age key on a source: {found.stdout}"
    recipients = host.file("/etc/iact/backup-recipients.txt").content_string
    assert re.search(r"^age1[02-9ac-hj-np-z]{58}$", recipients, re.M), recipients


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
        assert keys.contains(
            f'^restrict,command="/usr/bin/rrsync -no-del -no-overwrite -munge {root}/{name}/data" ssh-ed25519 ')
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
    """A node's backup: snapshot cleared, metadata (schema, nodetool outputs) encrypted on the target, and
    readable again with the vault's private key."""
    first_source_of_kind(host, "cassandra")
    backup_id = new_backup(host, "cassandra")
    assert "iact-" not in host.check_output("nodetool listsnapshots")
    target = target_of(host)
    top = f"{target_dir(host)}/{backup_id}"
    assert target.run(f"grep -r -l -a -F 'CREATE KEYSPACE' {top}").rc == 1, "the schema is in clear on the target"
    work = "/var/lib/cassandra/iact-restore/itest"
    try:
        fetched = host.run(f"{BACKUP} fetch {backup_id} {work}")
        assert fetched.rc == 0, fetched.stderr
        meta = host.file(f"{work}/meta").listdir()
        assert {"schema.cql.zst.age", "nodetool-info.txt.zst.age", "nodetool-ring.txt.zst.age",
                "describecluster.txt.zst.age"} <= set(meta)
        with private_key_on(host):
            decrypt(host, backup_id, work, f"{work}.plain")
        schema = host.file(f"{work}.plain/meta/schema.cql").content_string
        assert "CREATE KEYSPACE iact_logs" in schema
    finally:
        host.run(f"rm -rf {work} {work}.plain")


def test_source_cannot_delete_or_overwrite_a_backup(host):
    """With its own key a source neither deletes (a file, a whole backup, with --remove-source-files on a pull)
    nor replaces (plain, --inplace, --append) anything on the target; the backup still verifies afterwards."""
    source_only(host)
    kind = "mysql" if "mysql" in groups(host) else "cassandra"
    rsync, remote = rsync_cmd(host)
    backup_id = new_backup(host, kind)
    work = host.check_output("mktemp -d")
    try:
        host.check_output(f"mkdir {work}/empty && {rsync} -q {remote}:{backup_id}/meta.env {work}/orig.env")
        original = host.check_output(f"sha256sum < {work}/orig.env")
        attempts = {
            "delete a file": f"{rsync} -r --delete {work}/empty/ {remote}:{backup_id}/",
            "delete the backup": f"{rsync} -r --delete '--include=/{backup_id}/***' '--exclude=*' {work}/empty/"
                                 f" {remote}:./",
            "remove on pull": f"{rsync} --remove-source-files {remote}:{backup_id}/meta.env {work}/pulled.env",
        }
        for what, cmd in attempts.items():
            run = host.run(cmd)
            assert run.rc != 0, f"{what} was accepted: {run.stdout}{run.stderr}"
            assert "disabled" in run.stderr, f"{what}: {run.stderr}"
        host.check_output(f"printf 'kind=forged\\n' > {work}/meta.env")
        for flags in ("-c", "-c --inplace", "--append"):
            host.run(f"{rsync} {flags} {work}/meta.env {remote}:{backup_id}/meta.env")
            host.check_output(f"{rsync} -q {remote}:{backup_id}/meta.env {work}/after.env")
            assert host.check_output(f"sha256sum < {work}/after.env") == original, f"rsync {flags} replaced meta.env"
        assert backup_id in host.check_output(f"{BACKUP} list {kind}").split()
        fetched = host.run(f"{BACKUP} fetch {backup_id} {work}/fetched")
        assert fetched.rc == 0, fetched.stderr
    finally:
        host.run(f"rm -rf {work}")


def test_a_sealed_backup_takes_no_new_file_and_keeps_its_mode(host):
    """Once the target's seal job has run, a source can neither add a file to its finished backup (which
    would make every restore of it refuse) nor change the backup directory's mode."""
    first_source_of_kind(host, "mysql")
    target = target_of(host)
    backup_id = new_backup(host, "mysql")
    sealed = target.run(TARGET_CMD + " seal")
    assert sealed.rc == 0, sealed.stderr
    top = f"{target_dir(host)}/{backup_id}"
    assert target.file(top).user == "root"
    assert target.file(top).mode == 0o555
    rsync, remote = rsync_cmd(host)
    work = host.check_output("mktemp -d")
    try:
        host.check_output(f"mkdir -m 0700 {work}/{backup_id} && echo planted > {work}/{backup_id}/planted")
        host.run(f"{rsync} -r --perms {work}/{backup_id} {remote}:./")
        host.run(f"{rsync} {work}/{backup_id}/planted {remote}:{backup_id}/data/planted")
        assert not target.file(f"{top}/planted").exists
        assert not target.file(f"{top}/data/planted").exists
        assert target.file(top).mode == 0o555
        fetched = host.run(f"{BACKUP} fetch {backup_id} {work}/fetched")
        assert fetched.rc == 0, fetched.stderr
    finally:
        host.run(f"rm -rf {work}")


def test_mysql_backup_holds_no_marker_in_clear(host):
    """A marker row is in clear in the server's binary log; the full backup and the shipped binary logs on
    the target never show it, every file there but meta.env and the manifests is an age file, and the backup
    decrypted with the vault's private key holds it again (so the marker really was backed up)."""
    first_source_of_kind(host, "mysql")
    marker = f"iact-clear-marker-{uuid.uuid4().hex}"
    sql = ("CREATE DATABASE IF NOT EXISTS iact_backup_itest; CREATE TABLE IF NOT EXISTS iact_backup_itest.m"
           " (v VARCHAR(100)) ENGINE=InnoDB; " + "; ".join(f"INSERT INTO iact_backup_itest.m VALUES ('{marker}')"
                                                          for _ in range(50)))
    assert host.run("mariadb -e %s", sql).rc == 0
    work = "/var/backups/iact-backup/restore/itest-marker"
    try:
        in_clear = host.run(f"grep -l -a -F {marker} /var/lib/mysql/mysql-bin.[0-9]*")
        assert in_clear.rc == 0, "the marker is not even in the server's binary log: the test would prove nothing"
        backup_id = new_backup(host, "mysql")  # ships the binary logs too
        target = target_of(host)
        data = target_dir(host)
        on_target = target.run(f"grep -r -l -a -F {marker} {data}/{backup_id} {data}/binlog-*")
        assert on_target.rc == 1, f"the marker is in clear on the target: {on_target.stdout}"
        files = target.check_output(f"cd {data}/{backup_id} && find . -type f ! -name meta.env ! -name SUCCESS"
                                    " ! -name 'MANIFEST.*' | sort").split()
        assert files and all(f.endswith(".zst.age") for f in files), files[:5]
        headers = target.check_output(f"cd {data}/{backup_id} && find . -name '*.age' -exec head -qc 21 {{}} + "
                                      f"| sed 's/{AGE_HEADER}/\\n/g' | tr -d '\\n' | wc -c")
        assert headers == "0", "an .age file does not start with the age header"
        with private_key_on(host):
            fetched = host.run(f"{BACKUP} fetch {backup_id} {work}")
            assert fetched.rc == 0, fetched.stderr
            decrypt(host, backup_id, work, f"{work}.plain")
        assert host.run(f"grep -r -l -a -F {marker} {work}.plain/data").rc == 0, "decrypted, the marker is missing"
    finally:
        host.run("mariadb -e 'DROP DATABASE IF EXISTS iact_backup_itest'")
        host.run(f"rm -rf {work} {work}.plain")
        host.run(f"rm -f {IDENTITY}")


def test_target_seals_and_prunes_through_the_job_wrapper(host):
    target_only(host)
    assert host.file("/etc/cron.d/iact-backup-target").contains("--name backup_retention")
    assert host.file("/etc/cron.d/iact-backup-target").contains("--name backup_seal")
    f = host.file(TARGET_CMD)
    assert (f.user, f.mode) == ("root", 0o750)
    db = other_host(host, host.ansible.get_variables()["groups"]["mysql"][0])

    def runs() -> int:
        out = db.check_output("mariadb -N -B iact -e %s", "SELECT COUNT(*) FROM job_runs WHERE job_name ="
                              " 'backup_retention' AND status = 'success'")
        return int(out)

    before = runs()
    run = host.run(f"iact-agent job run --name backup_retention --timeout 1800 --mysql-defaults"
                   f" /etc/iact/backup-job.cnf -- {TARGET_CMD} prune")
    assert run.rc == 0, run.stderr
    assert runs() == before + 1
    # Every complete backup on the target is sealed: root-owned and read-only.
    unsealed = host.check_output("find /srv/iact-backup/*/data -mindepth 2 -maxdepth 2 -name SUCCESS"
                                 " ! -user root -printf '%h\\n'")
    assert unsealed == "", unsealed
