"""The fleet as pyinfra hosts, from the Ansible inventory (``inventory.py``): shared by the DR drill
(``drill.py``) and the canary rollout of the agents (``rollout.py``).

:func:`connect` connects to every host of the inventory; :class:`Cluster` runs shell commands on a host by
its Ansible name and uploads files, raising :class:`FleetError` with the host, the command and its output.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyinfra.api.command import StringCommand
from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all
from pyinfra.api.host import Host
from pyinfra.api.inventory import Inventory
from pyinfra.api.state import State

import inventory as ansible_inv


class FleetError(Exception):
    """A host could not be reached, or a command on it failed."""


@dataclass
class Cluster:
    state: State
    hosts: dict[str, Host]
    groups: dict[str, list[str]]

    def run(self, name: str, command: str, *, check: bool = True, timeout: int = 3600) -> str:
        host = self.hosts[name]
        args: dict[str, Any] = {"_timeout": timeout}
        if host.data.get("_sudo"):
            args["_sudo"] = True
        ok, out = host.run_shell_command(StringCommand(command), **args)
        if check and not ok:
            raise FleetError(f"{name}: `{command[:120]}` failed: {out.stderr.strip()[-800:] or out.stdout[-800:]}")
        return str(out.stdout)

    def ring(self, name: str) -> dict[str, Any]:
        """The ring as ``name`` sees it, judged by ``iact-agent cassandra status`` (agents/iact_agents/ring.py)."""
        out = self.run(name, "iact-agent cassandra status --json", check=False)
        try:
            doc = json.loads(out)
        except ValueError:
            raise FleetError(f"{name}: iact-agent cassandra status printed no verdict: {out[-300:]!r}") from None
        return doc if isinstance(doc, dict) else {"ok": False, "reason": "not a JSON object", "not_up_normal": []}

    def put(self, name: str, local: Path | io.StringIO, remote: str) -> None:
        if not self.hosts[name].put_file(local if isinstance(local, io.StringIO) else str(local), remote):
            raise FleetError(f"{name}: cannot upload {local} to {remote}")

    def variable(self, name: str, var: str) -> Any:
        """An inventory variable of the host, its Jinja references (e.g. to the vault) resolved."""
        hv: dict[str, Any] = self.hosts[name].data.get("ansible_vars", {})
        return ansible_inv.render(hv, hv.get(var))


def connect(inventory_path: str) -> Cluster:
    groups = ansible_inv.load(inventory_path)
    specs = groups.get("all", [])
    if not specs:
        raise FleetError(f"inventory {inventory_path} has no hosts")
    inv = Inventory((specs, {}), **{g: (hs, {}) for g, hs in groups.items() if g != "all"})
    state = State(inv, Config(CONNECT_TIMEOUT=20))
    connect_all(state)
    hosts = {h.data.get("ansible_name", h.name): h for h in inv}
    missing = [h[1]["ansible_name"] for h in specs if h[1]["ansible_name"] not in hosts]
    if missing or len(state.failed_hosts):
        raise FleetError(f"cannot connect to {missing or [h.name for h in state.failed_hosts]}")
    return Cluster(state, hosts, {g: [h[1]["ansible_name"] for h in hs] for g, hs in groups.items()})
