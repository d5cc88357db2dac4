"""pyinfra inventory built from the Ansible inventory: one source of truth for both tools.

``ansible-inventory -i <inventory> --list`` resolves hosts, groups and variables exactly as Ansible does;
this module maps each host to a pyinfra host:

- ``ansible_connection`` ``docker`` / ``community.docker.docker`` → ``@docker/<ansible_host or name>``
  (what molecule uses);
- otherwise SSH: ``ansible_host``, ``ansible_port``, ``ansible_user``, ``ansible_ssh_private_key_file`` and
  the ``UserKnownHostsFile`` / ``StrictHostKeyChecking`` options of ``ansible_ssh_common_args``.

Every pyinfra host keeps its Ansible name in ``host.data.ansible_name``. Use it as a pyinfra inventory file
(the Ansible inventory comes from ``IACT_INVENTORY``, default ``inventory/lab``)::

    IACT_INVENTORY=inventory/lab pyinfra drill/inventory.py exec -- uptime

or from Python: :func:`load` returns ``{group: [(name, data), ...]}``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_DOCKER_CONNECTIONS = {"docker", "community.docker.docker"}

HostSpec = tuple[str, dict[str, Any]]


def ansible_inventory(inventory: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved inventory as ``ansible-inventory --list`` prints it (vault variables included)."""
    exe = ROOT / ".venv" / "bin" / "ansible-inventory"
    cmd = [str(exe) if exe.exists() else "ansible-inventory", "-i", str(inventory), "--list"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _ssh_options(common_args: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    words = shlex.split(common_args or "")
    for i, word in enumerate(words):
        if word == "-o" and i + 1 < len(words) and "=" in words[i + 1]:
            key, value = words[i + 1].split("=", 1)
            opts[key.lower()] = value
    return opts


_CONNECTION_VARS = ("ansible_host", "ansible_port", "ansible_user", "ansible_connection", "ansible_become",
                   "ansible_ssh_private_key_file", "ansible_ssh_common_args")


def render(hv: dict[str, Any], value: Any, inventory_dir: Path | None = None, depth: int = 5) -> Any:
    """``value`` with its Jinja references resolved from the host's variables (``--list`` prints them raw),
    e.g. ``{{ vault_backup_age_identity }}``; strings only, up to ``depth`` levels of indirection."""
    import jinja2  # noqa: PLC0415 - installed with ansible-core

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - not HTML
    context = {**hv, "inventory_dir": str(inventory_dir)} if inventory_dir else hv
    for _ in range(depth):
        if not (isinstance(value, str) and "{{" in value):
            break
        value = env.from_string(value).render(context)
    return value


def _render(hv: dict[str, Any], inventory_dir: Path) -> dict[str, Any]:
    """Template the connection variables, e.g. ``{{ inventory_dir }}``."""
    out = dict(hv)
    for key in _CONNECTION_VARS:
        if key in hv:
            out[key] = render(hv, hv[key], inventory_dir, depth=1)
    return out


def host_spec(name: str, hv: dict[str, Any]) -> HostSpec:
    """pyinfra (name, data) for one Ansible host and its (rendered) variables."""
    become = bool(hv.get("ansible_become")) or hv.get("ansible_user", "root") != "root"
    data: dict[str, Any] = {"ansible_name": name, "ansible_vars": hv}
    if become:
        data["_sudo"] = True
    if hv.get("ansible_connection") in _DOCKER_CONNECTIONS:
        container = str(hv.get("ansible_host") or hv.get("ansible_docker_host") or name)
        data["docker_identifier"] = container
        return f"@docker/{container}", data
    data["ssh_hostname"] = hv.get("ansible_host", name)
    data["ssh_port"] = int(hv.get("ansible_port", 22))
    data["ssh_user"] = hv.get("ansible_user", "root")
    if hv.get("ansible_ssh_private_key_file"):
        data["ssh_key"] = hv["ansible_ssh_private_key_file"]
    opts = _ssh_options(str(hv.get("ansible_ssh_common_args", "")))
    if "userknownhostsfile" in opts:
        data["ssh_known_hosts_file"] = opts["userknownhostsfile"]
    if "stricthostkeychecking" in opts:
        data["ssh_strict_host_key_checking"] = opts["stricthostkeychecking"]
    return name, data


def load(inventory: str | os.PathLike[str]) -> dict[str, list[HostSpec]]:
    """Groups of the Ansible inventory (children flattened, ``all`` included) as pyinfra host specs."""
    inv = ansible_inventory(inventory)
    hostvars: dict[str, dict[str, Any]] = inv.get("_meta", {}).get("hostvars", {})

    def members(group: str, seen: set[str]) -> list[str]:
        if group in seen:
            return []
        seen.add(group)
        entry = inv.get(group, {})
        names = list(entry.get("hosts", []))
        for child in entry.get("children", []):
            names += members(child, seen)
        return names

    path = Path(inventory)
    path = path if path.is_absolute() else ROOT / path
    inventory_dir = path if path.is_dir() else path.parent
    specs = {name: host_spec(name, _render(hostvars.get(name, {}), inventory_dir)) for name in hostvars}
    groups: dict[str, list[HostSpec]] = {}
    for group in inv:
        if group == "_meta":
            continue
        names = list(dict.fromkeys(members(group, set())))
        if names:
            groups[group] = [specs[n] for n in names if n in specs]
    return groups


# As a pyinfra inventory file: module-level lists are groups.
if __name__ != "__main__" and os.environ.get("IACT_PYINFRA_INVENTORY_SKIP") != "1":
    for _group, _hosts in load(os.environ.get("IACT_INVENTORY", ROOT / "inventory" / "lab")).items():
        if _group.isidentifier() and _group not in globals():
            globals()[_group] = _hosts
