"""The common role on every host: the iact user, its directories, journald and base services."""

import pytest

testinfra_hosts = ["ansible://all"]


def test_iact_user_is_a_system_user_without_login(host):
    user = host.user("iact")
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"
    assert {"adm", "systemd-journal"} <= set(user.groups)


@pytest.mark.parametrize(
    ("path", "owner", "group", "mode"),
    [("/etc/iact", "root", "iact", 0o750), ("/var/lib/iact", "iact", "iact", 0o750),
     ("/var/log/iact", "iact", "adm", 0o2751)],
)
def test_iact_directories(host, path, owner, group, mode):
    d = host.file(path)
    assert d.is_directory
    assert (d.user, d.group, d.mode) == (owner, group, mode), path


def test_journal_is_persistent(host):
    conf = host.file("/etc/systemd/journald.conf.d/60-iact.conf")
    assert conf.contains("^Storage=persistent$")
    assert host.file("/var/log/journal").is_directory


@pytest.mark.parametrize("service", ["cron", "rsyslog"])
def test_base_services_running(host, service):
    s = host.service(service)
    assert s.is_running, host.run(f"journalctl -u {service} --no-pager -n 30").stdout
    assert s.is_enabled


def test_timezone_is_utc(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"
