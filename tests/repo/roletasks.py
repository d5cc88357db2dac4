"""Run one task file of a role on localhost, as a role runs it (ansible-playbook, the repository's ansible.cfg):
for the repository tests of a role's templates and preflight checks, which need no host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def run_role_tasks(
    folder: Path, role: str, tasks: str, extra_vars: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    """Run one task file of a role on localhost (ansible-playbook, the repository's ansible.cfg)."""
    playbook = folder / f"{role}-{tasks}.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"ansible.builtin.include_role": {"name": role, "tasks_from": tasks}}],
    }]))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook), "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )
