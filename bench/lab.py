"""The lab of `make lab` as the benchmark sees it: its hosts (inventory/lab), their containers, the cluster's
credentials (inventory/lab/group_vars/all/vault.yml, or the IACT_TEST_CASSANDRA_* variables), and the few
operations the benchmark needs: run a command on a host, reach a host's files from here, find the deployed
collector's process, stop and start every Cassandra node and wait until all are UN again.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from common import REPO, Target

INVENTORY = REPO / "inventory" / "lab"
CONTAINER_PREFIX = "iact-"
DOCKER = shutil.which("docker") or "/usr/bin/docker"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    groups: tuple[str, ...]

    @property
    def container(self) -> str:
        return CONTAINER_PREFIX + self.name


def hosts(inventory: Path = INVENTORY) -> list[Host]:
    """Every host of the lab inventory with its groups (``collectors`` includes its child groups)."""
    doc = yaml.safe_load((inventory / "hosts.yml").read_text(encoding="utf-8"))
    found: dict[str, tuple[str, set[str]]] = {}

    def walk(group: str, node: dict[str, Any], parents: tuple[str, ...]) -> None:
        for name, hv in (node.get("hosts") or {}).items():
            addr = (hv or {}).get("ansible_host", name)
            entry = found.setdefault(name, (addr, set()))
            entry[1].update((group, *parents))
        for child, sub in (node.get("children") or {}).items():
            walk(child, sub or {}, (group, *parents))

    walk("all", doc["all"], ())
    # A group listed as a child with no hosts of its own (collectors: {mysql:, cassandra:}) inherits them.
    children = (doc["all"].get("children") or {})
    for group, node in children.items():
        for child in ((node or {}).get("children") or {}):
            for _name, (_addr, groups) in found.items():
                if child in groups:
                    groups.add(group)
    return [Host(name, addr, tuple(sorted(groups))) for name, (addr, groups) in sorted(found.items())]


def group(name: str, inventory: Path = INVENTORY) -> list[Host]:
    return [h for h in hosts(inventory) if name in h.groups]


def lab_target(inventory: Path = INVENTORY) -> tuple[Target, tempfile.TemporaryDirectory[str] | None]:
    """The cluster: from IACT_TEST_CASSANDRA_* when set, else from the lab inventory, its generated vault (the
    admin) and the first collector host's own files (its role, table and password: what its collector uses).
    The passwords are written to 0600 files in a temporary folder, removed when the handle is cleaned up."""
    target = Target.from_env()
    if target is not None:
        return target, None
    vault = yaml.safe_load((inventory / "group_vars" / "all" / "vault.yml").read_text(encoding="utf-8"))
    topology = yaml.safe_load((inventory / "group_vars" / "cassandra" / "topology.yml").read_text(encoding="utf-8"))
    collector = group("collectors", inventory)[0]
    conf = tomllib.loads(sh(collector, "cat /etc/iact/collector.toml"))["cassandra"]
    secrets = {"admin": str(vault["vault_cassandra_admin_password"]),
               "collector": sh(collector, f"cat {shlex.quote(conf['password_file'])}").strip()}
    tmp = tempfile.TemporaryDirectory(prefix="iact-bench-creds-")
    files = {}
    for who, secret in secrets.items():
        path = Path(tmp.name) / f"cassandra-{who}.password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        files[who] = str(path)
    env = {
        "IACT_TEST_CASSANDRA_HOSTS": ",".join(h.address for h in group("cassandra", inventory)),
        "IACT_TEST_CASSANDRA_DC": str(topology.get("cassandra_dc", "dc1")),
        "IACT_TEST_CASSANDRA_USER": "iact_admin",
        "IACT_TEST_CASSANDRA_PASSWORD_FILE": files["admin"],
        "IACT_TEST_CASSANDRA_COLLECTOR_USER": str(conf["username"]),
        "IACT_TEST_CASSANDRA_COLLECTOR_PASSWORD_FILE": files["collector"],
        "IACT_TEST_CASSANDRA_KEYSPACE": str(conf["keyspace"]),
        "IACT_TEST_CASSANDRA_TABLE": str(conf["table"]),
    }
    if conf.get("ssl_ca_file"):  # the nodes require TLS: the lab CA (roles/pki) signed their certificates
        env["IACT_TEST_CASSANDRA_CA"] = str(REPO / ".lab" / "web-ca" / "ca.crt")
    found = Target.from_env(env)
    assert found is not None
    return found, tmp


# --- commands on the hosts -------------------------------------------------------------------------------

def sh(host: Host, command: str, *, timeout: float = 600, check: bool = True) -> str:
    """Run ``command`` (a shell command line) on a lab host; its standard output."""
    proc = subprocess.run([DOCKER, "exec", host.container, "sh", "-c", command], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{host.name}: {command!r} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def rootfs(host: Host) -> Path:
    """The host's file system as this machine sees it (the container's merged overlay): reading its state
    files and writing its log files from here costs no process inside the container."""
    out = subprocess.run([DOCKER, "inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", host.container],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    return Path(out)


def process_pid(host: Host, needle: str) -> int | None:
    """The pid (as this machine numbers it) of the host's process whose command line contains ``needle``."""
    out = subprocess.run([DOCKER, "top", host.container, "-eo", "pid,args"], capture_output=True, text=True,
                         check=False, timeout=60).stdout
    for line in out.splitlines()[1:]:
        pid, _, args = line.strip().partition(" ")
        if needle in args and pid.isdigit():
            return int(pid)
    return None


# --- Cassandra nodes -------------------------------------------------------------------------------------

def nodes_up(cassandra: list[Host]) -> int:
    """Nodes UN as the first node sees them, judged by ``iact-agent cassandra status`` (agents/iact_agents/ring.py,
    the one reader of nodetool status); 0 when it gives no verdict (node down, nodetool not answering)."""
    out = sh(cassandra[0], "iact-agent cassandra status --json 2>/dev/null", check=False)
    try:
        verdict = json.loads(out)
    except ValueError:
        return 0
    return int(verdict.get("up_normal", 0)) if isinstance(verdict, dict) else 0


def wait_all_up(cassandra: list[Host], timeout: float = 900) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nodes_up(cassandra) == len(cassandra):
            return True
        time.sleep(5)
    return False


def stop_all(cassandra: list[Host]) -> None:
    for h in cassandra:
        sh(h, "systemctl stop cassandra", timeout=300)


def start_all(cassandra: list[Host]) -> bool:
    """Start every node (harmless when running) and wait until all are UN."""
    for h in cassandra:
        sh(h, "systemctl start cassandra", timeout=300, check=False)
    return wait_all_up(cassandra)
