"""The /etc/cron.d files roles/cron generates from `cron_jobs`: rendered by the role's own task (entries.yml,
ansible-playbook on localhost into a temporary folder), then checked as cron reads them: names cron accepts,
valid schedules, every job through the one wrapper. The paths the jobs use follow the roles that own them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from roletasks import run_role_tasks

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "cron"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
JOBS: dict[str, dict[str, object]] = DEFAULTS["cron_jobs"]
RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
NAMES = {3: "jan feb mar apr may jun jul aug sep oct nov dec", 4: "sun mon tue wed thu fri sat"}
ENV_LINE = re.compile(r"^[A-Z_]+=")
USERS = {"root", "iact"}  # cron_job_users' default: the lock folders every host has

# Paths the jobs use, each mirrored from the role that owns it: cron variable -> (owner role, owner variable).
MIRRORS = {
    "cron_health_config_path": ("health", "health_config_path"),
    "cron_health_mysql_defaults": ("health", "health_mysql_defaults_path"),
    "cron_remediate_config_path": ("health", "health_remediate_config_path"),
    "cron_dora_config_path": ("dora", "dora_config_path"),
    "cron_dora_mysql_defaults": ("dora", "dora_mysql_defaults_path"),
    "cron_app_mysql_defaults": ("mysql", "mysql_credentials_dir"),
    "cron_backup_job_mysql_defaults": ("backup", "__backup_job_cnf"),
    "cron_backup_command": ("backup", "__backup_sbin"),
    "cron_backup_target_command": ("backup", "__backup_target_sbin"),
}
# Owner variables set to other values: the generated entries must follow each.
MOVED = {
    "health_config_path": "/srv/t/health.toml",
    "health_mysql_defaults_path": "/srv/t/mysql-health.cnf",
    "health_remediate_config_path": "/srv/t/remediate.toml",
    "dora_config_path": "/srv/t/dora.toml",
    "dora_mysql_defaults_path": "/srv/t/mysql-dora.cnf",
    "mysql_credentials_dir": "/srv/t/creds",
}


def field_ok(field: str, index: int) -> bool:
    lo, hi = RANGES[index]
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base == "*":
            continue
        bounds = base.split("-")
        if len(bounds) > 2:
            return False
        for b in bounds:
            if b.isdigit():
                if not lo <= int(b) <= hi:
                    return False
            elif b.lower() not in NAMES.get(index, "").split():
                return False
    return True


def cron_errors(path: Path) -> list[str]:
    errors = []
    if not re.fullmatch(r"[A-Za-z0-9_-]+", path.name):
        errors.append(f"{path.name}: cron ignores /etc/cron.d files named with other than letters, digits, _, -")
    text = path.read_text()
    if not text.endswith("\n"):
        errors.append(f"{path.name}: must end with a newline or cron ignores the last line")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#") or ENV_LINE.match(line):
            continue
        fields = line.split(None, 6)
        if len(fields) < 7:
            errors.append(f"{path.name}:{n}: needs 5 time fields, a user and a command")
            continue
        for i in range(5):
            if not field_ok(fields[i], i):
                errors.append(f"{path.name}:{n}: time field {i + 1} {fields[i]!r} is invalid")
        if fields[5] not in USERS:
            errors.append(f"{path.name}:{n}: user {fields[5]!r} is not root or iact")
        if not fields[6].startswith("iact-agent job run --name "):
            errors.append(f"{path.name}:{n}: every job runs through 'iact-agent job run'")
    return errors


def entries(path: Path) -> list[list[str]]:
    """The job lines of a cron.d file: five time fields, the user, the command."""
    return [ln.split(None, 6) for ln in path.read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#") and not ENV_LINE.match(ln)]


def render(out: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the cron role's entries.yml (the task the role runs) for every file of cron_jobs into ``out``."""
    out.mkdir()
    return run_role_tasks(out.parent, "cron", "entries",
                          {"__cron_dir": str(out), "cron_files": sorted(JOBS), **(extra or {})})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cron") / "default"
    result = render(out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def rendered_moved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cron") / "moved"
    result = render(out, MOVED)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_every_file_of_cron_jobs_is_generated(rendered: Path) -> None:
    assert JOBS
    assert sorted(p.name for p in rendered.iterdir()) == sorted(JOBS)


@pytest.mark.parametrize("name", sorted(JOBS))
def test_generated_file_syntax(rendered: Path, name: str) -> None:
    assert cron_errors(rendered / name) == []


@pytest.mark.parametrize("name", sorted(JOBS))
def test_generated_file_holds_its_jobs(rendered: Path, name: str) -> None:
    text = (rendered / name).read_text()
    assert f"\nPATH={JOBS[name]['path']}\n" in text
    jobs = JOBS[name]["jobs"]
    assert isinstance(jobs, list)
    lines = entries(rendered / name)
    assert [(ln[0:5], ln[5], ln[6].split()[4]) for ln in lines] == [
        (j["schedule"].split(), j["user"], j["name"]) for j in jobs
    ]


def test_default_entries_use_the_owner_roles_paths(rendered: Path) -> None:
    """The paths in the entries are today's defaults of the roles that write those files."""
    dora = entries(rendered / "iact-dora")[0][6]
    assert "--mysql-defaults /etc/iact/mysql-dora.cnf --" in dora
    assert dora.count("--config /etc/iact/dora.toml") == 3
    assert "iact-agent dora report --html --config /etc/iact/dora.toml" in dora  # the page: [report] html_path
    health = entries(rendered / "iact-health")[0][6]
    assert health.endswith("-- sh -c 'iact-agent health --config /etc/iact/health.toml; rc=$?;"
                           " iact-agent remediate run --config /etc/iact/remediate.toml || exit $?; exit $rc'")
    assert entries(rendered / "iact-session-cleanup")[0][6].count("/etc/iact/mysql-app.cnf") == 2
    assert entries(rendered / "iact-backup")[0][6].endswith(
        "--mysql-defaults /etc/iact/backup-job.cnf -- /usr/local/sbin/iact-backup run")


def test_entries_follow_the_owner_roles_variables(rendered_moved: Path) -> None:
    """Setting an owner role's variable in the inventory moves what the cron entry uses (not only the deploy)."""
    text = "".join((rendered_moved / name).read_text() for name in sorted(JOBS))
    for path in ("/etc/iact/health.toml", "/etc/iact/remediate.toml", "/etc/iact/mysql-health.cnf",
                 "/etc/iact/dora.toml", "/etc/iact/mysql-dora.cnf", "/var/lib/iact/reports/dora.html",
                 "/etc/iact/mysql-app.cnf"):
        assert path not in text, path
    dora = entries(rendered_moved / "iact-dora")[0][6]
    assert "iact-agent dora report --html --config /srv/t/dora.toml" in dora
    assert "--mysql-defaults /srv/t/mysql-dora.cnf --" in dora
    assert "--config /srv/t/health.toml" in (rendered_moved / "iact-health").read_text()
    assert "remediate run --config /srv/t/remediate.toml" in (rendered_moved / "iact-health").read_text()
    assert (rendered_moved / "iact-retention").read_text().count("/srv/t/mysql-health.cnf") == 2
    assert (rendered_moved / "iact-session-cleanup").read_text().count("/srv/t/creds/mysql-app.cnf") == 2


def _role_value(role: str, name: str) -> object:
    for part in ("defaults", "vars"):
        f = ROOT / "roles" / role / part / "main.yml"
        data = (yaml.safe_load(f.read_text()) or {}) if f.is_file() else {}
        if name in data:
            return data[name]
    raise AssertionError(f"roles/{role} has no variable {name}")


@pytest.mark.parametrize("cron_var", sorted(MIRRORS))
def test_mirrored_paths_equal_the_owner_roles_defaults(cron_var: str) -> None:
    role, owner = MIRRORS[cron_var]
    value = str(DEFAULTS[cron_var])
    owner_value = str(_role_value(role, owner))
    m = re.fullmatch(r"\{\{ (\w+) \| default\('([^']*)'\) \}\}(.*)", value)
    if m is None:  # a private path of the owner role: the cron default is the literal
        assert value == owner_value, f"{cron_var} is {value!r}, roles/{role} {owner} is {owner_value!r}"
        return
    assert m.group(1) == owner, f"{cron_var} should follow {owner}"
    if m.group(3):  # a file the owner names after its folder: roles/mysql writes mysql-<purpose>.cnf
        assert m.group(3) == "/mysql-app.cnf"
        assert "/mysql-{{ item.purpose }}.cnf" in (ROOT / "roles/mysql/tasks/credentials.yml").read_text()
    assert m.group(2) == owner_value, (
        f"{cron_var} falls back to {m.group(2)!r}, roles/{role} {owner} is {owner_value!r}")


def test_every_path_in_the_jobs_is_a_mirrored_variable() -> None:
    """No path of another role is written into cron_jobs as a literal (it would not follow that role)."""
    literal = re.compile(r"(?<![\w{])/(etc|var|usr|srv|opt)/\S+")
    for name, spec in JOBS.items():
        for job in spec["jobs"]:  # type: ignore[attr-defined]
            for key in ("mysql_defaults", "command"):
                assert not literal.search(str(job[key])), f"cron_jobs {name} {job['name']} {key}: {job[key]}"


@pytest.mark.parametrize("inventory", ["lab", "production.example"])
def test_inventory_cron_files_name_files_of_cron_jobs(inventory: str) -> None:
    text = (ROOT / "inventory" / inventory / "group_vars" / "all" / "cron.yml").read_text()
    named = set(re.findall(r"'(iact-[a-z-]+)'", yaml.safe_load(text)["cron_files"]))
    assert named, "the inventory names no cron files"
    assert named - set(JOBS) == set(), f"{inventory}: cron_files names files not in cron_jobs"


BAD_JOB = {"name": "x", "schedule": "0 * * * *", "user": "iact", "timeout": 60, "mysql_defaults": "/etc/x.cnf",
           "command": "true"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"cron_files": ["iact-health", "iact-nope"]}, "cron_files names iact-nope, not in cron_jobs"),
        ({"cron_files": ["iact-backup"], "cron_job_users": ["iact"]},
         "cron_files run jobs as root, which has no lock folder: add it to cron_job_users"),
        ({"cron_files": ["x"], "cron_jobs": {"x": {"about": "", "path": "/bin",
                                                   "jobs": [{**BAD_JOB, "schedule": "0 * * *"}]}}},
         "cron_jobs['x'] is malformed"),
        ({"cron_files": ["x"], "cron_jobs": {"x": {"about": "", "path": "/bin",
                                                   "jobs": [{**BAD_JOB, "name": "Bad-Name"}]}}},
         "cron_jobs['x'] is malformed"),
    ],
    ids=["unknown-file", "user-without-lock-folder", "four-time-fields", "bad-job-name"],
)
def test_preflight_refuses_naming_the_variable(tmp_path: Path, extra: dict[str, object], expected: str) -> None:
    result = run_role_tasks(tmp_path, "cron", "preflight", extra)
    assert result.returncode != 0
    assert expected in " ".join(result.stdout.replace("''", "'").split()), result.stdout


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.name", "0 * * * * iact iact-agent job run --name x -- true\n", "cron ignores"),
        ("ok", "0 * * * * iact iact-agent job run --name x -- true", "newline"),
        ("ok", "61 * * * * iact iact-agent job run --name x -- true\n", "time field 1"),
        ("ok", "0 */0 * * * iact iact-agent job run --name x -- true\n", "time field 2"),
        ("ok", "0 * * * * iact\n", "needs 5 time fields"),
        ("ok", "0 * * * * www-data iact-agent job run --name x -- true\n", "user"),
        ("ok", "0 * * * * iact /usr/bin/true\n", "iact-agent job run"),
    ],
)
def test_checker_catches_mistakes(tmp_path: Path, name: str, content: str, expected: str) -> None:
    f = tmp_path / name
    f.write_text(content)
    assert any(expected in e for e in cron_errors(f))
