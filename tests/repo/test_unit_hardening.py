"""Unit hardening: every systemd unit a role installs, rendered for the lab inventory and scored offline.

Each `roles/<role>/templates/etc/systemd/system/<unit>.j2` is rendered by Ansible itself (the role's own defaults
and vars, the lab inventory, the facts below) for every lab host the role's playbook targets, and scored with
`systemd-analyze security --offline=true --root=<host's tree>` (systemd 252 on Debian 12: the hosts' version).

One number per unit: `audit_unit_max_exposure` (roles/audit/defaults/main.yml), the ceiling the weekly audit also
holds the running unit to. The measured score must not exceed it and must equal it (a better unit lowers the
number, so it never hides a regression), and the role README's "Unit hardening" table must show the same number.
A missing `systemd-analyze` is a failure with its reason, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
UNIT_DIR = "templates/etc/systemd/system"
UNIT_TEMPLATES = sorted(ROOT.glob(f"roles/*/{UNIT_DIR}/*.service.j2"))
UNITS = {t.name.removesuffix(".j2"): t.relative_to(ROOT / "roles").parts[0] for t in UNIT_TEMPLATES}  # unit -> role
CEILINGS_FILE = ROOT / "roles/audit/defaults/main.yml"
# Facts the roles read (the rest of a real host's facts is not used by the unit templates): each host's default
# address is its ansible_host, as on the lab's containers; memory only sizes Cassandra's heap.
FACTS = {"architecture": "x86_64", "memtotal_mb": 4096}
SYSTEMD_VERSION = 252
SCORE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d)")

RENDER_TASKS = """\
- name: Render the unit into a variable (nothing runs on any host)
  ansible.builtin.set_fact:
    __units_rendered: >-
      {{ __units_rendered | default({}) | combine({__units_name:
         lookup('ansible.builtin.template', 'etc/systemd/system/' ~ __units_name ~ '.j2')}) }}
"""

RENDER_PLAYBOOK = """\
- name: Render the units for the lab hosts
  hosts: all
  gather_facts: false
  tasks:
    - name: The facts the templates read
      ansible.builtin.set_fact:
        default_ipv4: {{address: "{{{{ ansible_host }}}}"}}
        cacheable: true
        {facts}
    - name: Render each unit on the hosts its role's playbook targets
      ansible.builtin.include_role:
        name: "{{{{ item.role }}}}"
      vars:
        __units_name: "{{{{ item.unit }}}}"
      loop: {units}
      loop_control:
        label: "{{{{ item.unit }}}}"
      when: inventory_hostname in query('ansible.builtin.inventory_hostnames', item.hosts)

- name: Hand them to the test
  hosts: localhost
  gather_facts: false
  connection: local
  vars:
    ansible_ssh_private_key_file: ""
    ansible_ssh_common_args: ""
  tasks:
    - name: One JSON file, host -> unit -> text
      ansible.builtin.copy:
        content: >-
          {{{{ dict(groups['all'] | zip(groups['all'] | map('extract', hostvars, '__units_rendered')
                                        | map('default', {{}}))) | to_json }}}}
        dest: "{{{{ out }}}}"
        mode: "0600"
"""


def _role_hosts() -> dict[str, str]:
    """role -> the host pattern of the play in playbooks/*.yml that applies it."""
    found: dict[str, str] = {}
    for playbook in sorted((ROOT / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(playbook.read_text()) or []:
            for entry in play.get("roles", []) if isinstance(play, dict) else []:
                role = entry["role"] if isinstance(entry, dict) else entry
                found.setdefault(role, play["hosts"])
    return found


def _ceilings() -> dict[str, float]:
    data = yaml.safe_load(CEILINGS_FILE.read_text())
    return {unit: float(score) for unit, score in data["audit_unit_max_exposure"].items()}


def _readme_scores(role: str) -> dict[str, tuple[float, float]]:
    """unit -> (before, after) from the `| `unit` | before | after |` rows of the README's Unit hardening section."""
    text = (ROOT / "roles" / role / "README.md").read_text()
    section = re.search(r"^## Unit hardening\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert section, f"roles/{role}/README.md has no '## Unit hardening' section"
    rows = re.findall(r"^\| `([^`]+\.service)` \| (\d+\.\d) \| (\d+\.\d) \|", section.group(1), re.MULTILINE)
    return {unit: (float(before), float(after)) for unit, before, after in rows}


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, ("systemd-analyze is not installed: the unit scores cannot be measured "
                  "(Debian: apt-get install systemd; the hosts run systemd 252 of Debian 12)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    assert version.startswith(f"systemd {SYSTEMD_VERSION} "), (
        f"the scores are those of systemd {SYSTEMD_VERSION} (Debian 12, the hosts' version); this machine has "
        f"{version.splitlines()[:1]}: other versions weigh the options differently")
    return path


def render(work: Path, extra_vars: dict[str, object] | None = None) -> dict[str, dict[str, str]]:
    """host -> unit -> the unit file Ansible renders for that lab host (extra_vars: `-e`, above the inventory)."""
    hosts = _role_hosts()
    missing = sorted(role for role in UNITS.values() if role not in hosts)
    assert not missing, f"no playbook applies the roles {missing}: their units cannot be rendered for a host"
    # Each role as Ansible loads it (defaults, vars, templates), with one task that only renders the unit.
    for role in set(UNITS.values()):
        for part in ("defaults", "vars", "templates"):
            if (ROOT / "roles" / role / part).is_dir():
                (work / "roles" / role).mkdir(parents=True, exist_ok=True)
                (work / "roles" / role / part).symlink_to(ROOT / "roles" / role / part)
        (work / "roles" / role / "tasks").mkdir()
        (work / "roles" / role / "tasks" / "main.yml").write_text(RENDER_TASKS)
    units = [{"role": role, "unit": unit, "hosts": hosts[role]} for unit, role in sorted(UNITS.items())]
    facts = "\n        ".join(f"{k}: {json.dumps(v)}" for k, v in FACTS.items())
    (work / "render.yml").write_text(RENDER_PLAYBOOK.format(facts=facts, units=json.dumps(units)))
    out = work / "units.json"
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(work / "roles"),
           "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(ROOT / "inventory" / "lab"), str(work / "render.yml"),
         "-e", json.dumps({**(extra_vars or {}), "out": str(out)})],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert result.returncode == 0, f"rendering the units failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    by_host: dict[str, dict[str, str]] = json.loads(out.read_text())
    return by_host


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return render(tmp_path_factory.mktemp("units"))


@pytest.fixture(scope="session")
def scores(systemd_analyze: str, rendered: dict[str, dict[str, str]],
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    """unit -> host -> exposure, each host's units scored in a root of their own (no drop-in of this machine)."""
    found: dict[str, dict[str, float]] = {}
    for host, units in sorted(rendered.items()):
        if not units:
            continue
        root = tmp_path_factory.mktemp(f"root-{host}")
        (root / "etc/systemd/system").mkdir(parents=True)
        for unit, text in units.items():
            (root / "etc/systemd/system" / unit).write_text(text)
        result = subprocess.run(
            [systemd_analyze, "security", "--offline=true", f"--root={root}", "--no-pager", *sorted(units)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        measured = dict(SCORE.findall(result.stdout))
        assert result.returncode == 0 and set(measured) == set(units), (
            f"systemd-analyze security failed on {host}'s units (rc {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        for unit, value in measured.items():
            found.setdefault(unit, {})[host] = float(value)
    return found


def test_every_unit_template_is_scored() -> None:
    """A drop-in or another kind of unit would escape the score below: it must be added here first."""
    templates = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(f"roles/*/{UNIT_DIR}/**/*.j2"))
    assert templates == [str(t.relative_to(ROOT)) for t in UNIT_TEMPLATES]
    assert UNITS, "no unit template found"


def test_lab_units_allow_exactly_the_inventory_addresses(rendered: dict[str, dict[str, str]]) -> None:
    """The IP allow lists of the lab: the Cassandra nodes (and the metrics store for the web), nothing else."""
    nodes = "172.30.80.21 172.30.80.22 172.30.80.23"
    for host in ("mysql1", "cass1", "cass2", "cass3"):
        assert f"IPAddressDeny=any\nIPAddressAllow=localhost {nodes}\n" in rendered[host]["iact-collector.service"]
    web = rendered["mysql1"]["iact-web.service"]
    assert f"IPAddressDeny=any\nIPAddressAllow=localhost 172.30.80.11 {nodes}\n" in web


def test_host_names_instead_of_addresses_drop_the_ip_filter(tmp_path: Path, systemd_analyze: str) -> None:
    """IPAddressAllow takes addresses only: a name there would leave `IPAddressDeny=any` allowing nothing at all."""
    units = render(tmp_path, {"collector_cassandra_contact_points": ["cass1.example.net", "10.0.0.5"],
                              "web_mysql_host": "db.example.net"})["mysql1"]
    for unit, names in (("iact-collector.service", "cass1.example.net"), ("iact-web.service", "db.example.net")):
        assert "IPAddress" not in units[unit].replace("# No IPAddressDeny", ""), units[unit]
        assert f"# No IPAddressDeny: {names}" in units[unit]


def test_every_unit_is_rendered_for_a_lab_host(scores: dict[str, dict[str, float]]) -> None:
    assert sorted(scores) == sorted(UNITS)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_score_is_the_documented_ceiling(unit: str, scores: dict[str, dict[str, float]]) -> None:
    ceilings = _ceilings()
    assert unit in ceilings, f"{unit}: no ceiling in audit_unit_max_exposure ({CEILINGS_FILE.relative_to(ROOT)})"
    worst = max(scores[unit].values())
    per_host = ", ".join(f"{h} {v:.1f}" for h, v in sorted(scores[unit].items()))
    assert worst <= ceilings[unit], f"{unit} is more exposed than its ceiling {ceilings[unit]:.1f}: {per_host}"
    assert worst == ceilings[unit], (
        f"{unit} now scores {worst:.1f} ({per_host}): lower audit_unit_max_exposure and the "
        f"roles/{UNITS[unit]}/README.md table from {ceilings[unit]:.1f} to {worst:.1f}")


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_readme_shows_the_ceiling(unit: str) -> None:
    role = UNITS[unit]
    table = _readme_scores(role)
    assert unit in table, f"roles/{role}/README.md, Unit hardening: no row | `{unit}` | before | after |"
    before, after = table[unit]
    assert after == _ceilings().get(unit), (
        f"roles/{role}/README.md shows {after:.1f} for {unit}, audit_unit_max_exposure says {_ceilings().get(unit)}")
    assert after <= before


def test_ceilings_name_only_units_the_roles_install() -> None:
    assert sorted(_ceilings()) == sorted(UNITS), textwrap.shorten(
        f"audit_unit_max_exposure {sorted(_ceilings())} against the roles' units {sorted(UNITS)}", 300)
