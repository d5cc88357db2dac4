"""Shared fixtures of the web layer's integration tests (testinfra on the web hosts, HTTP and a browser from
the controller).

The site's address, its credentials and the lab CA come from the inventory testinfra is given
(`--ansible-inventory`): the values are templated by Ansible itself on the first web host (`debug`), so the
same tests run against the lab (`inventory/lab`) and the stack scenario (molecule/default/verify.yml).
Environment variables override them: IACT_TEST_WEB_ADDRESS (the stack scenario's hosts are reached by their
container address, not their inventory name), IACT_TEST_WEB_URL, IACT_TEST_WEB_CA, IACT_TEST_OUTPUT_DIR.
Traffic goes only to the web host's own address (a lab host or a scenario container).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import testinfra
from web_testlib import Site

ROOT = Path(__file__).resolve().parents[3]


def _inventory(request: pytest.FixtureRequest) -> str:
    inv = request.config.getoption("ansible_inventory")
    if not inv:
        pytest.fail("give the inventory: --ansible-inventory=inventory/lab (or the scenario's, as verify.yml does)")
    return str(inv)


def inventory_host(request: pytest.FixtureRequest, name: str):  # type: ignore[no-untyped-def]
    """testinfra host `name` of the inventory, reached the way the command line asks (--force-ansible)."""
    url = f"ansible://{name}?ansible_inventory={_inventory(request)}"
    if request.config.getoption("force_ansible", False):
        url += "&force_ansible=True"
    return testinfra.get_host(url)


@pytest.fixture(scope="session")
def groups(request: pytest.FixtureRequest) -> dict[str, list[str]]:
    """The inventory's groups."""
    return inventory_host(request, "localhost").ansible.get_variables()["groups"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest, groups: dict[str, list[str]]) -> Site:
    inventory = _inventory(request)
    web_hosts = groups.get("web") or []
    if not web_hosts:
        pytest.fail(f"the inventory {inventory} has no host in the web group")
    name = web_hosts[0]
    host = inventory_host(request, name)
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
        pytest.fail(f"the lab CA {ca} is missing: deploy playbooks/web.yml with web_tls_source: lab_ca first")
    return Site(
        host=name, url=url, address=address, ca=ca, users=users, superuser=superuser, viewer=viewer,
        tokens={c["name"]: c["token"] for c in data["clients"]}, output=output,
    )


@pytest.fixture(scope="session")
def web_host(request: pytest.FixtureRequest, site: Site):  # type: ignore[no-untyped-def]
    """testinfra host of the site's web host."""
    return inventory_host(request, site.host)


@pytest.fixture(scope="session")
def db_host(request: pytest.FixtureRequest, groups: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """testinfra host of the first metrics store (root reaches MariaDB through its socket)."""
    return inventory_host(request, groups["mysql"][0])
