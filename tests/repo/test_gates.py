"""Every Python and shell file of the repository is inside the lint gates of `make lint`.

ruff and shellcheck take whatever scripts/source-files.sh lists, so these tests prove that the lister finds
each kind (by suffix and by shebang) and that mypy covers every Python file: through a package's own
configuration (agents, web, drill) or the Makefile's STANDALONE_PY list.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Directories whose Python is type-checked by their own configuration (agents/pyproject.toml, web's
# typecheck, drill/mypy.ini), or is test code (ruff only, by design: tests are not shipped).
PACKAGE_DIRS = ("agents/", "web/", "drill/", "tests/", "molecule/", "bench/", "conftest.py")


def listed(kind: str) -> list[str]:
    out = subprocess.run(
        [str(ROOT / "scripts/source-files.sh"), kind], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return out.split()


def makefile_list(name: str) -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{name} :=((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert match, f"Makefile has no {name}"
    return match.group(1).replace("\\\n", " ").split()


def test_lister_finds_python_by_suffix_and_by_shebang() -> None:
    found = listed("python")
    assert "agents/iact_agents/storable.py" in found
    assert "roles/mysql/files/usr/local/lib/iact/mysql-migrate" in found  # no suffix: by its shebang


def test_lister_finds_shell_by_suffix_and_by_shebang() -> None:
    found = listed("shell")
    assert "scripts/lab.sh" in found
    assert ".ci/run" in found  # no suffix
    assert "roles/backup/files/usr/local/sbin/iact-backup" in found
    assert not [f for f in found if f.endswith(".py") or f.endswith(".j2")]


def test_every_python_file_is_type_checked() -> None:
    standalone = makefile_list("STANDALONE_PY")
    missing = [f for f in listed("python") if not f.startswith(PACKAGE_DIRS) and f not in standalone]
    assert not missing, f"outside mypy: {missing}: add them to the Makefile's STANDALONE_PY"
    assert all((ROOT / f).is_file() for f in standalone), "STANDALONE_PY names a file that does not exist"


def test_drill_mypy_covers_every_drill_module() -> None:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if "cd drill &&" in ln)
    for path in (ROOT / "drill").rglob("*.py"):
        assert str(path.relative_to(ROOT / "drill")) in line, f"make lint's drill mypy misses {path}"
