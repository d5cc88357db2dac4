"""collections/requirements.yml names every Ansible collection the bundle uses, at the version installed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PINNED = {
    c["name"]: c["version"]
    for c in yaml.safe_load((ROOT / "collections/requirements.yml").read_text(encoding="utf-8"))["collections"]
}
FQCN = re.compile(r"\b([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b")
NOT_COLLECTIONS = {"ansible.builtin", "ansible.module_utils", "ansible.legacy"}


def used_collections() -> dict[str, str]:
    """Every namespace.collection named by a role, playbook or scenario, with one file that names it."""
    found: dict[str, str] = {}
    files = [*(ROOT / "playbooks").rglob("*.yml"), *(ROOT / "molecule").rglob("*.yml")]
    files += [p for p in (ROOT / "roles").rglob("*") if p.suffix in (".yml", ".j2", ".py") and p.is_file()]
    for path in files:
        for ns, name in FQCN.findall(path.read_text(encoding="utf-8")):
            if ns in ("ansible", "community") and f"{ns}.{name}" not in NOT_COLLECTIONS:
                found.setdefault(f"{ns}.{name}", str(path.relative_to(ROOT)))
    return found


def installed_version(name: str) -> str:
    import ansible_collections  # the collections the pinned `ansible` package ships  # noqa: PLC0415

    ns, coll = name.split(".")
    manifest = Path(next(iter(ansible_collections.__path__))) / ns / coll / "MANIFEST.json"
    return str(json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"])


def test_every_used_collection_is_pinned() -> None:
    used = used_collections()
    assert {"community.mysql", "community.crypto", "ansible.posix"} <= used.keys()  # the scan sees them
    missing = {name: where for name, where in used.items() if name not in PINNED}
    assert not missing, f"pin these in collections/requirements.yml: {missing}"


def test_pinned_versions_are_the_installed_ones() -> None:
    wrong = {name: (version, installed_version(name)) for name, version in PINNED.items()}
    wrong = {name: pair for name, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, f"pinned vs installed (requirements.txt's ansible ships these): {wrong}"


def test_molecule_driver_collection_is_pinned() -> None:
    driver = yaml.safe_load((ROOT / "molecule/default/molecule.yml").read_text(encoding="utf-8"))["driver"]["name"]
    assert driver == "docker"
    assert "community.docker" in PINNED
