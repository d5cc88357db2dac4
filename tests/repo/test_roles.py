"""Role structure: main.yml is a table of contents, argument specs match defaults, templates are marked."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
INCLUDE_MODULES = {
    "ansible.builtin.import_tasks",
    "ansible.builtin.include_tasks",
}


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _roles_used() -> set[str]:
    """Roles named by the playbooks: ``roles:`` entries and include_role/import_role tasks."""
    used: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "roles" and "hosts" in node and isinstance(value, list):  # a play's roles
                    used.update(r if isinstance(r, str) else r.get("role", r.get("name")) for r in value)
                elif key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role",
                             "import_role") and isinstance(value, dict):
                    used.add(str(value["name"]))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for playbook in sorted((ROOT / "playbooks").rglob("*.yml")):
        walk(yaml.safe_load(playbook.read_text()))
    for role in ROLES:  # roles use other roles' entry points (e.g. agents' `installed` preflight)
        for tasks in sorted((role / "tasks").glob("*.yml")):
            walk(yaml.safe_load(tasks.read_text()))
    return used


def test_every_role_is_used_and_every_used_role_exists() -> None:
    have = {r.name for r in ROLES}
    used = _roles_used()
    assert used - have == set(), f"playbooks name roles that do not exist: {sorted(used - have)}"
    assert have - used == set(), f"roles no playbook uses: {sorted(have - used)}"
    assert {"common", "mysql", "cassandra", "agents", "collector", "health", "cron"} <= have


@pytest.mark.parametrize("role", ROLES, ids=_ids(ROLES))
def test_main_only_includes(role: Path) -> None:
    tasks = yaml.safe_load((role / "tasks" / "main.yml").read_text())
    assert tasks, f"{role.name}: tasks/main.yml is empty"
    for task in tasks:
        modules = set(task) & INCLUDE_MODULES
        assert modules, f"{role.name}: tasks/main.yml task {task.get('name')!r} is not an include/import"
        assert not set(task) - INCLUDE_MODULES - {"name", "tags", "when"}, (
            f"{role.name}: tasks/main.yml task {task.get('name')!r} carries logic; move it into a task file"
        )
        target = task[modules.pop()]
        target = target["file"] if isinstance(target, dict) else target
        assert (role / "tasks" / target).is_file(), f"{role.name}: tasks/{target} does not exist"


@pytest.mark.parametrize("role", ROLES, ids=_ids(ROLES))
def test_argument_specs_match_defaults(role: Path) -> None:
    spec_file = role / "meta" / "argument_specs.yml"
    assert spec_file.is_file(), f"{role.name}: meta/argument_specs.yml is missing"
    options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"].get("options", {})
    defaults_file = role / "defaults" / "main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.is_file() else {}
    missing = sorted(set(defaults) - set(options))
    assert not missing, f"{role.name}: defaults not in meta/argument_specs.yml: {missing}"
    for name, value in defaults.items():
        spec = options[name]
        if "default" in spec and not (isinstance(value, str) and "{{" in value):
            assert spec["default"] == value, (
                f"{role.name}: {name}: argument_specs default {spec['default']!r} != defaults/main.yml {value!r}"
            )
    for name, spec in options.items():
        assert spec.get("description"), f"{role.name}: {name} has no description in argument_specs"
        # Role variables carry the role's name; the few global switches (iact_no_log) are not role
        # variables and appear in no role's defaults or argument specs.
        assert name.startswith(role.name + "_"), f"{role.name}: variable {name} is not prefixed with '{role.name}_'"


@pytest.mark.parametrize("role", ROLES, ids=_ids(ROLES))
def test_variables_are_role_prefixed(role: Path) -> None:
    defaults_file = role / "defaults" / "main.yml"
    if not defaults_file.is_file():
        pytest.skip("no defaults")
    defaults = yaml.safe_load(defaults_file.read_text()) or {}
    bad = [k for k in defaults if not k.startswith(role.name + "_")]
    assert not bad, f"{role.name}: defaults without the '{role.name}_' prefix: {bad}"


TEMPLATES = sorted(ROOT.glob("roles/*/templates/**/*.j2"))


@pytest.mark.parametrize("template", TEMPLATES, ids=[str(t.relative_to(ROOT)) for t in TEMPLATES])
def test_templates_start_with_ansible_managed(template: Path) -> None:
    lines = template.read_text().lstrip().splitlines()
    # A script's shebang (or an XML declaration) must stay first; the marker is then the next line.
    head = lines[1] if lines[0].startswith(("#!", "<?xml")) else lines[0]
    assert "ansible_managed" in head, f"{template.relative_to(ROOT)} does not start with ansible_managed"
