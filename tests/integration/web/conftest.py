"""Shared fixtures of the web layer's integration tests (testinfra on the web hosts, HTTP and a browser from
the controller).

The site's address, its credentials and the lab CA come from the inventory testinfra is given
(`--ansible-inventory`; web_testlib.discover_site), so the same tests run against the lab
(`pytest --ansible-inventory=inventory/lab --force-ansible tests/integration/web`) and the stack scenario
(molecule/default/verify.yml). Traffic goes only to the web host's own address.
"""

from __future__ import annotations

import pytest
import web_testlib
from web_testlib import Site, SiteNotFound, discover_site


def _inventory(request: pytest.FixtureRequest) -> str:
    inv = request.config.getoption("ansible_inventory")
    if not inv:
        pytest.fail("give the inventory: --ansible-inventory=inventory/lab (or the scenario's, as verify.yml does)")
    return str(inv)


def inventory_host(request: pytest.FixtureRequest, name: str):  # type: ignore[no-untyped-def]
    """testinfra host `name` of the inventory, reached the way the command line asks (--force-ansible)."""
    return web_testlib.inventory_host(_inventory(request), name,
                                      force_ansible=request.config.getoption("force_ansible", False))


@pytest.fixture(scope="session")
def groups(request: pytest.FixtureRequest) -> dict[str, list[str]]:
    """The inventory's groups."""
    return inventory_host(request, "localhost").ansible.get_variables()["groups"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest) -> Site:
    try:
        return discover_site(_inventory(request), force_ansible=request.config.getoption("force_ansible", False))
    except SiteNotFound as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def web_host(request: pytest.FixtureRequest, site: Site):  # type: ignore[no-untyped-def]
    """testinfra host of the site's web host."""
    return inventory_host(request, site.host)


@pytest.fixture(scope="session")
def db_host(request: pytest.FixtureRequest, groups: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """testinfra host of the first metrics store (root reaches MariaDB through its socket)."""
    return inventory_host(request, groups["mysql"][0])
