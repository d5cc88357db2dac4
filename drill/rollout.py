"""Canary rollout of the agents package over the Ansible inventory (pyinfra, like the DR drill).

    .venv/bin/python drill/rollout.py [--inventory inventory/lab] [--source agents | --wheelhouse DIR]
                                      [--canary HOST] [--gate-timeout S] [--report FILE] [--force]

Ships a wheelhouse built by the agents role's own build (``playbooks/ops/agents_build.yml``; its RELEASE file
names the release ``<version>-<hash>``) to every host in waves: one canary host, then a quarter of the rest,
then everyone else. Per wave, on each host: upload the wheelhouse into ``<prefix>/releases/<release>/wheels``,
install it offline into ``<prefix>/releases/<release>/venv`` (the layout of roles/agents), switch the
``current`` link, restart the agents' units; then the health gate on the wave's hosts: the collector is
active and shipping (a marker line written to syslog is followed by a new committed position) and a health
run by the new release records its results in MySQL. A failed gate rolls every host switched by this
rollout back to its previous release (link back + restart) and the rollout stops with exit 1.

Refuses to start (exit 2) unless every host is on the release layout (apply playbooks/agents.yml once), every
collector is active, MariaDB answers and every Cassandra node is UN; ``--force`` skips the health part.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("IACT_PYINFRA_INVENTORY_SKIP", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyinfra.api.connect import disconnect_all
from pyinfra_fleet import Cluster, FleetError, connect

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/opt/iact"  # roles/agents: agents_prefix
PACKAGE = "iact-agents"
COMMAND = "iact-agent"
# Long-running units of the agents (the cron jobs and oneshot units start the new release by themselves).
UNITS = ("iact-collector",)
POSITIONS = "/var/lib/iact-collector/positions.json"  # the collector's committed positions (health reads them)
HEALTH = "runuser -u iact -- iact-agent health --config /etc/iact/health.toml --json"
HEALTH_CONFIG = "/etc/iact/health.toml"
INSTALLED = "venv/.iact-installed"  # roles/agents/tasks/install.yml: a release installed to its end
KEEP = 3  # roles/agents: agents_releases_keep


class RolloutError(FleetError):
    """The rollout cannot start or go on."""


class Refused(RolloutError):
    """The fleet is not in a state to start a rollout."""


# --- pure decisions --------------------------------------------------------------------------------------


def plan_waves(hosts: Sequence[str], canary: str | None = None, fraction: float = 0.25) -> list[list[str]]:
    """The waves: ``[canary]``, then ``ceil(fraction * rest)`` hosts, then the others (empty waves dropped).

    The canary is ``canary`` when given (it must be one of ``hosts``), else the first host."""
    ordered = list(dict.fromkeys(hosts))
    if not ordered:
        return []
    if canary is None:
        canary = ordered[0]
    if canary not in ordered:
        raise ValueError(f"canary {canary!r} is not one of the hosts")
    rest = [h for h in ordered if h != canary]
    second = math.ceil(fraction * len(rest)) if rest else 0
    waves = [[canary], rest[:second], rest[second:]]
    return [w for w in waves if w]


@dataclass
class HostResult:
    """What the rollout did to one host and what its gate found."""

    host: str
    previous: str = ""  # release ``current`` pointed at before the switch
    switched: bool = False
    gate_ok: bool | None = None  # None: not judged (the host failed before its gate)
    problems: list[str] = field(default_factory=list)
    rolled_back: bool = False


@dataclass(frozen=True)
class Decision:
    go_on: bool
    roll_back: list[str]  # hosts to switch back to their previous release
    reason: str


def decide(results: Sequence[HostResult]) -> Decision:
    """After a wave: go on when every touched host passed its gate; otherwise roll back every host this
    rollout switched (earlier waves included, so that the fleet runs one release) and stop."""
    failed = [r for r in results if r.gate_ok is not True]
    if not failed:
        return Decision(True, [], "every touched host passed its gate")
    reason = "; ".join(f"{r.host}: {', '.join(r.problems) or 'not judged'}" for r in failed)
    return Decision(False, [r.host for r in results if r.switched and r.previous], reason)


def prunable(releases_newest_first: Sequence[str], keep: int, protected: Sequence[str]) -> list[str]:
    """Release folders to remove: beyond the ``keep`` newest, never a ``protected`` one (current, previous)."""
    return [r for r in list(releases_newest_first)[max(keep, 0):] if r not in protected]


# --- on the hosts ----------------------------------------------------------------------------------------


def sh(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


def current_release(c: Cluster, host: str) -> str:
    out = c.run(host, f"readlink {PREFIX}/current", check=False).strip()
    return out.rsplit("/", 1)[-1] if out.startswith("releases/") else ""


def fleet_problems(c: Cluster, hosts: Sequence[str], *, health: bool) -> list[str]:
    """Why a rollout must not start (empty: it may)."""
    problems = []
    for host in hosts:
        if not current_release(c, host):
            problems.append(f"{host}: {PREFIX}/current is not a release link (apply playbooks/agents.yml first)")
    if not health:
        return problems
    for host in c.groups.get("collectors", []):
        state = c.run(host, "systemctl is-active iact-collector", check=False).strip()
        if state != "active":
            problems.append(f"{host}: iact-collector is {state or 'unknown'}")
    for host in c.groups.get("mysql", [])[:1]:
        if c.run(host, "mariadb -N -B -e 'SELECT 1'", check=False).strip() != "1":
            problems.append(f"{host}: MariaDB does not answer")
    cassandra = c.groups.get("cassandra", [])
    if cassandra:
        ring = c.ring(cassandra[0])
        if not ring.get("ok"):
            problems.append(f"Cassandra: {ring.get('reason', 'not all UN')}")
    return problems


def wheelhouse_tar(wheelhouse: Path) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(wheelhouse.iterdir()):
            if f.is_file():
                tar.add(f, arcname=f.name)
    buf.seek(0)
    return buf


def install(c: Cluster, host: str, release: str, tar: io.BytesIO) -> None:
    """Upload and install the release into its own folder (nothing when it is installed already)."""
    rel = f"{PREFIX}/releases/{release}"
    if c.run(host, f"test -e {rel}/{INSTALLED} && echo yes", check=False).strip() == "yes":
        return
    staging = f"/root/.iact-rollout-{release}.tar"  # root's folder: docker cp cannot write into a tmpfs
    c.run(host, f"rm -rf {rel} && install -d -m 0755 {rel}/wheels")
    tar.seek(0)
    if not c.hosts[host].put_file(tar, staging):
        raise RolloutError(f"{host}: cannot upload the wheelhouse")
    c.run(host, f"tar -xf {staging} -C {rel}/wheels; status=$?; rm -f {staging}; exit $status")
    # The same install as roles/agents/tasks/install.yml.
    c.run(host, f"set -e; python3 -m venv {rel}/venv; "
                f"{rel}/venv/bin/pip install --quiet --disable-pip-version-check --no-index --find-links {rel}/wheels"
                f" -r {rel}/wheels/requirements-runtime.txt {PACKAGE}; {rel}/venv/bin/{COMMAND} --version;"
                f" touch {rel}/{INSTALLED}", timeout=600)


def link(c: Cluster, host: str, release: str) -> None:
    """Point ``current`` at the release (atomic rename of a new link)."""
    c.run(host, f"ln -sfn releases/{release} {PREFIX}/current.new && mv -T {PREFIX}/current.new {PREFIX}/current")


def restart(c: Cluster, host: str) -> None:
    """Restart the agents' units enabled on the host."""
    for unit in UNITS:
        c.run(host, f"if systemctl is-enabled --quiet {unit}; then systemctl restart {unit}; fi")


def gate(c: Cluster, host: str, timeout: float) -> list[str]:
    """Problems of the host after the switch (empty: it passed): its collector shipping, its health recorded."""
    problems = []
    if host in c.groups.get("collectors", []):
        marker = f"iact-rollout marker {time.time_ns()}"
        since = c.run(host, "date +%s.%N").strip()
        c.run(host, sh("logger", "-t", "iact-rollout", marker))
        deadline = time.monotonic() + timeout
        shipping, state = False, "unknown"
        while time.monotonic() < deadline:
            state = c.run(host, "systemctl is-active iact-collector", check=False).strip()
            committed = c.run(host, f"stat -c %.9Y {POSITIONS}", check=False).strip()
            if state == "active" and committed and float(committed) > float(since):
                shipping = True
                break
            time.sleep(2)
        if not shipping:
            problems.append(f"collector {state}, no position committed within {timeout:.0f} s of a marker line")
    if c.run(host, f"test -e {HEALTH_CONFIG} && echo yes", check=False).strip() == "yes":
        out = c.run(host, HEALTH, check=False, timeout=300)
        try:
            report = json.loads(out)
        except ValueError:
            report = None
        if not isinstance(report, dict):
            problems.append(f"the health run printed no report: {out[-200:]!r}")
        elif not report.get("recorded"):
            problems.append("the health run did not record its results in MySQL")
    return problems


def prune(c: Cluster, host: str, keep: int, protected: Sequence[str]) -> None:
    names = c.run(host, f"cd {PREFIX}/releases && ls -1t", check=False).split()
    for name in prunable(names, keep, protected):
        c.run(host, f"rm -rf {PREFIX}/releases/{shlex.quote(name)}")


# --- the rollout -----------------------------------------------------------------------------------------


def build(inventory: str, source: Path, cache_dir: Path | None = None) -> Path:
    """The wheelhouse of ``source`` built by the agents role (cached by source hash, in ``cache_dir`` when
    given instead of the role's agents_wheel_cache_dir)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "wheelhouse"
        exe = ROOT / ".venv" / "bin" / "ansible-playbook"
        cmd = [str(exe) if exe.exists() else "ansible-playbook", "-i", inventory, "playbooks/ops/agents_build.yml",
               "-e", f"agents_source_dir={source.resolve()}", "-e", f"agents_build_out={out}"]
        if cache_dir:
            cmd += ["-e", f"agents_wheel_cache_dir={cache_dir.resolve()}"]
        # This repository's roles, whatever the caller's ANSIBLE_ROLES_PATH says: molecule's is relative
        # (../../roles from a scenario), and from the repository's root that finds nothing, so Ansible takes
        # the Python package folder `agents/` for the role and builds nothing.
        env = {**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles")}
        run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if run.returncode != 0 or not out.exists():
            raise RolloutError(f"the build failed: {(run.stdout + run.stderr)[-1500:]}")
        return Path(out.read_text().strip())


def source_variant(dest: Path, note: str) -> Path:
    """A copy of the agents source whose package carries one more comment line: a new source hash, so a new
    release of the same code (for the rollout test and the bench)."""
    src = Path(shutil.copytree(ROOT / "agents", dest, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build", "tests", ".mypy_cache", ".ruff_cache")))
    init = src / "iact_agents" / "__init__.py"
    init.write_text(init.read_text() + f"# build variant: {note}\n")
    return src


@dataclass
class Report:
    release: str
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    status: str = "failure"
    reason: str = ""
    waves: list[list[str]] = field(default_factory=list)
    hosts: dict[str, HostResult] = field(default_factory=dict)


def roll_back(c: Cluster, rep: Report, hosts: Sequence[str]) -> None:
    for host in hosts:
        r = rep.hosts[host]
        try:
            link(c, host, r.previous)
            r.rolled_back = True
            restart(c, host)
            print(f"rollout: {host} rolled back to {r.previous}", flush=True)
        except FleetError as exc:
            r.problems.append(f"rollback failed: {exc}")


def rollout(c: Cluster, wheelhouse: Path, *, canary: str | None, gate_timeout: float, force: bool) -> Report:
    release = (wheelhouse / "RELEASE").read_text().strip()
    rep = Report(release)
    t0 = time.monotonic()
    hosts = c.groups.get("all", [])
    problems = fleet_problems(c, hosts, health=not force)
    if problems:
        raise Refused("the fleet is not healthy, nothing was changed: " + "; ".join(problems))
    # The default canary runs the long-running agent (a collector host), where a bad build shows first.
    rep.waves = plan_waves(hosts, canary or (c.groups.get("collectors") or hosts)[0])
    tar = wheelhouse_tar(wheelhouse)
    touched: list[HostResult] = []
    for n, wave in enumerate(rep.waves, 1):
        print(f"rollout: wave {n}/{len(rep.waves)} {wave} -> {release}", flush=True)
        for host in wave:
            r = rep.hosts[host] = HostResult(host, previous=current_release(c, host))
            touched.append(r)
            try:
                install(c, host, release, tar)
                link(c, host, release)
                r.switched = True
                restart(c, host)
            except FleetError as exc:
                r.problems.append(str(exc))
        for host in wave:
            r = rep.hosts[host]
            if r.switched and not r.problems:
                r.problems += gate(c, host, gate_timeout)
            r.gate_ok = not r.problems
            print(f"rollout: {host} gate {'passed' if r.gate_ok else 'FAILED: ' + '; '.join(r.problems)}", flush=True)
        decision = decide(touched)
        if not decision.go_on:
            rep.reason = f"wave {n} failed ({decision.reason}); rolled back {decision.roll_back}"
            roll_back(c, rep, decision.roll_back)
            rep.seconds = round(time.monotonic() - t0, 1)
            return rep
    for r in touched:
        prune(c, r.host, KEEP, [release, r.previous])
    rep.status = "success"
    rep.seconds = round(time.monotonic() - t0, 1)
    return rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inventory", default=os.environ.get("IACT_INVENTORY", "inventory/lab"))
    what = p.add_mutually_exclusive_group()
    what.add_argument("--source", type=Path, default=ROOT / "agents", help="agents source to build (default agents/)")
    what.add_argument("--wheelhouse", type=Path, help="a wheelhouse built by playbooks/ops/agents_build.yml")
    p.add_argument("--canary", help="the canary host (default: the first collectors host)")
    p.add_argument("--gate-timeout", type=float, default=90.0, help="seconds a collector has to ship a marker")
    p.add_argument("--report", type=Path, help="write the report as JSON here")
    p.add_argument("--force", action="store_true", help="start even when the fleet's health checks fail")
    args = p.parse_args(argv)
    try:
        wheelhouse = args.wheelhouse or build(args.inventory, args.source)
        c = connect(args.inventory)
        try:
            rep = rollout(c, wheelhouse, canary=args.canary, gate_timeout=args.gate_timeout, force=args.force)
        finally:
            disconnect_all(c.state)
    except Refused as exc:
        print(f"rollout: refused: {exc}", file=sys.stderr)
        return 2
    except FleetError as exc:
        print(f"rollout: error: {exc}", file=sys.stderr)
        return 1
    doc = {**asdict(rep), "hosts": {h: asdict(r) for h, r in rep.hosts.items()}}
    if args.report:
        args.report.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"rollout: {rep.status.upper()} {rep.release} in {rep.seconds} s, waves {rep.waves}"
          + (f": {rep.reason}" if rep.reason else ""))
    return 0 if rep.status == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
