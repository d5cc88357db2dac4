"""Where the job wrapper keeps its locks, on every host: /run/iact-jobs/<user>, each user's alone.

The layout comes from the cron role's tmpfiles.d entry (applied at deployment and at every boot); the wrapper
refuses a lock folder or file that another user could control (exit code 77).
"""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://all"]

AS_IACT = "runuser -u iact -- "
AS_NOBODY = "runuser -u nobody -- "
EXIT_UNSAFE_LOCK = 77


def users(host):
    return host.ansible.get_variables().get("cron_job_users", ["root", "iact"])


def test_tmpfiles_entry_is_installed(host):
    f = host.file("/etc/tmpfiles.d/iact-jobs.conf")
    assert f.exists and f.user == "root" and f.mode == 0o644
    entries = [line.split() for line in f.content_string.splitlines() if line.startswith("d ")]
    assert ["d", "/run/iact-jobs", "0755", "root", "root", "-"] in entries
    for user in users(host):
        assert ["d", f"/run/iact-jobs/{user}", "0700", user, "-", "-"] in entries, user


def test_lock_folders_belong_to_their_user_alone(host):
    root = host.file("/run/iact-jobs")
    assert root.is_directory and not root.is_symlink
    assert (root.user, root.group, root.mode) == ("root", "root", 0o755)
    for user in users(host):
        folder = host.file(f"/run/iact-jobs/{user}")
        assert folder.is_directory and not folder.is_symlink, user
        assert (folder.user, folder.mode) == (user, 0o700), user


def test_the_health_job_locks_in_the_iact_folder(host):
    # Deployment ran the health job once through the wrapper (roles/cron), as cron runs it.
    run = host.run(AS_IACT + "iact-agent job run --name itest_lock_place --no-syslog -- true")
    assert run.rc == 0, run.stderr
    lock = host.file("/run/iact-jobs/iact/iact-job-itest_lock_place.lock")
    assert lock.is_file and (lock.user, lock.mode) == ("iact", 0o600)
    assert not host.file("/run/lock/iact-job-itest_lock_place.lock").exists
    host.run("rm -f /run/iact-jobs/iact/iact-job-itest_lock_place.lock")


@pytest.mark.parametrize("folder", ["/run/iact-jobs", "/run/iact-jobs/iact", "/run/iact-jobs/root"])
def test_an_unprivileged_user_cannot_plant_a_lock_file(host, folder):
    planted = host.run(AS_NOBODY + f"touch {folder}/iact-job-itest_planted.lock")
    assert planted.rc != 0
    assert not host.file(f"{folder}/iact-job-itest_planted.lock").exists


def test_the_wrapper_refuses_a_lock_folder_someone_else_owns(host):
    folder = host.run("mktemp -d /tmp/itest-locks.XXXXXX").stdout.strip()
    try:
        assert host.run(f"chown nobody: {folder} && chmod 0755 {folder}").rc == 0  # iact may enter it, not own it
        run = host.run(AS_IACT + f"iact-agent job run --name itest_refused --lock-dir {folder} --no-syslog -- true")
        assert run.rc == EXIT_UNSAFE_LOCK, run.stdout + run.stderr
        assert "is owned by uid" in run.stderr
        assert host.run(f"ls -A {folder}").stdout.strip() == ""
    finally:
        host.run(f"rm -rf {folder}")


def test_the_wrapper_refuses_a_symlinked_lock_file(host):
    target = host.run("mktemp /tmp/itest-target.XXXXXX").stdout.strip()
    link = "/run/iact-jobs/iact/iact-job-itest_symlink.lock"
    try:
        assert host.run(f"chown iact: {target} && runuser -u iact -- ln -sfn {target} {link}").rc == 0
        run = host.run(AS_IACT + "iact-agent job run --name itest_symlink --no-syslog -- true")
        assert run.rc == EXIT_UNSAFE_LOCK, run.stdout + run.stderr
        assert "is a symbolic link" in run.stderr
    finally:
        host.run(f"rm -f {link} {target}")


def test_the_boot_entry_recreates_the_layout(host):
    """What systemd-tmpfiles does at boot, replayed into a scratch root with this host's users."""
    scratch = host.run("mktemp -d /tmp/itest-tmpfiles.XXXXXX").stdout.strip()
    try:
        setup = host.run(f"mkdir -p {scratch}/etc {scratch}/run && cp /etc/passwd /etc/group {scratch}/etc/")
        assert setup.rc == 0, setup.stderr
        run = host.run(f"systemd-tmpfiles --create --root={scratch} /etc/tmpfiles.d/iact-jobs.conf")
        assert run.rc == 0, run.stderr
        made = host.run(f"stat -c '%n %U %a' {scratch}/run/iact-jobs {scratch}/run/iact-jobs/*").stdout
        lines = sorted(line.replace(scratch, "") for line in made.splitlines())
        expected = sorted(["/run/iact-jobs root 755"] + [f"/run/iact-jobs/{u} {u} 700" for u in users(host)])
        assert lines == expected
    finally:
        host.run(f"rm -rf {scratch}")
