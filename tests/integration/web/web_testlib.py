"""What the web layer's integration tests and bench/web share (no fixtures here): the site under test, found
in an Ansible inventory.

The values are templated by Ansible itself on the first web host (`debug`), vault references included, so
the same code serves the lab (`inventory/lab`) and the stack scenario. Environment variables override them:
IACT_TEST_WEB_ADDRESS (the stack scenario's hosts are reached by their container address, not their
inventory name), IACT_TEST_WEB_URL, IACT_TEST_WEB_CA, IACT_TEST_OUTPUT_DIR.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import testinfra

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Site:
    host: str
    """Inventory name of the web host the site is served from."""
    url: str
    """Base URL, ``https://<address>/``."""
    address: str
    ca: Path
    """The lab CA certificate (PEM) the site's certificate is signed by."""
    users: dict[str, str]
    """username -> password (from the vault)."""
    superuser: str
    viewer: str | None
    tokens: dict[str, str]
    """API client name -> token (from the vault)."""
    output: Path
    """Where screenshots, CSV downloads and measurements go."""


class SiteNotFound(RuntimeError):
    """The inventory has no web host, or the lab CA is missing; the message says what to do."""


def inventory_host(inventory: str, name: str, *, force_ansible: bool = False):  # type: ignore[no-untyped-def]
    """testinfra host `name` of the inventory (force_ansible: every command through Ansible, as the lab's
    SSH settings need)."""
    url = f"ansible://{name}?ansible_inventory={inventory}"
    if force_ansible:
        url += "&force_ansible=True"
    return testinfra.get_host(url)


def discover_site(inventory: str, *, force_ansible: bool = False) -> Site:
    groups = inventory_host(inventory, "localhost", force_ansible=force_ansible).ansible.get_variables()["groups"]
    web_hosts = groups.get("web") or []
    if not web_hosts:
        raise SiteNotFound(f"the inventory {inventory} has no host in the web group")
    name = web_hosts[0]
    host = inventory_host(inventory, name, force_ansible=force_ansible)
    # Ansible templates the values (vault references included) on the host itself; nothing is printed.
    values = host.ansible(
        "debug",
        "msg={{ {'address': ansible_host | default(inventory_hostname), 'port': web_https_port | default(443),"
        " 'users': web_users, 'clients': web_api_clients} | to_json }}",
        check=False,
    )["msg"]
    data = json.loads(values) if isinstance(values, str) else values
    address = os.environ.get("IACT_TEST_WEB_ADDRESS", data["address"])
    port = int(data["port"])
    url = os.environ.get("IACT_TEST_WEB_URL", f"https://{address}{'' if port == 443 else f':{port}'}/")
    users = {u["username"]: u["password"] for u in data["users"]}
    superuser = next(u["username"] for u in data["users"] if u.get("is_superuser"))
    viewer = next((u["username"] for u in data["users"] if not u.get("is_staff")), None)
    output = Path(os.environ.get("IACT_TEST_OUTPUT_DIR", ROOT / "tests" / "output")) / "web"
    output.mkdir(parents=True, exist_ok=True)
    ca = Path(os.environ.get("IACT_TEST_WEB_CA", ROOT / ".lab" / "web-ca" / "ca.crt"))
    if not ca.is_file():
        raise SiteNotFound(f"the lab CA {ca} is missing: deploy playbooks/web.yml with web_tls_source: lab_ca")
    return Site(
        host=name, url=url, address=address, ca=ca, users=users, superuser=superuser, viewer=viewer,
        tokens={c["name"]: c["token"] for c in data["clients"]}, output=output,
    )
