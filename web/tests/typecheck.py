"""Run mypy (strict, with the Django plugin) over iact_web.

The Django plugin imports the settings, which load the configuration and read the secret key from a 0600
file; this writes a throw-away configuration and key into a private temporary folder for that run.
Usage (from web/): ``../.venv/bin/python tests/typecheck.py [mypy arguments]``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="iact-web-typecheck.") as tmp:
        key = Path(tmp) / "secret-key"
        key.write_text(secrets.token_urlsafe(64))
        key.chmod(0o600)
        config = Path(tmp) / "web.toml"
        config.write_text(f'[server]\nsecret_key_file = "{key}"\n\n[logging]\nfile = ""\n')
        env = {**os.environ, "IACT_WEB_CONFIG": str(config)}
        return subprocess.run([sys.executable, "-m", "mypy", *sys.argv[1:]], env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
