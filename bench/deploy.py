"""Part 6, deploy: ``playbooks/site.yml`` with Ansible's profile_tasks and profile_roles callbacks, so the
slowest roles and tasks are named.

* ``force``: a converge of the deployed lab (``make lab FORCE=1`` runs the same playbook): nothing should
  change, and what it costs is the price of every later deploy.
* ``fresh``: the first converge of new hosts. It needs hosts that have never been deployed (an inventory of
  fresh containers or machines, ``--fresh-inventory``); the lab's own hosts are not that, so this part only
  runs when such an inventory is given.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO, load_average

_TIMING = re.compile(r"^(?P<name>\S.*?) -{3,} (?P<secs>\d+(?:\.\d+)?)s\s*$")
_RECAP = re.compile(r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unr>\d+)\s+"
                    r"failed=(?P<failed>\d+)")


def parse_profile(output: str, top: int = 12) -> dict[str, Any]:
    """The summaries printed at the end, slowest first: per role (profile_roles: the block of timings that
    ends with ``~~~`` and ``total``) and per task (profile_tasks: the other blocks after a line of ``=``),
    and the play recap."""
    roles: dict[str, float] = {}
    tasks: dict[str, float] = {}
    recap: dict[str, dict[str, int]] = {}
    block: dict[str, float] = {}
    in_block = False

    def close() -> None:
        for name, secs in block.items():
            tasks[name] = max(secs, tasks.get(name, 0.0))
        block.clear()

    for raw in output.splitlines():
        line = raw.strip()
        if line and set(line) == {"="}:
            close()
            in_block = True
            continue
        if line and set(line) == {"~"}:  # profile_roles: what came before were roles
            roles.update(block)
            block.clear()
            continue
        m = _TIMING.match(line)
        if m and in_block:
            name = m.group("name").strip()
            if name == "total":
                roles["total"] = float(m.group("secs"))
            else:
                block[name] = float(m.group("secs"))
            continue
        r = _RECAP.match(line)
        if r:
            recap[r.group("host")] = {k: int(r.group(k)) for k in ("ok", "changed", "unr", "failed")}
        elif line and not m:
            close()
            in_block = False
    close()
    total = roles.pop("total", None)
    return {
        "total_s": total,
        "roles": sorted(roles.items(), key=lambda kv: -kv[1])[:top],
        "slowest_tasks": sorted(tasks.items(), key=lambda kv: -kv[1])[:top],
        "recap": recap,
        "changed": sum(h["changed"] for h in recap.values()),
        "failed": sum(h["failed"] + h["unr"] for h in recap.values()),
    }


def converge(inventory: Path, log_path: Path, playbook: str = "playbooks/site.yml") -> dict[str, Any]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.timer,ansible.posix.profile_tasks,ansible.posix.profile_roles",
        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "40",
        "PROFILE_TASKS_SORT_ORDER": "descending",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    load = load_average()
    t0 = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), playbook],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=7200)
    wall = time.monotonic() - t0
    out = parse_profile(log_path.read_text(errors="replace"))
    return out | {"exit_code": proc.returncode, "wall_s": round(wall, 1), "log": str(log_path), "load_before": load,
                  "load_after": load_average()}
