"""Part 7, rollout: the same change (a new agents release: the source with one more comment line) shipped to
every lab host twice, once by the Ansible agents playbook (``playbooks/agents.yml``: build, copy, install,
switch; it restarts nothing and checks no health) and once by the canary rollout (``drill/rollout.py``:
build, then per wave upload, install, switch, restart, health gate). Ratio: rollout time / playbook time,
both including their build. Every host is switched back to the release it ran before, and the two bench
releases are removed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import REPO, load_average

sys.path.insert(0, str(REPO / "drill"))
os.environ.setdefault("IACT_PYINFRA_INVENTORY_SKIP", "1")

import pyinfra_fleet
import rollout


def run(inventory: str) -> dict[str, Any]:
    token = uuid.uuid4().hex[:8]
    c = pyinfra_fleet.connect(inventory)
    before = {h: rollout.current_release(c, h) for h in c.groups["all"]}
    releases: set[str] = set()
    try:
        with tempfile.TemporaryDirectory(prefix="iact-bench-rollout-") as tmp:
            work = Path(tmp)
            src_a = rollout.source_variant(work / "a", f"bench ansible {token}")
            src_b = rollout.source_variant(work / "b", f"bench rollout {token}")
            load = load_average()
            t0 = time.monotonic()
            play = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", inventory,
                                   "playbooks/agents.yml", "-e", f"agents_source_dir={src_a}",
                                   "-e", f"agents_wheel_cache_dir={work / 'wheels'}"],
                                  cwd=REPO, capture_output=True, text=True, check=False, timeout=3600)
            ansible_s = time.monotonic() - t0
            if play.returncode != 0:
                raise RuntimeError(f"agents playbook failed: {(play.stdout + play.stderr)[-1500:]}")
            releases.add(rollout.current_release(c, c.groups["all"][0]))
            t0 = time.monotonic()
            wheelhouse = rollout.build(inventory, src_b, cache_dir=work / "wheels")
            releases.add((wheelhouse / "RELEASE").read_text().strip())
            rc = rollout.main(["--inventory", inventory, "--wheelhouse", str(wheelhouse),
                               "--report", str(work / "rollout.json")])
            rollout_s = time.monotonic() - t0
            if rc != 0:
                raise RuntimeError(f"rollout exited {rc}: {(work / 'rollout.json').read_text()[-1500:]}")
            return {"hosts": len(before), "ansible_agents_playbook_s": round(ansible_s, 1),
                    "rollout_s": round(rollout_s, 1), "ratio_rollout_to_ansible": round(rollout_s / ansible_s, 2),
                    "load_before": load, "load_after": load_average()}
    finally:
        for host, release in before.items():
            if release and rollout.current_release(c, host) != release:
                rollout.link(c, host, release)
                rollout.restart(c, host)
            for name in releases - {release, ""}:
                c.run(host, f"rm -rf {rollout.PREFIX}/releases/{name}", check=False)
        rollout.disconnect_all(c.state)
