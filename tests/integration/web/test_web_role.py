"""roles/web on the web hosts: user, files and modes, sockets, services, unit hardening, the app's namespace.

Runs on every host of the `web` group of the inventory testinfra is given (the lab, the stack scenario).
"""

from __future__ import annotations

import json
import re
import shlex
import time

import pytest

testinfra_hosts = ["ansible://web"]

UNIT = "iact-web.service"
SECRETS = "/etc/iact/web"


def journal(host, unit: str) -> str:
    with host.sudo():
        return host.run(f"journalctl -u {unit} -n 40 --no-pager").stdout


def test_user_is_a_system_account_without_login(host):
    user = host.user("iact-web")
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000
    # iact: search access to /var/log/iact for its JSON log; nothing else.
    assert set(user.groups) == {"iact-web", "iact"}, user.groups
    assert "iact-web" in host.user("www-data").groups


@pytest.mark.parametrize(
    ("path", "owner", "group", "mode"),
    [
        ("/etc/iact/web.toml", "root", "iact-web", 0o640),
        (SECRETS, "root", "iact-web", 0o750),
        (f"{SECRETS}/secret_key", "root", "iact-web", 0o640),
        (f"{SECRETS}/mysql-app.cnf", "root", "iact-web", 0o640),
        (f"{SECRETS}/cassandra-reader.password", "root", "iact-web", 0o640),
        (f"{SECRETS}/accounts.json", "root", "root", 0o600),
        (f"{SECRETS}/gunicorn.conf.py", "root", "iact-web", 0o640),
        (f"{SECRETS}/tls", "root", "root", 0o700),
        (f"{SECRETS}/tls/privkey.pem", "root", "root", 0o600),
        (f"{SECRETS}/tls/fullchain.pem", "root", "root", 0o644),
        ("/var/log/iact/web-app.json.log", "iact-web", "adm", 0o640),
        ("/var/log/iact/web-nginx.json.log", "www-data", "adm", 0o640),
        ("/etc/systemd/system/iact-web.service", "root", "root", 0o644),
        ("/etc/cron.d/iact-web", "root", "root", 0o644),
        ("/etc/iact/json-logs-postrotate.d/iact-web-nginx", "root", "root", 0o755),
    ],
)
def test_files_and_modes(host, path, owner, group, mode):
    with host.sudo():
        f = host.file(path)
        assert f.exists, path
        assert (f.user, f.group, f.mode) == (owner, group, mode), path


def test_settings_hold_no_secret_and_pass_django_deploy_checks(host):
    with host.sudo():
        text = host.file("/etc/iact/web.toml").content_string
        check = host.run("IACT_WEB_CONFIG=/etc/iact/web.toml iact-web check --deploy")
    assert "password =" not in text.lower() and "secret_key =" not in text.lower()
    assert "debug = false" in text
    assert check.rc == 0, check.stdout + check.stderr
    # Only the two HSTS opt-ins stay off on purpose (web/iact_web/settings.py): includeSubDomains and preload
    # would bind every other host of the parent domain, which this site does not own.
    found = set(re.findall(r"\((\w+\.[EW]\d+)\)", check.stdout + check.stderr))
    assert found <= {"security.W005", "security.W021"}, check.stdout + check.stderr


def test_services_run_and_are_enabled(host):
    for unit in (UNIT, "nginx.service"):
        svc = host.service(unit)
        assert svc.is_running, journal(host, unit)
        assert svc.is_enabled


def test_gunicorn_listens_only_on_its_unix_socket(host):
    with host.sudo():
        sock = host.file("/run/iact-web/gunicorn.sock")
        assert sock.is_socket
        # gunicorn's umask 007: owner and group (nginx's www-data) only.
        assert (sock.user, sock.group, sock.mode) == ("iact-web", "iact-web", 0o770)
        runtime = host.file("/run/iact-web")
        assert (runtime.user, runtime.mode) == ("iact-web", 0o750)
        assert host.file("/run/iact-web/gunicorn.ctl").is_socket
        pids = host.run("systemctl show -p MainPID --value iact-web.service").stdout.strip()
        tcp = host.run(f"ss -H -ltnp | grep -F 'pid={pids},' || true").stdout
    assert tcp.strip() == "", f"gunicorn listens on TCP: {tcp}"
    workers = host.process.filter(user="iact-web")
    assert len(workers) >= 2, "no gunicorn master and workers running as iact-web"


def test_nginx_listens_on_https_and_http(host):
    listening = host.socket.get_listening_sockets()
    assert "tcp://0.0.0.0:443" in listening
    assert "tcp://0.0.0.0:80" in listening
    with host.sudo():
        assert host.run("nginx -t").rc == 0


EXPECTED_HARDENING = {
    "User": "iact-web",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
    "RuntimeDirectory": "iact-web",
}


def test_unit_is_hardened(host):
    props = host.run(f"systemctl show {UNIT} -p " + " -p ".join(EXPECTED_HARDENING)).stdout
    got = dict(line.split("=", 1) for line in props.splitlines() if "=" in line)
    assert got == EXPECTED_HARDENING
    # systemd's own exposure score (0 safest .. 10): the README gives the figure; it must stay "OK" or better.
    with host.sudo():
        score = host.run(f"systemd-analyze security {UNIT} --no-pager | tail -1").stdout
    value = float(score.split("exposure level for", 1)[1].split(":", 1)[1].split()[0])
    assert value <= 3.0, score


def test_the_app_sees_only_its_own_files_in_etc_iact(host):
    """The unit's mount namespace replaces /etc/iact: the other agents' credentials are not there at all."""
    with host.sudo():
        pid = host.run(f"systemctl show -p MainPID --value {UNIT}").stdout.strip()
        seen = host.run(f"nsenter -t {pid} -m ls -A /etc/iact").stdout.split()
        web_seen = host.run(f"nsenter -t {pid} -m ls -A {SECRETS}").stdout.split()
        on_host = host.run("ls -A /etc/iact").stdout.split()
    assert set(seen) <= {"web.toml", "web", "dora.toml"}, seen
    assert set(on_host) - set(seen), "nothing of /etc/iact is hidden from the app"
    assert {"secret_key", "mysql-app.cnf", "cassandra-reader.password"} <= set(web_seen), web_seen
    # What only root needs (the accounts file, the TLS key) stays out of its reach.
    for secret in ("accounts.json", "tls/privkey.pem"):
        with host.sudo():
            read = host.run(
                f"nsenter -t {pid} -m setpriv --reuid=iact-web --regid=iact-web --init-groups "
                f"cat {SECRETS}/{secret}"
            )
        assert read.rc != 0, f"the app can read {secret}"


def test_prune_job_runs_through_the_wrapper(host):
    cron = host.file("/etc/cron.d/iact-web").content_string
    assert "iact-web iact-agent job run --name web_prune_ratelimits" in cron
    assert "iact-web prune_ratelimits" in cron
    command = cron.strip().splitlines()[-1].split(None, 6)[6]
    with host.sudo():
        run = host.run(
            "runuser -u iact-web -- env PATH=/usr/local/bin:/usr/bin:/bin sh -c " + shlex.quote(command)
        )
        recorded = host.run(
            "mariadb -N -B iact -e %s",
            "SELECT status FROM job_runs WHERE job_name = 'web_prune_ratelimits' ORDER BY id DESC LIMIT 1",
        )
    assert run.rc == 0, run.stdout + run.stderr
    if recorded.rc == 0:  # the metrics store is on this host (the lab): the run is recorded there
        assert recorded.stdout.strip() == "success"


def test_nginx_access_log_is_json_in_the_collectors_format(host):
    host.run("curl -sk -o /dev/null https://127.0.0.1/static-floor.txt -H 'Host: localhost'")
    host.run("curl -sk -o /dev/null https://127.0.0.1/no-such-page -H 'Host: localhost'")
    with host.sudo():
        last = host.run("tail -n 1 /var/log/iact/web-nginx.json.log").stdout
    entry = json.loads(last)
    assert isinstance(entry["ts"], float)
    assert entry["level"] in {"info", "warning", "error"}
    assert entry["message"].startswith("GET /no-such-page ")
    assert entry["logger"] == "nginx.access"
    assert entry["status"] in (302, 404)


def test_json_logs_survive_the_collectors_rotation(host):
    """The collector's logrotate policy renames the JSON logs; each new file keeps its writer as owner, nginx
    reopens its log through the hook, and the app (WatchedFileHandler) reopens its own: new lines land in the
    new files, which the collector can read (group adm)."""
    logs = {"/var/log/iact/web-nginx.json.log": "www-data", "/var/log/iact/web-app.json.log": "iact-web"}
    with host.sudo():
        rotate = host.run("logrotate -f --state /tmp/iact-web-rotation-test.status /etc/logrotate.d/iact-json-logs")
        assert rotate.rc == 0, rotate.stderr
        for path, owner in logs.items():
            f = host.file(path)
            assert (f.user, f.group, f.mode) == (owner, "adm", 0o640), path
            assert host.file(path + ".1").exists, f"{path} was not rotated"
    marker = f"rotation-check-{int(time.time() * 1000)}"
    for _ in range(3):
        host.run(f"curl -sk -o /dev/null https://127.0.0.1/{marker} -H 'Host: localhost'")
        time.sleep(0.5)
    with host.sudo():
        for path in logs:
            assert marker in host.file(path).content_string, f"no new line in {path} after the rotation"
